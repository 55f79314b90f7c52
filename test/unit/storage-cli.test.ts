import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerBucketCommands } from '../../src/cli/bucket.js';
import { LocalObjectStore } from '../../src/storage/index.js';
import { type S3Server, s3rverCredentials, startS3Server } from '../support/s3-server.js';

let dir: string;
let s3: S3Server;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'pgsage-bucket-cli-'));
  s3 = await startS3Server();
});

afterAll(async () => {
  await s3?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `pgsage <args>` with the bucket commands and returns what they printed. */
async function pgsage(...args: string[]): Promise<string> {
  let printed = '';
  const program = new Command().exitOverride();
  registerBucketCommands(program, { out: (text) => (printed += text), note: () => {} });
  await program.parseAsync(['node', 'pgsage', ...args]);
  return printed;
}

function configFile(name: string, config: unknown): string {
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

describe('pgsage bucket', () => {
  it('creates and lists buckets of the local store under storage.root', async () => {
    const config = configFile('local.json', { dataDir: path.join(dir, 'data'), storage: { root: 'objects' } });
    expect(await pgsage('bucket', 'create', 'exports', '-c', config)).toMatch(
      /^created bucket exports in .*objects\n$/,
    );
    expect(await pgsage('bucket', 'create', 'exports', '-c', config)).toMatch(/^bucket exports already exists/);
    await pgsage('bucket', 'create', 'archive', '-c', config);
    expect(await pgsage('bucket', 'list', '-c', config)).toBe('archive\nexports\n');

    const store = new LocalObjectStore(path.join(dir, 'data', 'objects'), false);
    await store.put('exports', 'a/one.csv', Buffer.alloc(2048, 97));
    await store.put('exports', 'b.csv', Buffer.from('x\n'));
    expect(await pgsage('bucket', 'list', 'exports', '-c', config)).toBe('2.0 KiB  a/one.csv\n    2 B  b.csv\n');
    expect(await pgsage('bucket', 'list', 'exports', '--prefix', 'a/', '-c', config)).toBe('2.0 KiB  a/one.csv\n');
  });

  it('refuses invalid names and missing buckets with a message', async () => {
    const config = configFile('local2.json', { dataDir: path.join(dir, 'data2') });
    await expect(pgsage('bucket', 'create', 'Bad_Name', '-c', config)).rejects.toThrow(
      /invalid bucket name "Bad_Name"/,
    );
    await expect(pgsage('bucket', 'list', 'nope', '-c', config)).rejects.toThrow('bucket nope does not exist');
  });

  it('creates and lists buckets of an S3-compatible store', async () => {
    const config = configFile('s3.json', {
      dataDir: path.join(dir, 'data3'),
      storage: { kind: 's3', endpoint: s3.endpoint, ...s3rverCredentials() },
    });
    expect(await pgsage('bucket', 'create', 'lake', '-c', config)).toBe(`created bucket lake in ${s3.endpoint}\n`);
    expect(await pgsage('bucket', 'list', '-c', config)).toBe('lake\n');
    expect(await pgsage('bucket', 'list', 'lake', '-c', config)).toBe('');
  });
});
