/** `pgsage bucket …`: the options it offers and where it says it looked. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { registerBucketCommands } from '../../src/cli/bucket.js';

const dir = mkdtempSync(path.join(tmpdir(), 'pgsage-cli-bucket-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `pgsage <args>` with the bucket commands; what they printed, and the error if they failed. */
async function pgsage(...args: string[]): Promise<{ printed: string; error?: Error }> {
  let printed = '';
  const program = new Command()
    .name('pgsage')
    .exitOverride()
    .configureOutput({ writeOut: (text) => (printed += text), writeErr: (text) => (printed += text) });
  registerBucketCommands(program, { out: (text) => (printed += text) });
  try {
    await program.parseAsync(args, { from: 'user' });
    return { printed };
  } catch (error) {
    return { printed, error: error as Error };
  }
}

function optionsIn(help: string): string[] {
  return [...help.matchAll(/^ {2}(?:-\w, )?(--[\w-]+)/gm)].map((match) => match[1]).sort();
}

describe('pgsage bucket', () => {
  it('offers only the options the bucket commands use', async () => {
    expect(optionsIn((await pgsage('bucket', 'create', '--help')).printed)).toEqual([
      '--config',
      '--data-dir',
      '--help',
    ]);
    expect(optionsIn((await pgsage('bucket', 'list', '--help')).printed)).toEqual([
      '--config',
      '--data-dir',
      '--help',
      '--prefix',
    ]);
    const refused = await pgsage('bucket', 'list', '--port', '5432');
    expect(refused.error?.message).toMatch(/unknown option '--port'/);
  });

  it('reads the store from --data-dir and says where a missing bucket was looked for', async () => {
    const dataDir = path.join(dir, 'data');
    expect((await pgsage('bucket', 'create', 'exports', '--data-dir', dataDir)).printed).toBe(
      `created bucket exports in ${path.join(dataDir, 's3')}\n`,
    );
    expect((await pgsage('bucket', 'list', 'exports', '-d', dataDir)).error).toBeUndefined();

    const elsewhere = path.join(dir, 'elsewhere');
    const missing = await pgsage('bucket', 'list', 'exports', '--data-dir', elsewhere);
    expect(missing.error?.message).toBe(
      `bucket exports does not exist in the local object store at ${path.join(elsewhere, 's3')} ` +
        '(use --data-dir or --config for another store, or create it with: pgsage bucket create exports)',
    );
  });
});
