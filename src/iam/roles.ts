/**
 * The effective roles of a pgsage installation: the configured ones, or — when
 * the configuration names none — pgsage's local roles, which allow every ML
 * action in the cluster's own region and account so that `pgsage up` works on a
 * laptop without any setup.
 */
import {
  type ANONYMOUS_MODES,
  type CredentialConfig,
  type IamConfig,
  type MlService,
  ROLE_PARAMETERS,
  type RoleConfig,
  type RoleParameter,
} from './config.js';
import type { PolicyDocument } from './policy.js';

export interface ClusterScope {
  region: string;
  accountId: string;
}

export interface ResolvedIam {
  roles: Map<string, RoleConfig>;
  /** Role ARN per cluster parameter; undefined → nothing attached. */
  attached: Record<RoleParameter, string | undefined>;
  /** pgsage's built-in local roles are in use (the configuration defines none). */
  localDefaults: boolean;
  credentials: CredentialConfig[];
  anonymous: (typeof ANONYMOUS_MODES)[number];
}

export const SERVICE_LABELS: Record<MlService, string> = {
  comprehend: 'Amazon Comprehend',
  sagemaker: 'SageMaker',
  s3: 'Amazon S3',
};

export const localRoleArn = (accountId: string, service: MlService) =>
  `arn:aws:iam::${accountId}:role/pgsage-local-${service}`;

/** Policies of the local roles: everything the service offers, limited to the cluster's region and account. */
export function localRolePolicy(service: MlService, scope: ClusterScope): PolicyDocument {
  const resource: Record<MlService, string> = {
    comprehend: '*',
    sagemaker: `arn:aws:sagemaker:${scope.region}:${scope.accountId}:*`,
    s3: 'arn:aws:s3:::*',
  };
  const sid: Record<MlService, string> = {
    comprehend: 'PgsageLocalComprehend',
    sagemaker: 'PgsageLocalSageMaker',
    s3: 'PgsageLocalS3',
  };
  return {
    Version: '2012-10-17',
    Statement: [{ Sid: sid[service], Effect: 'Allow', Action: `${service}:*`, Resource: resource[service] }],
  };
}

export function localRoles(scope: ClusterScope): RoleConfig[] {
  return (Object.keys(ROLE_PARAMETERS) as MlService[]).map((service) => ({
    arn: localRoleArn(scope.accountId, service),
    description: `pgsage local default: every ${SERVICE_LABELS[service]} action in ${scope.region} (replace to lock down)`,
    policy: localRolePolicy(service, scope),
  }));
}

export function localAttachments(scope: ClusterScope): Record<RoleParameter, string> {
  return {
    aws_default_comprehend_role: localRoleArn(scope.accountId, 'comprehend'),
    aws_default_sagemaker_role: localRoleArn(scope.accountId, 'sagemaker'),
    aws_default_s3_role: localRoleArn(scope.accountId, 's3'),
  };
}

/** Whether the configuration leaves roles to pgsage's local defaults. */
export function usesLocalDefaults(iam: Pick<IamConfig, 'roles' | 'defaultRoles'> | undefined): boolean {
  return iam?.roles === undefined && iam?.defaultRoles === undefined;
}

export function resolveIam(config: { iam: IamConfig } & ClusterScope): ResolvedIam {
  const iam = config.iam;
  const localDefaults = usesLocalDefaults(iam);
  const roles = localDefaults ? localRoles(config) : (iam.roles ?? []);
  const attached = localDefaults
    ? localAttachments(config)
    : {
        aws_default_comprehend_role: iam.defaultRoles?.aws_default_comprehend_role,
        aws_default_sagemaker_role: iam.defaultRoles?.aws_default_sagemaker_role,
        aws_default_s3_role: iam.defaultRoles?.aws_default_s3_role,
      };
  return {
    roles: new Map(roles.map((role) => [role.arn, role])),
    attached,
    localDefaults,
    credentials: iam.credentials,
    anonymous: iam.anonymous ?? (iam.credentials.length === 0 ? 'loopback' : 'none'),
  };
}
