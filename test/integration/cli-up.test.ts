import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packagePath } from '../../src/util/paths.js';
import { alive, portFlags, spawnUp } from '../support/pgsage-up.js';
import { psql } from '../support/processes.js';

const dataDir = mkdtempSync(path.join(tmpdir(), 'pgsage-up-'));
const running: ChildProcess[] = [];

afterAll(() => {
  for (const child of running) child.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

interface Up {
  child: ChildProcess;
  url: string;
  output: () => string;
  exit: Promise<number | null>;
}

async function startUp(): Promise<Up> {
  const run = spawnUp(['--data-dir', dataDir, ...(await portFlags())], { cwd: dataDir, running });
  const output = () => run.stdout() + run.stderr();
  if ((await run.settled) === 'exited') throw new Error(`pgsage up exited with ${await run.exit}:\n${output()}`);
  const url = /psql (postgres:\/\/\S+)/.exec(run.stdout())?.[1];
  if (!url) throw new Error(`no connection string in:\n${output()}`);
  return { child: run.child, url, output, exit: run.exit };
}

describe('pgsage up', () => {
  it('runs embedded PostgreSQL behind the gateway, stops cleanly and keeps the data', async () => {
    const first = await startUp();
    expect(first.output()).toMatch(/Services: {2}http:\/\/127\.0\.0\.1:\d+/);
    // The client commands read no configuration: what they need for this pgsage, at its port and data directory.
    const services = /Services: {2}(\S+)/.exec(first.output())?.[1];
    expect(first.output()).toContain(
      `  CLI:       pgsage endpoint|train … --services-url ${services}; pgsage bucket … --data-dir ${dataDir}\n`,
    );
    const setup = await psql(
      first.url,
      [
        'CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE;',
        '\\c template1',
        'CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE;',
        '\\c postgres',
        'CREATE DATABASE fresh;',
        'CREATE TABLE kept (v text);',
        "INSERT INTO kept VALUES ('survives restarts');",
        "SELECT setting FROM pg_settings WHERE name = 'server_version_num';",
      ].join('\n'),
    );
    expect(setup.stderr).not.toMatch(/ERROR/);
    expect(Number(setup.stdout.trim().split('\n').pop())).toBeGreaterThanOrEqual(180000);
    const inherited = await psql(
      first.url.replace(/\/postgres$/, '/fresh'),
      "SELECT extname FROM pg_extension WHERE extname = 'aws_ml';",
    );
    expect(inherited.stdout.trim()).toBe('aws_ml');

    const postmasterPid = Number(readFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    expect(alive(postmasterPid)).toBe(true);
    first.child.kill('SIGTERM');
    expect(await first.exit).toBe(0);
    expect(first.output()).toContain('pgsage stopped.');
    expect(alive(postmasterPid)).toBe(false);

    const second = await startUp();
    const kept = await psql(second.url, 'SELECT v FROM kept;');
    expect(kept.stdout.trim()).toBe('survives restarts');
    second.child.kill('SIGINT');
    expect(await second.exit).toBe(0);
  });

  it('refuses a bad setting with a clear message', async () => {
    const child = spawn(process.execPath, [packagePath('bin', 'pgsage.js'), 'up', '--port', 'not-a-port'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(2);
    expect(stderr).toBe('pgsage: invalid configuration:\n  - --port not-a-port: expected a port number (0–65535)\n');
  });
});
