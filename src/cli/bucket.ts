/**
 * `pgsage bucket …`: create and list the buckets of the object store that
 * aws_s3.query_export_to_s3 writes to (the configuration's `storage`: a local
 * directory of buckets, or an S3-compatible store). Exports never create
 * buckets, as on AWS: a bucket is made here first.
 */
import type { Command } from 'commander';
import { createObjectStore, ObjectNotFoundError, type ObjectStore, validBucketName } from '../storage/index.js';
import { configFromFlags, withConfigFileOptions } from './options.js';

/** Where the commands write; tests capture it. */
export interface BucketCliOutput {
  out(text: string): void;
}

const stdio: BucketCliOutput = { out: (text) => process.stdout.write(text) };

async function withStore<T>(flags: Parameters<typeof configFromFlags>[0], work: (store: ObjectStore) => Promise<T>) {
  const store = createObjectStore(configFromFlags(flags));
  try {
    return await work(store);
  } finally {
    store.close?.();
  }
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
function missingBucket(store: ObjectStore, name: string): Error {
  const where = store.kind === 'local' ? 'the local object store' : 'the object store';
  return new Error(
    `bucket ${name} does not exist in ${where} at ${store.location} ` +
      `(use --data-dir or --config for another store, or create it with: pgsage bucket create ${name})`,
  );
}

export function registerBucketCommands(program: Command, output: BucketCliOutput = stdio): Command {
  const bucket = program
    .command('bucket')
    .description('create and list buckets of the object store exports are written to (storage.* in the configuration)');

  withConfigFileOptions(
    bucket.command('create <name>').description('create a bucket (an existing one is left as it is)'),
  ).action(async (name: string, flags: Parameters<typeof configFromFlags>[0]) => {
    if (!validBucketName(name)) {
      throw new Error(
        `invalid bucket name "${name}": 3 to 63 characters, lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit`,
      );
    }
    await withStore(flags, async (store) => {
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
  ).action(async (name: string | undefined, flags: Parameters<typeof configFromFlags>[0] & { prefix?: string }) => {
    await withStore(flags, async (store) => {
      if (name === undefined) {
        for (const found of await store.listBuckets()) output.out(`${found}\n`);
        return;
      }
      const objects = await store.list(name, flags.prefix ?? '').catch((error: unknown) => {
        if (error instanceof ObjectNotFoundError && error.key === undefined) throw missingBucket(store, name);
        throw error;
      });
      const width = Math.max(0, ...objects.map((o) => humanBytes(o.size).length));
      for (const object of objects) output.out(`${humanBytes(object.size).padStart(width)}  ${object.key}\n`);
    });
  });

  return bucket;
}
