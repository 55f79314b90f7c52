/**
 * Where a model's artifact comes from: `ModelDataUrl` as SageMaker takes it
 * (`s3://bucket/key`, resolved in pgsage's object store) or a local
 * `file:///absolute/path`, which SageMaker does not have but which saves a
 * copy step when the model already sits on this machine.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ObjectNotFoundError, type ObjectStore, parseS3Url } from '../../storage/object-store.js';

export interface ModelArtifact {
  fileName: string;
  bytes: Buffer;
}

export class ModelDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelDataError';
  }
}

export class ModelDataResolver {
  constructor(private readonly objects: ObjectStore) {}

  /** Rejects with a ModelDataError whose message suits a ValidationException or a FailureReason. */
  async read(url: string): Promise<ModelArtifact> {
    if (url.startsWith('s3://')) {
      const { bucket, key } = this.s3(url);
      try {
        return { fileName: path.posix.basename(key), bytes: await this.objects.get(bucket, key) };
      } catch (error) {
        throw this.s3Failure(url, error);
      }
    }
    const file = this.file(url);
    try {
      return { fileName: path.basename(file), bytes: await readFile(file) };
    } catch (error) {
      throw new ModelDataError(`Could not read model data at ${url}: ${(error as Error).message}`);
    }
  }

  /** Checks that the artifact exists without reading it (CreateModel does this, as SageMaker does). */
  async check(url: string): Promise<void> {
    if (url.startsWith('s3://')) {
      const { bucket, key } = this.s3(url);
      let found = false;
      try {
        found = await this.objects.exists(bucket, key);
      } catch (error) {
        throw this.s3Failure(url, error);
      }
      if (!found) throw new ModelDataError(`Could not access model data at ${url}: the object does not exist.`);
      return;
    }
    const file = this.file(url);
    const info = await stat(file).catch(() => undefined);
    // Not isFile(): a named pipe is a fine source too (tests use one to hold a load back).
    if (!info || info.isDirectory()) throw new ModelDataError(`Could not access model data at ${url}: no such file.`);
  }

  private s3(url: string): { bucket: string; key: string } {
    try {
      return parseS3Url(url);
    } catch {
      throw new ModelDataError(`ModelDataUrl ${url} is not of the form s3://bucket/key.`);
    }
  }

  private s3Failure(url: string, error: unknown): ModelDataError {
    const reason = error instanceof ObjectNotFoundError ? 'the object does not exist' : (error as Error).message;
    return new ModelDataError(`Could not access model data at ${url}: ${reason}.`);
  }

  private file(url: string): string {
    if (!url.startsWith('file://')) {
      throw new ModelDataError(`ModelDataUrl must be s3://bucket/key or file:///absolute/path, got ${url}.`);
    }
    try {
      return fileURLToPath(url);
    } catch (error) {
      throw new ModelDataError(`ModelDataUrl ${url} is not a valid file URL: ${(error as Error).message}.`);
    }
  }
}
