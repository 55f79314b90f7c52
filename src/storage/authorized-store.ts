import type { ObjectStore } from './object-store.js';

/** Checks an S3 action on a bucket/key against the IAM role for S3; throws to refuse. */
export type S3Authorizer = (action: string, bucket: string, key?: string) => void;

/**
 * (Methods are async so that a refusal arrives as a rejected promise, where
 * the store's callers expect failures.)
 *
 * An object store whose every call is first checked against the role attached
 * as aws_default_s3_role (IAM policy evaluation happens before anything
 * reaches the store).
 */
export function authorizedStore(store: ObjectStore, authorize: S3Authorizer): ObjectStore {
  return {
    kind: store.kind,
    location: store.location,
    get: async (bucket, key) => {
      authorize('s3:GetObject', bucket, key);
      return store.get(bucket, key);
    },
    put: async (bucket, key, body, options) => {
      authorize('s3:PutObject', bucket, key);
      return store.put(bucket, key, body, options);
    },
    exists: async (bucket, key) => {
      authorize('s3:GetObject', bucket, key);
      return store.exists(bucket, key);
    },
    list: async (bucket, prefix) => {
      authorize('s3:ListBucket', bucket);
      return store.list(bucket, prefix);
    },
    delete: async (bucket, key) => {
      authorize('s3:DeleteObject', bucket, key);
      return store.delete(bucket, key);
    },
    createBucket: async (bucket) => {
      authorize('s3:CreateBucket', bucket);
      return store.createBucket(bucket);
    },
    bucketExists: async (bucket) => {
      authorize('s3:ListBucket', bucket);
      return store.bucketExists(bucket);
    },
    listBuckets: () => store.listBuckets(),
    close: () => store.close?.(),
  };
}
