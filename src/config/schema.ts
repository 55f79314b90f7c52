import { z } from 'zod';
import { iamSchema, tlsSchema } from '../iam/config.js';

/** The embedded superuser's password unless configured: the quick start in README.md connects with it. */
export const DEFAULT_PG_PASSWORD = 'postgres';

const port = z.coerce.number().int().min(0).max(65535);

/**
 * The whole configuration of a pgsage installation. Every setting has a default
 * that makes `pgsage up` work on a laptop; files, environment variables and
 * command-line flags override it in that order.
 */
export const configSchema = z
  .object({
    /** Where the embedded PostgreSQL cluster, endpoint state, object store and logs live. */
    dataDir: z.string().min(1).default('.pgsage'),
    /** Address the gateway, bridge and service edge bind to. Loopback unless told otherwise. */
    host: z.string().min(1).default('127.0.0.1'),
    /** PostgreSQL wire-protocol port clients connect to (the gateway). */
    port: port.default(6543),
    /** AWS-compatible HTTP service edge (Comprehend, SageMaker, S3-facing APIs). */
    servicesPort: port.default(4566),
    /** Port the in-database functions reach through dblink for the per-row path. */
    bridgePort: port.default(6544),
    postgres: z
      .object({
        /** Connection string of an existing PostgreSQL ≥ 14 to use instead of the embedded one. */
        upstream: z.string().min(1).optional(),
        /** Port of the embedded PostgreSQL (it listens on 127.0.0.1 only). */
        port: port.default(6542),
        user: z.string().min(1).default('postgres'),
        password: z.string().min(1).default(DEFAULT_PG_PASSWORD),
      })
      .strict()
      .prefault({}),
    /** AWS region the "cluster" lives in; endpoints and buckets are resolved in it. */
    region: z.string().min(1).default('us-east-1'),
    /** Account id used in the ARNs of locally hosted resources. */
    accountId: z
      .string()
      .regex(/^\d{12}$/, 'must be 12 digits')
      .default('000000000000'),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        /** Also write structured log lines to stderr (they always go to <dataDir>/logs/pgsage.log). */
        stderr: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    services: z
      .object({
        /** Largest request body the edge accepts, in bytes (SageMaker's limit is 6 MB). */
        maxBodyBytes: z.coerce
          .number()
          .int()
          .positive()
          .default(6 * 1024 * 1024),
      })
      .strict()
      .prefault({}),
    batch: z
      .object({
        /**
         * Share of the gateway's JavaScript heap that batched statements may
         * fill: past it, the one that has read the most rows is stopped with
         * 53200, so that the gateway goes on serving (a full heap would end it).
         */
        heapShare: z.coerce.number().gt(0).max(1).default(0.8),
      })
      .strict()
      .prefault({}),
    /**
     * Where ML calls go: `local` (pgsage's own services on the edge) or `aws`
     * (real Amazon Comprehend and SageMaker in `region`, with the AWS SDK's
     * usual credential chain or the keys below).
     */
    backend: z.enum(['local', 'aws']).default('local'),
    aws: z
      .object({
        /** Endpoint override for the `aws` backend (tests point it at a pgsage edge; normally unset). */
        endpoint: z.string().url().optional(),
        accessKeyId: z.string().min(1).optional(),
        secretAccessKey: z.string().min(1).optional(),
        sessionToken: z.string().min(1).optional(),
      })
      .strict()
      .prefault({}),
    /** Object store for aws_s3.query_export_to_s3 and training data (owned by the storage module). */
    storage: z
      .object({
        /** `local`: a directory of buckets under <dataDir>/s3; `s3`: any S3-compatible store. */
        kind: z.enum(['local', 's3']).default('local'),
        /** Directory of buckets for `local` (default <dataDir>/s3). */
        root: z.string().min(1).optional(),
        /** S3-compatible endpoint URL (MinIO, R2, Ceph…); omitted → AWS S3 in `region`. */
        endpoint: z.string().url().optional(),
        forcePathStyle: z.boolean().default(true),
        accessKeyId: z.string().min(1).optional(),
        secretAccessKey: z.string().min(1).optional(),
        /** Exports larger than this are split into path, path_part2, … (Aurora: about 6 GB). */
        partSizeBytes: z.coerce
          .number()
          .int()
          .positive()
          .default(6 * 1024 ** 3),
      })
      .strict()
      .prefault({}),
    /** IAM-style access control: service roles and policies, edge credentials (src/iam; docs/security.md). */
    iam: iamSchema.prefault({}),
    /** TLS for the gateway and the edge: certificate and key files (src/iam/tls.ts; docs/security.md). */
    tls: tlsSchema.prefault({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
