import type { Readable } from 'node:stream';

export interface PutOptions {
  /** Server-side encryption with this KMS key (S3 only; the local store refuses it). */
  kmsKeyId?: string;
  contentType?: string;
}

/** Where exported data and model artifacts live: a local directory of buckets, or any S3-compatible store. */
export interface ObjectStore {
  /** `local` or `s3`, for messages. */
  readonly kind: 'local' | 's3';
  /** Where the store is, for messages (a directory or an endpoint URL). */
  readonly location: string;
  /** Whole object; rejects with ObjectNotFoundError when absent. */
  get(bucket: string, key: string): Promise<Buffer>;
  /**
   * Writes an object from a buffer or stream, replacing any existing one
   * atomically: readers see the old object or the whole new one, never part of
   * it. When a stream body fails (it is destroyed with an error), nothing is
   * left behind and the error is rethrown.
   */
  put(bucket: string, key: string, body: Buffer | Readable, options?: PutOptions): Promise<{ bytes: number }>;
  exists(bucket: string, key: string): Promise<boolean>;
  list(bucket: string, prefix?: string): Promise<{ key: string; size: number }[]>;
  /** Removes an object; removing an absent object is not an error. */
  delete(bucket: string, key: string): Promise<void>;
  createBucket(bucket: string): Promise<void>;
  bucketExists(bucket: string): Promise<boolean>;
  listBuckets(): Promise<string[]>;
  /** Releases connections. */
  close?(): void;
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

/**
 * A failure of the object store itself, classified so that callers can
 * report it well: the store could not be reached, refused the credentials,
 * or rejected the request.
 */
export class ObjectStoreError extends Error {
  constructor(
    readonly reason: 'unreachable' | 'access-denied' | 'invalid' | 'unsupported' | 'failed',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ObjectStoreError';
  }
}

/** S3's bucket naming rules (the subset every S3-compatible store accepts). */
export const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function validBucketName(bucket: string): boolean {
  return BUCKET_NAME.test(bucket) && !bucket.includes('..') && !/^\d+\.\d+\.\d+\.\d+$/.test(bucket);
}

/** Splits `s3://bucket/key` into its parts. */
export function parseS3Url(url: string): { bucket: string; key: string } {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
  if (!match) throw new Error(`not an s3:// URL: ${url}`);
  return { bucket: match[1], key: match[2] };
}
