/** The whole `pgsage` program: its version, and what each command's --help tells. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { createProgram } from '../../src/cli/program.js';
import { packagePath } from '../../src/util/paths.js';

/** Runs `pgsage <args>` for what it prints on stdout (help and version); it must end by commander's exit. */
async function pgsage(...args: string[]): Promise<string> {
  let printed = '';
  const program = createProgram();
  // Each command has its own output settings, copied when it was made: all of them are redirected.
  const all = (command: Command): Command[] => [command, ...command.commands.flatMap(all)];
  for (const command of all(program)) {
    command.exitOverride().configureOutput({ writeOut: (text) => (printed += text), writeErr: () => {} });
  }
  await expect(program.parseAsync(args, { from: 'user' })).rejects.toMatchObject({ exitCode: 0 });
  return printed;
}

describe('pgsage --version and --help', () => {
  it('prints the package version', async () => {
    const { version } = JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string };
    expect(await pgsage('--version')).toBe(`${version}\n`);
    expect(await pgsage('-V')).toBe(`${version}\n`);
  });

  it('lists --services-url and --region in the help of every command that talks to the services', async () => {
    for (const command of [
      ['endpoint'],
      ['endpoint', 'deploy'],
      ['endpoint', 'list'],
      ['endpoint', 'describe'],
      ['endpoint', 'delete'],
      ['endpoint', 'invoke'],
      ['train'],
    ]) {
      const help = (await pgsage(...command, '--help')).replace(/\s+/g, ' ');
      expect(help, command.join(' ')).toContain('--services-url <url> pgsage service edge (env PGSAGE_SERVICES_URL');
      expect(help, command.join(' ')).toContain('--region <region>');
    }
  });

  it("shows up's defaults: data directory, host, ports and log level", async () => {
    const help = (await pgsage('up', '--help')).replace(/\s+/g, ' ');
    for (const shown of [
      '--data-dir <dir> data directory (env PGSAGE_DATA_DIR; default ./.pgsage)',
      '--host <address> address to bind the gateway, bridge and services (env PGSAGE_HOST; default 127.0.0.1)',
      '--port <port> gateway port clients connect to (env PGSAGE_PORT; default 6543)',
      '--services-port <port> AWS-compatible services port (env PGSAGE_SERVICES_PORT; default 4566)',
      '--bridge-port <port> port the database reaches for per-row calls (env PGSAGE_BRIDGE_PORT; default 6544)',
      '--pg-port <port> port of the embedded PostgreSQL (env PGSAGE_PG_PORT; default 6542)',
      '(env PGSAGE_LOG_LEVEL; default info)',
    ]) {
      expect(help).toContain(shown);
    }
  });
});
