/**
 * `pgsage bucket …`: create and list the buckets of the object store that
 * aws_s3.query_export_to_s3 writes to (the configuration's `storage`: a local
 * directory of buckets, or an S3-compatible store). Exports never create
 * buckets, as on AWS: a bucket is made here first.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../config/index.js';
import { createObjectStore, ObjectNotFoundError, type ObjectStore, validBucketName } from '../storage/index.js';
import { repeatedOptions } from '../util/shell.js';
import { configFromFlags, withConfigFileOptions } from './options.js';

/** Where the commands write; tests capture it. */
export interface BucketCliOutput {
  out(text: string): void;
  /** Where the store is and warnings about it: on stderr, so that what `list` prints stays a plain list. */
  note(text: string): void;
}

const stdio: BucketCliOutput = {
  out: (text) => process.stdout.write(text),
  note: (text) => process.stderr.write(text),
};

type StoreFlags = Parameters<typeof configFromFlags>[0];

async function withStore<T>(flags: StoreFlags, work: (store: ObjectStore, config: Config) => Promise<T>) {
  const config = configFromFlags(flags);
  const store = createObjectStore(config);
  try {
    return await work(store, config);
  } finally {
    store.close?.();
  }
}

/** The options that chose the store, for commands printed to run next. */
function storeArgs(flags: StoreFlags): string {
  return repeatedOptions([
    ['--config', flags.config],
    ['--data-dir', flags.dataDir],
  ]);
}

/**
 * Warns when the local store is in a data directory pgsage has never run with: `pgsage bucket` run in another
 * directory than `pgsage up --data-dir …` was works on ./.pgsage there, and the server never sees the bucket.
 */
function warnIfNoServerThere(config: Config, output: BucketCliOutput, retry: string): void {
  if (config.storage.kind !== 'local' || config.storage.root !== undefined) return;
  // pg/: the embedded cluster; logs/: written by every `pgsage up`, upstream PostgreSQL or not.
  if (existsSync(path.join(config.dataDir, 'pg')) || existsSync(path.join(config.dataDir, 'logs'))) return;
  output.note(
    `warning: pgsage has not run with the data directory ${config.dataDir}. ` +
      `If your pgsage runs with another one, use that: ${retry} --data-dir <its data directory>\n`,
  );
}

function humanBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A missing bucket, saying where it was looked for: the store another --data-dir or --config selects may have it. */
function missingBucket(store: ObjectStore, name: string, flags: StoreFlags): Error {
  return new Error(
    `bucket ${name} does not exist in ${storeName(store)} at ${store.location} ` +
      `(use --data-dir or --config for another store, or create it with: pgsage bucket create ${name}${storeArgs(flags)})`,
  );
}

function storeName(store: ObjectStore): string {
  return store.kind === 'local' ? 'the local object store' : 'the object store';
}

export function registerBucketCommands(program: Command, output: BucketCliOutput = stdio): Command {
  const bucket = program
    .command('bucket')
    .description('create and list buckets of the object store exports are written to (storage.* in the configuration)');

  withConfigFileOptions(
    bucket.command('create <name>').description('create a bucket (an existing one is left as it is)'),
  ).action(async (name: string, flags: StoreFlags) => {
    if (!validBucketName(name)) {
      throw new Error(
        `invalid bucket name "${name}": 3 to 63 characters, lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit`,
      );
    }
    await withStore(flags, async (store, config) => {
      warnIfNoServerThere(config, output, `pgsage bucket create ${name}`);
      if (await store.bucketExists(name)) {
        output.out(`bucket ${name} already exists in ${store.location}\n`);
        return;
      }
      await store.createBucket(name);
      output.out(`created bucket ${name} in ${store.location}\n`);
    });
  });

  withConfigFileOptions(
    bucket
      .command('list [name]')
      .description('list the buckets, or with a bucket name the objects in it (key and size)')
      .option('--prefix <prefix>', 'only objects whose key starts with this'),
  ).action(async (name: string | undefined, flags: StoreFlags & { prefix?: string }) => {
    await withStore(flags, async (store, config) => {
      output.note(
        `${name === undefined ? 'Buckets' : `Objects of ${name}`} in ${storeName(store)} at ${store.location}\n`,
      );
      warnIfNoServerThere(config, output, `pgsage bucket list${name === undefined ? '' : ` ${name}`}`);
      if (name === undefined) {
        for (const found of await store.listBuckets()) output.out(`${found}\n`);
        return;
      }
      const objects = await store.list(name, flags.prefix ?? '').catch((error: unknown) => {
        if (error instanceof ObjectNotFoundError && error.key === undefined) throw missingBucket(store, name, flags);
        throw error;
      });
      const width = Math.max(0, ...objects.map((o) => humanBytes(o.size).length));
      for (const object of objects) output.out(`${humanBytes(object.size).padStart(width)}  ${object.key}\n`);
    });
  });

  return bucket;
}
