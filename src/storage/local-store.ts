import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ObjectNotFoundError, type ObjectStore } from './object-store.js';

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Buckets as directories under one root (default <dataDir>/s3); keys as relative paths. */
export class LocalObjectStore implements ObjectStore {
  constructor(
    private readonly root: string,
    /** Create a bucket on first write instead of failing. */
    private readonly createOnDemand = true,
  ) {}

  private bucketDir(bucket: string): string {
    if (!BUCKET_NAME.test(bucket)) throw new Error(`invalid bucket name: ${bucket}`);
    return path.join(this.root, bucket);
  }

  private objectPath(bucket: string, key: string): string {
    const dir = this.bucketDir(bucket);
    const file = path.resolve(dir, key);
    if (!file.startsWith(dir + path.sep)) throw new Error(`invalid object key: ${key}`);
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

  async put(bucket: string, key: string, body: Buffer | Readable): Promise<{ bytes: number }> {
    if (!(await this.bucketExists(bucket))) {
      if (!this.createOnDemand) throw new ObjectNotFoundError(bucket, undefined);
      await this.createBucket(bucket);
    }
    const file = this.objectPath(bucket, key);
    await mkdir(path.dirname(file), { recursive: true });
    // Write beside the target and rename: readers never see a half-written object.
    const partial = `${file}.partial-${process.pid}-${Date.now()}`;
    let bytes = 0;
    const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;
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
        if (entry.isDirectory()) await walk(full);
        else if (!entry.name.includes('.partial-')) {
          const key = path.relative(dir, full).split(path.sep).join('/');
          if (key.startsWith(prefix)) out.push({ key, size: (await stat(full)).size });
        }
      }
    };
    await walk(dir);
    return out.sort((a, b) => a.key.localeCompare(b.key));
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
}
