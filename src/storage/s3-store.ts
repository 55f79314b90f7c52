import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  type CreateBucketCommandInput,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type ServerSideEncryption,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import {
  ObjectNotFoundError,
  type ObjectStore,
  ObjectStoreError,
  type PutOptions,
  validBucketName,
} from './object-store.js';

/** S3's smallest part (except the last) in a multipart upload. */
const MIN_PART_BYTES = 5 * 1024 * 1024;

export interface S3StoreOptions {
  region: string;
  /** S3-compatible endpoint (MinIO, R2, Ceph…); omitted → AWS S3 in `region`. */
  endpoint?: string;
  forcePathStyle?: boolean;
  /** Omitted → the AWS SDK's usual credential chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Size of each multipart-upload part (≥ 5 MiB); memory use is about (concurrency + 1) parts. */
  partBytes?: number;
  /** Parts uploaded at the same time. */
  concurrency?: number;
  /** How long to wait for a TCP connection to the store. */
  connectTimeoutMs?: number;
  maxAttempts?: number;
}

/**
 * Any S3-compatible object store through the AWS SDK. Streams are uploaded
 * with multipart uploads of `partBytes` parts, reading the stream only as fast
 * as parts are accepted (so the writer sees back-pressure and memory stays
 * bounded); a failed upload is aborted, so no partial object ever appears.
 */
export class S3ObjectStore implements ObjectStore {
  readonly kind = 's3';
  readonly location: string;
  private readonly client: S3Client;
  private readonly partBytes: number;
  private readonly concurrency: number;

  constructor(private readonly options: S3StoreOptions) {
    this.location = options.endpoint ?? `AWS S3 (${options.region})`;
    this.partBytes = Math.max(MIN_PART_BYTES, options.partBytes ?? 8 * 1024 * 1024);
    this.concurrency = Math.max(1, options.concurrency ?? 2);
    this.client = new S3Client({
      region: options.region,
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle ?? true,
      credentials: options.credentials,
      maxAttempts: options.maxAttempts ?? 3,
      requestHandler: { connectionTimeout: options.connectTimeoutMs ?? 5000 },
      // Checksums only where S3 requires them: plain bodies work with every S3-compatible store.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  close(): void {
    this.client.destroy();
  }

  private async send<T>(what: string, bucket: string, key: string | undefined, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw this.classify(error, what, bucket, key);
    }
  }

  /** Turns an SDK error into ObjectNotFoundError or ObjectStoreError with a message a user can act on. */
  private classify(error: unknown, what: string, bucket: string, key: string | undefined): Error {
    if (error instanceof ObjectNotFoundError || error instanceof ObjectStoreError) return error;
    const e = error as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    const status = e.$metadata?.httpStatusCode;
    const name = e.name ?? '';
    const where = key === undefined ? `bucket ${bucket}` : `s3://${bucket}/${key}`;
    if (name === 'NoSuchBucket') return new ObjectNotFoundError(bucket, undefined);
    if (name === 'NoSuchKey' || (status === 404 && key !== undefined)) return new ObjectNotFoundError(bucket, key);
    if (status === 404) return new ObjectNotFoundError(bucket, undefined);
    if (
      status === 403 ||
      ['AccessDenied', 'Forbidden', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken'].includes(name)
    ) {
      return new ObjectStoreError('access-denied', `${what} ${where}: access denied by ${this.location} (${name})`, {
        cause: error,
      });
    }
    if (name === 'CredentialsProviderError') {
      return new ObjectStoreError(
        'access-denied',
        `no credentials for the object store at ${this.location}: set storage.accessKeyId and storage.secretAccessKey, or the AWS SDK's usual variables`,
        { cause: error },
      );
    }
    if (status === undefined) {
      // No HTTP answer at all: connection refused, DNS failure, timeout.
      const reason = e.code ?? name ?? 'no answer';
      return new ObjectStoreError(
        'unreachable',
        `could not reach the object store at ${this.location} (${reason}: ${e.message ?? ''})`.replace(/: \)$/, ')'),
        { cause: error },
      );
    }
    return new ObjectStoreError('failed', `${what} ${where} failed: ${name || status} ${e.message ?? ''}`.trim(), {
      cause: error,
    });
  }

  async get(bucket: string, key: string): Promise<Buffer> {
    return this.send('reading', bucket, key, async () => {
      const out = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(await out.Body!.transformToByteArray());
    });
  }

  private encryption(options: PutOptions): { ServerSideEncryption?: ServerSideEncryption; SSEKMSKeyId?: string } {
    return options.kmsKeyId ? { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: options.kmsKeyId } : {};
  }

  async put(
    bucket: string,
    key: string,
    body: Buffer | Readable,
    options: PutOptions = {},
  ): Promise<{ bytes: number }> {
    if (Buffer.isBuffer(body)) {
      await this.putWhole(bucket, key, body, options);
      return { bytes: body.length };
    }
    let uploadId: string | undefined;
    const parts: { PartNumber: number; ETag: string }[] = [];
    const inflight = new Set<Promise<void>>();
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let bytes = 0;
    let partNumber = 0;
    const uploadPart = async (data: Buffer) => {
      if (uploadId === undefined) {
        const created = await this.send('starting an upload to', bucket, key, () =>
          this.client.send(
            new CreateMultipartUploadCommand({
              Bucket: bucket,
              Key: key,
              ContentType: options.contentType,
              ...this.encryption(options),
            }),
          ),
        );
        uploadId = created.UploadId!;
      }
      const number = ++partNumber;
      const id = uploadId;
      const task = this.send('uploading', bucket, key, () =>
        this.client.send(
          new UploadPartCommand({
            Bucket: bucket,
            Key: key,
            UploadId: id,
            PartNumber: number,
            Body: data,
            ContentLength: data.length,
          }),
        ),
      ).then((out) => {
        parts.push({ PartNumber: number, ETag: out.ETag! });
      });
      const tracked = task.finally(() => inflight.delete(tracked));
      tracked.catch(() => {}); // observed below; avoid an unhandled rejection meanwhile
      inflight.add(tracked);
      // Stop reading the stream while `concurrency` parts are on their way.
      while (inflight.size >= this.concurrency) await Promise.race(inflight);
    };
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        pending.push(chunk);
        pendingBytes += chunk.length;
        bytes += chunk.length;
        // S3 allows 10,000 parts: every 1,000 parts the part size grows by partBytes (up to ~430 GB at 8 MiB).
        if (pendingBytes >= this.partBytes * (1 + Math.floor(partNumber / 1000))) {
          const data = Buffer.concat(pending, pendingBytes);
          pending = [];
          pendingBytes = 0;
          await uploadPart(data);
        }
      }
      const rest = Buffer.concat(pending, pendingBytes);
      pending = [];
      if (uploadId === undefined) {
        await this.putWhole(bucket, key, rest, options);
        return { bytes };
      }
      if (rest.length > 0) await uploadPart(rest);
      await Promise.all(inflight);
      parts.sort((a, b) => a.PartNumber - b.PartNumber);
      const id = uploadId;
      await this.send('completing the upload to', bucket, key, () =>
        this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: bucket,
            Key: key,
            UploadId: id,
            MultipartUpload: { Parts: parts },
          }),
        ),
      );
      return { bytes };
    } catch (error) {
      if (!body.destroyed) body.destroy();
      await Promise.allSettled(inflight);
      if (uploadId !== undefined) {
        // Parts of an upload that is never completed are not an object; abort frees them.
        const id = uploadId;
        await this.client
          .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: id }))
          .catch(() => undefined);
      }
      // Store failures were classified where they happened; anything else is the body's own error.
      throw error;
    }
  }

  private async putWhole(bucket: string, key: string, data: Buffer, options: PutOptions): Promise<void> {
    await this.send('writing', bucket, key, () =>
      this.client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: data,
          ContentLength: data.length,
          ContentType: options.contentType,
          ...this.encryption(options),
        }),
      ),
    );
  }

  async exists(bucket: string, key: string): Promise<boolean> {
    try {
      await this.send('reading', bucket, key, () =>
        this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })),
      );
      return true;
    } catch (error) {
      if (error instanceof ObjectNotFoundError && error.key !== undefined) return false;
      throw error;
    }
  }

  async list(bucket: string, prefix = ''): Promise<{ key: string; size: number }[]> {
    const out: { key: string; size: number }[] = [];
    let token: string | undefined;
    do {
      const page = await this.send('listing', bucket, undefined, () =>
        this.client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token }),
        ),
      );
      for (const item of page.Contents ?? []) out.push({ key: item.Key!, size: Number(item.Size ?? 0) });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(bucket: string, key: string): Promise<void> {
    await this.send('deleting', bucket, key, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })),
    );
  }

  async createBucket(bucket: string): Promise<void> {
    if (!validBucketName(bucket)) throw new ObjectStoreError('invalid', `invalid bucket name: ${bucket}`);
    const input: CreateBucketCommandInput = { Bucket: bucket };
    if (this.options.region !== 'us-east-1' && this.options.endpoint === undefined) {
      input.CreateBucketConfiguration = { LocationConstraint: this.options.region as never };
    }
    await this.send('creating', bucket, undefined, () => this.client.send(new CreateBucketCommand(input)));
  }

  async bucketExists(bucket: string): Promise<boolean> {
    if (!validBucketName(bucket)) return false;
    try {
      await this.send('reading', bucket, undefined, () => this.client.send(new HeadBucketCommand({ Bucket: bucket })));
      return true;
    } catch (error) {
      if (error instanceof ObjectNotFoundError) return false;
      throw error;
    }
  }

  async listBuckets(): Promise<string[]> {
    const out = await this.send('listing buckets of', this.location, undefined, () =>
      this.client.send(new ListBucketsCommand({})),
    );
    return (out.Buckets ?? []).map((b) => b.Name!).sort();
  }
}
