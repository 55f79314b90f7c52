import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  ObjectNotFoundError,
  type ObjectStore,
  ObjectStoreError,
  type PutOptions,
  validBucketName,
} from './object-store.js';

/** Marks files being written; they are never listed and are removed on failure. */
const PARTIAL = '.partial-';

/** Buckets as directories under one root (default <dataDir>/s3); keys as relative paths. */
export class LocalObjectStore implements ObjectStore {
  readonly kind = 'local';
  private sequence = 0;

  constructor(
    private readonly root: string,
    /** Create a bucket on first write instead of failing. */
    private readonly createOnDemand = true,
  ) {}

  get location(): string {
    return this.root;
  }

  private bucketDir(bucket: string): string {
    if (!validBucketName(bucket)) throw new ObjectStoreError('invalid', `invalid bucket name: ${bucket}`);
    return path.join(this.root, bucket);
  }

  private objectPath(bucket: string, key: string): string {
    const dir = this.bucketDir(bucket);
    const file = path.resolve(dir, key);
    if (!file.startsWith(dir + path.sep) || key.endsWith('/') || key.includes(PARTIAL)) {
      throw new ObjectStoreError('invalid', `invalid object key: ${key}`);
    }
    return file;
  }

  async get(bucket: string, key: string): Promise<Buffer> {
    try {
      return await readFile(this.objectPath(bucket, key));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new ObjectNotFoundError(bucket, key);
      throw error;
    }
  }

  async put(
    bucket: string,
    key: string,
    body: Buffer | Readable,
    options: PutOptions = {},
  ): Promise<{ bytes: number }> {
    const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;
    // The stream may fail before it is piped (pipeline reports that failure below).
    source.on('error', () => {});
    try {
      if (options.kmsKeyId !== undefined) {
        throw new ObjectStoreError('unsupported', 'the local object store does not encrypt objects with KMS keys');
      }
      const file = this.objectPath(bucket, key);
      if (!(await this.bucketExists(bucket))) {
        if (!this.createOnDemand) throw new ObjectNotFoundError(bucket, undefined);
        await this.createBucket(bucket);
      }
      await mkdir(path.dirname(file), { recursive: true });
      // Write beside the target and rename: readers never see a half-written object.
      const partial = `${file}${PARTIAL}${process.pid}-${++this.sequence}`;
      let bytes = 0;
      source.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      try {
        await pipeline(source, createWriteStream(partial));
        await rename(partial, file);
      } catch (error) {
        await rm(partial, { force: true });
        throw error;
      }
      return { bytes };
    } catch (error) {
      // A stream nobody reads would hold its writer forever.
      if (!Buffer.isBuffer(body) && !body.destroyed) body.destroy();
      throw error;
    }
  }

  async exists(bucket: string, key: string): Promise<boolean> {
    try {
      return (await stat(this.objectPath(bucket, key))).isFile();
    } catch {
      return false;
    }
  }

  async list(bucket: string, prefix = ''): Promise<{ key: string; size: number }[]> {
    const dir = this.bucketDir(bucket);
    if (!(await this.bucketExists(bucket))) throw new ObjectNotFoundError(bucket, undefined);
    const out: { key: string; size: number }[] = [];
    const walk = async (current: string) => {
      for (const entry of await readdir(current, { withFileTypes: true })) {
        const full = path.join(current, entry.name);
        const key = path.relative(dir, full).split(path.sep).join('/');
        if (entry.isDirectory()) {
          // Only folders that can hold keys with the prefix: an export lists its own parts in a large bucket.
          if (`${key}/`.startsWith(prefix) || prefix.startsWith(`${key}/`)) await walk(full);
        } else if (!entry.name.includes(PARTIAL) && key.startsWith(prefix)) {
          out.push({ key, size: (await stat(full)).size });
        }
      }
    };
    await walk(dir);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(bucket: string, key: string): Promise<void> {
    await rm(this.objectPath(bucket, key), { force: true });
  }

  async createBucket(bucket: string): Promise<void> {
    await mkdir(this.bucketDir(bucket), { recursive: true });
  }

  async bucketExists(bucket: string): Promise<boolean> {
    try {
      return (await stat(this.bucketDir(bucket))).isDirectory();
    } catch {
      return false;
    }
  }

  async listBuckets(): Promise<string[]> {
    try {
      const entries = await readdir(this.root, { withFileTypes: true });
      return entries
        .filter((e) => e.isDirectory() && validBucketName(e.name))
        .map((e) => e.name)
        .sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }
}
