import type { Readable } from 'node:stream';

/** Where exported data and model artifacts live: a local directory of buckets, or any S3-compatible store. */
export interface ObjectStore {
  /** Whole object; rejects with ObjectNotFoundError when absent. */
  get(bucket: string, key: string): Promise<Buffer>;
  /** Writes an object from a buffer or stream, replacing any existing one atomically. */
  put(bucket: string, key: string, body: Buffer | Readable): Promise<{ bytes: number }>;
  exists(bucket: string, key: string): Promise<boolean>;
  list(bucket: string, prefix?: string): Promise<{ key: string; size: number }[]>;
  createBucket(bucket: string): Promise<void>;
  bucketExists(bucket: string): Promise<boolean>;
}

export class ObjectNotFoundError extends Error {
  constructor(
    readonly bucket: string,
    readonly key: string | undefined,
  ) {
    super(key === undefined ? `bucket ${bucket} does not exist` : `s3://${bucket}/${key} does not exist`);
    this.name = 'ObjectNotFoundError';
  }
}

/** Splits `s3://bucket/key` into its parts. */
export function parseS3Url(url: string): { bucket: string; key: string } {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
  if (!match) throw new Error(`not an s3:// URL: ${url}`);
  return { bucket: match[1], key: match[2] };
}
