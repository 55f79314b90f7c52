/**
 * The shape of the `iam` and `tls` configuration sections. They live here, next
 * to the code that enforces them, and are embedded in the one configuration
 * schema (src/config/schema.ts).
 */
import { z } from 'zod';
import { formatPath, type PolicyDocument, validatePolicy } from './policy.js';

/** Aurora's cluster parameters, one per service, each naming the role ARN calls to that service use. */
export const ROLE_PARAMETERS = {
  comprehend: 'aws_default_comprehend_role',
  sagemaker: 'aws_default_sagemaker_role',
  s3: 'aws_default_s3_role',
} as const;

export type MlService = keyof typeof ROLE_PARAMETERS;
export type RoleParameter = (typeof ROLE_PARAMETERS)[MlService];

export const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/(?:[\w+=,.@-]+\/)*[\w+=,.@-]{1,64}$/;

const roleArn = z
  .string()
  .regex(ROLE_ARN, 'must be a role ARN such as arn:aws:iam::123456789012:role/AllowAuroraSageMakerRole');

/** A policy document, validated with IAM's grammar; problems point at the element (Statement[2].Effect). */
export const policyDocumentSchema = z
  .unknown()
  .superRefine((value, ctx) => {
    for (const issue of validatePolicy(value))
      ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
  })
  .transform((value) => value as PolicyDocument);

export const roleSchema = z
  .object({
    /** arn:aws:iam::<account>:role/<name>, as the cluster parameters name it. */
    arn: roleArn,
    description: z.string().optional(),
    /** The role's permissions (an identity-based policy document). */
    policy: policyDocumentSchema,
  })
  .strict();

export const credentialSchema = z
  .object({
    /** What clients put in AWS_ACCESS_KEY_ID. */
    accessKeyId: z.string().regex(/^\w{3,128}$/, 'must be 3 to 128 letters, digits or underscores'),
    /** What clients put in AWS_SECRET_ACCESS_KEY (at least 16 characters). */
    secretAccessKey: z.string().min(16, 'must be at least 16 characters (pgsage iam create-access-key makes one)'),
    /** Who the key belongs to, as logs and errors name it; default arn:aws:iam::<accountId>:user/<accessKeyId>. */
    principal: z.string().min(1).optional(),
    /** A role of iam.roles whose policy limits what the key may do on the edge; omitted → unrestricted. */
    role: roleArn.optional(),
  })
  .strict();

export const ANONYMOUS_MODES = ['none', 'loopback', 'any'] as const;

export const iamSchema = z
  .object({
    /**
     * Service roles and their policies. Omitted (together with defaultRoles) →
     * pgsage's local roles, which allow every ML action in the cluster's region.
     */
    roles: z.array(roleSchema).optional(),
    /** Aurora's DB cluster parameters: the role each service's calls from the database use. */
    defaultRoles: z
      .object({
        aws_default_comprehend_role: roleArn.optional(),
        aws_default_sagemaker_role: roleArn.optional(),
        aws_default_s3_role: roleArn.optional(),
      })
      .strict()
      .optional(),
    /** Access keys the edge accepts (AWS Signature Version 4). None → signatures are not checked. */
    credentials: z.array(credentialSchema).default([]),
    /**
     * Unsigned requests to the edge: `none`, `loopback` (from 127.0.0.0/8 and ::1 only) or `any`.
     * Default: `loopback` while no credentials are configured, else `none`.
     */
    anonymous: z.enum(ANONYMOUS_MODES).optional(),
  })
  .strict()
  .superRefine((iam, ctx) => {
    const roles = new Map<string, number>();
    iam.roles?.forEach((role, index) => {
      if (roles.has(role.arn)) {
        ctx.addIssue({
          code: 'custom',
          path: ['roles', index, 'arn'],
          message: `${role.arn} is already defined by roles[${roles.get(role.arn)}]`,
        });
      }
      roles.set(role.arn, index);
    });
    const known = (arn: string) => roles.has(arn);
    const missing = (arn: string) =>
      iam.roles === undefined
        ? `names ${arn}, but iam.roles is not set (define the role there, e.g. with pgsage iam create-role)`
        : `names ${arn}, which is not a role of iam.roles`;
    for (const [parameter, arn] of Object.entries(iam.defaultRoles ?? {})) {
      if (arn !== undefined && !known(arn)) {
        ctx.addIssue({ code: 'custom', path: ['defaultRoles', parameter], message: missing(arn) });
      }
    }
    const keys = new Map<string, number>();
    iam.credentials.forEach((credential, index) => {
      if (keys.has(credential.accessKeyId)) {
        ctx.addIssue({
          code: 'custom',
          path: ['credentials', index, 'accessKeyId'],
          message: `is already used by credentials[${keys.get(credential.accessKeyId)}]`,
        });
      }
      keys.set(credential.accessKeyId, index);
      if (credential.role !== undefined && !known(credential.role)) {
        ctx.addIssue({ code: 'custom', path: ['credentials', index, 'role'], message: missing(credential.role) });
      }
    });
  });

export type IamConfig = z.infer<typeof iamSchema>;
export type IamConfigInput = z.input<typeof iamSchema>;
export type RoleConfig = z.infer<typeof roleSchema>;
export type CredentialConfig = z.infer<typeof credentialSchema>;

const certificatePair = {
  /** PEM certificate (chain) file. */
  cert: z.string().min(1).optional(),
  /** PEM private key file. */
  key: z.string().min(1).optional(),
};

function requirePair(value: { cert?: string; key?: string }, ctx: z.RefinementCtx): void {
  if ((value.cert === undefined) !== (value.key === undefined)) {
    ctx.addIssue({
      code: 'custom',
      path: [value.cert === undefined ? 'cert' : 'key'],
      message: 'cert and key must be given together',
    });
  }
}

export const tlsSchema = z
  .object({
    /** Certificate and key for both the gateway and the edge (each can be overridden below). */
    ...certificatePair,
    gateway: z
      .object({
        ...certificatePair,
        /** Refuse clients that do not negotiate TLS (like a pg_hba.conf of hostssl lines only). */
        require: z.boolean().default(false),
      })
      .strict()
      .superRefine(requirePair)
      .prefault({}),
    edge: z.object(certificatePair).strict().superRefine(requirePair).prefault({}),
  })
  .strict()
  .superRefine(requirePair);

export type TlsConfig = z.infer<typeof tlsSchema>;

/** A zod issue path as the configuration error shows it: iam.roles[1].policy.Statement[2].Effect. */
export function describePath(path: PropertyKey[]): string {
  return formatPath(path.map((key) => (typeof key === 'number' ? key : String(key))));
}
