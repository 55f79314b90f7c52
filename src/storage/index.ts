import path from 'node:path';
import type { Config } from '../config/index.js';
import { LocalObjectStore } from './local-store.js';
import type { ObjectStore } from './object-store.js';
import { S3ObjectStore } from './s3-store.js';

export { LocalObjectStore } from './local-store.js';
export * from './object-store.js';
export { S3ObjectStore } from './s3-store.js';
export { SplitUpload } from './split-upload.js';

/** Directory of the local object store: `storage.root`, else <dataDir>/s3. */
export function localStoreRoot(config: Config): string {
  return path.resolve(config.dataDir, config.storage.root ?? 's3');
}

/**
 * The object store the configuration names. Buckets must exist before they
 * are written to (as on S3): `pgsage bucket create` makes them.
 */
export function createObjectStore(config: Config): ObjectStore {
  const storage = config.storage;
  if (storage.kind === 'local') return new LocalObjectStore(localStoreRoot(config), false);
  const accessKeyId = storage.accessKeyId ?? config.aws.accessKeyId;
  const secretAccessKey = storage.secretAccessKey ?? config.aws.secretAccessKey;
  const explicit = storage.accessKeyId !== undefined;
  return new S3ObjectStore({
    region: config.region,
    endpoint: storage.endpoint,
    forcePathStyle: storage.forcePathStyle,
    credentials:
      accessKeyId && secretAccessKey
        ? {
            accessKeyId,
            secretAccessKey,
            sessionToken: explicit ? undefined : config.aws.sessionToken,
          }
        : undefined,
  });
}
