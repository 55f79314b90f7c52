import type { Readable } from 'node:stream';
import type { LocalObjectStore, ObjectStore, PutOptions } from '../../src/storage/index.js';

/** An object store whose writes wait until `open()`: a slow store, to see back-pressure. */
export class GatedStore implements ObjectStore {
  readonly kind = 'local';
  readonly location = 'gated';
  private release!: () => void;
  private readonly gate = new Promise<void>((resolve) => {
    this.release = resolve;
  });

  constructor(private readonly inner: LocalObjectStore) {}

  open(): void {
    this.release();
  }

  async put(bucket: string, key: string, body: Buffer | Readable, options?: PutOptions) {
    await this.gate;
    return this.inner.put(bucket, key, body, options);
  }

  get = (b: string, k: string) => this.inner.get(b, k);
  exists = (b: string, k: string) => this.inner.exists(b, k);
  list = (b: string, p?: string) => this.inner.list(b, p);
  delete = (b: string, k: string) => this.inner.delete(b, k);
  createBucket = (b: string) => this.inner.createBucket(b);
  bucketExists = (b: string) => this.inner.bucketExists(b);
  listBuckets = () => this.inner.listBuckets();
}
