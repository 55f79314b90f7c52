/** `pgsage bucket …`: the options it offers and where it says it looked. */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { registerBucketCommands } from '../../src/cli/bucket.js';

const dir = mkdtempSync(path.join(tmpdir(), 'pgsage-cli-bucket-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `pgsage <args>` with the bucket commands; what they printed (stdout, stderr), and the error if they failed. */
async function pgsage(...args: string[]): Promise<{ printed: string; noted: string; error?: Error }> {
  let printed = '';
  let noted = '';
  const program = new Command()
    .name('pgsage')
    .exitOverride()
    .configureOutput({ writeOut: (text) => (printed += text), writeErr: (text) => (printed += text) });
  registerBucketCommands(program, { out: (text) => (printed += text), note: (text) => (noted += text) });
  try {
    await program.parseAsync(args, { from: 'user' });
    return { printed, noted };
  } catch (error) {
    return { printed, noted, error: error as Error };
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
        `(use --data-dir or --config for another store, or create it with: pgsage bucket create exports --data-dir ${elsewhere})`,
    );
  });

  it('warns when no pgsage has run with the data directory, and says where it listed', async () => {
    // What `pgsage bucket create` in the wrong directory used to do silently: a store no server reads.
    const fresh = path.join(dir, 'fresh');
    const created = await pgsage('bucket', 'create', 'sagemaker-data', '--data-dir', fresh);
    expect(created.printed).toBe(`created bucket sagemaker-data in ${path.join(fresh, 's3')}\n`);
    expect(created.noted).toBe(
      `warning: pgsage has not run with the data directory ${fresh}. If your pgsage runs with another one, ` +
        'use that: pgsage bucket create sagemaker-data --data-dir <its data directory>\n',
    );
    const listed = await pgsage('bucket', 'list', '--data-dir', fresh);
    expect(listed.printed).toBe('sagemaker-data\n');
    expect(listed.noted).toMatch(new RegExp(`^Buckets in the local object store at ${path.join(fresh, 's3')}\n`));

    // A data directory `pgsage up` has used (it always writes logs/ there): no warning.
    mkdirSync(path.join(fresh, 'logs'));
    expect((await pgsage('bucket', 'create', 'more', '--data-dir', fresh)).noted).toBe('');
    expect((await pgsage('bucket', 'list', '-d', fresh)).noted).toBe(
      `Buckets in the local object store at ${path.join(fresh, 's3')}\n`,
    );
  });
});
