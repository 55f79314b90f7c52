import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { ObjectStore } from './object-store.js';

export interface SplitUploadOptions {
  /** Largest object; more data goes on in `<key>_part2`, `<key>_part3`… (a single larger write still fits whole). */
  partSizeBytes: number;
  kmsKeyId?: string;
  contentType?: string;
  /** Bytes buffered per object before `write` asks the writer to wait. */
  highWaterMark?: number;
}

export interface SplitUploadResult {
  files: number;
  bytes: number;
  keys: string[];
}

/** The key of part `n` (1-based) of an export to `key`, as Aurora names them. */
export function partKey(key: string, n: number): string {
  return n === 1 ? key : `${key}_part${n}`;
}

const BATCH_BYTES = 64 * 1024;

interface OpenPart {
  key: string;
  stream: PassThrough;
  bytes: number;
}

/**
 * Writes a stream of records (each `write` is kept whole) to one object, or
 * to several when it outgrows `partSizeBytes`. Writable-stream conventions:
 * `write` returns false when the writer should wait for 'drain'; 'failed'
 * is emitted (once) when an object could not be written, after which
 * `write` throws.
 *
 * Every object is replaced atomically by the store. If the upload fails or is
 * aborted, the objects this upload already completed are removed again, so a
 * failed export never leaves a set of parts that looks complete (as far as the
 * store lets it delete them).
 */
export class SplitUpload extends EventEmitter {
  private current: OpenPart | undefined;
  private readonly uploads: Promise<void>[] = [];
  private readonly completed: string[] = [];
  private opened = 0;
  private waitingForDrain = false;
  private failure: Error | undefined;
  /** Small records are copied into larger writes (a COPY sends one message per row). */
  private batch: Buffer | undefined;
  private batchBytes = 0;
  bytes = 0;

  constructor(
    private readonly store: ObjectStore,
    private readonly bucket: string,
    private readonly key: string,
    private readonly options: SplitUploadOptions,
  ) {
    super();
  }

  get failed(): Error | undefined {
    return this.failure;
  }

  write(chunk: Buffer): boolean {
    if (this.failure) throw this.failure;
    let part = this.current;
    if (part && part.bytes > 0 && part.bytes + chunk.length > this.options.partSizeBytes) {
      this.endCurrent();
      part = undefined;
    }
    part ??= this.open();
    part.bytes += chunk.length;
    this.bytes += chunk.length;
    if (chunk.length >= BATCH_BYTES) {
      this.flush();
      return this.send(part, chunk);
    }
    if (this.batchBytes + chunk.length > BATCH_BYTES) this.flush();
    this.batch ??= Buffer.allocUnsafe(BATCH_BYTES);
    this.batch.set(chunk, this.batchBytes);
    this.batchBytes += chunk.length;
    return !this.waitingForDrain;
  }

  private flush(): boolean {
    const part = this.current;
    if (!part || !this.batch || this.batchBytes === 0) return !this.waitingForDrain;
    const data = this.batch.subarray(0, this.batchBytes);
    this.batch = undefined;
    this.batchBytes = 0;
    return this.send(part, data);
  }

  private send(part: OpenPart, data: Buffer): boolean {
    if (part.stream.write(data)) return !this.waitingForDrain;
    if (!this.waitingForDrain) {
      this.waitingForDrain = true;
      const stream = part.stream;
      stream.once('drain', () => {
        if (this.current?.stream === stream) this.drained();
      });
    }
    return false;
  }

  /** Ends the last object and waits for every object to be stored; stale later parts of an earlier export are removed. */
  async finish(): Promise<SplitUploadResult> {
    if (this.failure) throw this.failure;
    if (this.opened === 0) this.open(); // an empty export is still one (empty) object
    this.endCurrent();
    await Promise.all(this.uploads);
    if (this.failure) throw this.failure;
    // Stale parts are found by listing (s3:ListBucket, which an export needs anyway to check the bucket) rather
    // than by reading each key: a role that may write but not read would otherwise fail here, after the
    // export's objects were complete, and leave them behind unless it may also delete them.
    const present = new Set((await this.store.list(this.bucket, `${this.key}_part`)).map((o) => o.key));
    for (let n = this.opened + 1; present.has(partKey(this.key, n)); n++) {
      await this.store.delete(this.bucket, partKey(this.key, n));
    }
    const keys = Array.from({ length: this.opened }, (_, i) => partKey(this.key, i + 1));
    return { files: this.opened, bytes: this.bytes, keys };
  }

  /** Abandons the upload: the open object is never written and completed ones are removed. */
  async abort(reason: Error): Promise<void> {
    this.failure ??= reason;
    const part = this.current;
    this.current = undefined;
    this.batch = undefined;
    this.batchBytes = 0;
    part?.stream.destroy(reason);
    await Promise.allSettled(this.uploads);
    for (const key of this.completed.splice(0)) await this.store.delete(this.bucket, key).catch(() => undefined);
  }

  private open(): OpenPart {
    const key = partKey(this.key, ++this.opened);
    const stream = new PassThrough({ highWaterMark: this.options.highWaterMark ?? 1024 * 1024 });
    // The store reports a failed stream through put(); until it reads the stream, nobody else listens.
    stream.on('error', () => {});
    const part: OpenPart = { key, stream, bytes: 0 };
    this.current = part;
    const upload = this.store
      .put(this.bucket, key, stream, { kmsKeyId: this.options.kmsKeyId, contentType: this.options.contentType })
      .then(
        () => {
          this.completed.push(key);
        },
        (error: Error) => {
          if (!stream.destroyed) stream.destroy();
          if (this.failure) return;
          this.failure = error;
          this.emit('failed', error);
        },
      );
    this.uploads.push(upload);
    return part;
  }

  private endCurrent(): void {
    const part = this.current;
    if (!part) return;
    this.flush();
    this.current = undefined;
    part.stream.end();
    // The next object starts empty: a writer waiting for the old one may go on.
    if (this.waitingForDrain) setImmediate(() => this.drained());
  }

  private drained(): void {
    if (!this.waitingForDrain) return;
    this.waitingForDrain = false;
    this.emit('drain');
  }
}
