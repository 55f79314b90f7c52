/**
 * Decides whether a call from the database may reach an ML service: the role
 * attached for that service (Aurora's aws_default_*_role cluster parameters)
 * must allow the action on the resource, and the resource must be in the
 * cluster's own region.
 */
import { SqlError, SqlState } from '../util/errors.js';
import { type MlService, ROLE_PARAMETERS } from './config.js';
import { type Decision, evaluate, splitArn } from './policy.js';
import { type ClusterScope, type ResolvedIam, SERVICE_LABELS } from './roles.js';

/** What each service is used for from SQL, for messages. */
const SQL_SURFACE: Record<MlService, string> = {
  comprehend: 'aws_comprehend.detect_sentiment',
  sagemaker: 'aws_sagemaker.invoke_endpoint',
  s3: 'aws_s3.query_export_to_s3',
};

export type S3Action =
  | 's3:PutObject'
  | 's3:GetObject'
  | 's3:AbortMultipartUpload'
  | 's3:ListBucket'
  | 's3:ListMultipartUploadParts'
  | 's3:DeleteObject'
  | (string & {});

export class ServiceAuthorizer {
  constructor(
    private readonly iam: ResolvedIam,
    readonly scope: ClusterScope,
  ) {}

  /** The resource Comprehend's sentiment calls are checked against (region-scoped; a policy's "*" matches it). */
  comprehendResource(): string {
    return `arn:aws:comprehend:${this.scope.region}:${this.scope.accountId}:*`;
  }

  /** The ARN of an endpoint of this cluster's region and account; names appear in lowercase, as SageMaker writes them. */
  endpointArn(name: string): string {
    return `arn:aws:sagemaker:${this.scope.region}:${this.scope.accountId}:endpoint/${name.toLowerCase()}`;
  }

  /**
   * An endpoint as SQL names it: a name (in the cluster's region), or an
   * endpoint ARN, which must be in the cluster's region and account.
   */
  resolveEndpoint(nameOrArn: string): { name: string; arn: string } {
    if (!nameOrArn.startsWith('arn:')) return { name: nameOrArn, arn: this.endpointArn(nameOrArn) };
    const [, , service, region, account, resource] = splitArn(nameOrArn);
    if (service !== 'sagemaker' || !resource?.startsWith('endpoint/') || resource.length <= 'endpoint/'.length) {
      throw new SqlError(
        SqlState.invalidParameterValue,
        `"${nameOrArn}" is not a SageMaker endpoint name or endpoint ARN`,
        undefined,
        "Pass the endpoint name, e.g. aws_sagemaker.invoke_endpoint('churn-xgb', NULL, …).",
      );
    }
    if (region !== this.scope.region) {
      throw new SqlError(
        SqlState.invalidParameterValue,
        `SageMaker endpoint ${nameOrArn} is in region ${region}; this cluster can only invoke endpoints in its own region ${this.scope.region}`,
        'Aurora machine learning connects a cluster to ML services in the same AWS Region only.',
        `Deploy the model to an endpoint in ${this.scope.region} and call it by name.`,
      );
    }
    if (account !== this.scope.accountId) {
      throw new SqlError(
        SqlState.invalidParameterValue,
        `SageMaker endpoint ${nameOrArn} belongs to account ${account}; this cluster can only invoke endpoints of account ${this.scope.accountId}`,
        'SageMaker endpoints are scoped to an account and are not public.',
      );
    }
    const name = resource.slice('endpoint/'.length);
    return { name, arn: this.endpointArn(name) };
  }

  /** Throws a SqlError (42501) unless the role attached for `service` allows `action` on `resource`. */
  authorize(service: MlService, action: string, resource: string): void {
    const parameter = ROLE_PARAMETERS[service];
    const roleArn = this.iam.attached[parameter];
    if (roleArn === undefined) {
      throw new SqlError(
        SqlState.insufficientPrivilege,
        `${SQL_SURFACE[service]} is unavailable: no IAM role is attached for ${SERVICE_LABELS[service]} (${parameter})`,
        `Every call to ${SERVICE_LABELS[service]} from the database is made with the role named by the cluster parameter ${parameter}, and none is set.`,
        `An administrator must set iam.defaultRoles.${parameter} in the pgsage configuration to the ARN of a role in iam.roles whose policy allows ${action} (pgsage iam attach ${service} <role-arn>), then restart pgsage.`,
      );
    }
    const role = this.iam.roles.get(roleArn);
    const decision: Decision = role ? evaluate([role.policy], action, resource) : { decision: 'implicitDeny' };
    if (decision.decision === 'allowed') return;
    const because =
      decision.decision === 'explicitDeny'
        ? 'with an explicit deny in an identity-based policy'
        : `because no identity-based policy allows the ${action} action`;
    const detail =
      decision.decision === 'explicitDeny'
        ? `Denied by Statement[${decision.statement.index}]${decision.statement.sid ? ` (Sid "${decision.statement.sid}")` : ''} of the policy of ${roleArn}, attached as ${parameter}. An explicit Deny overrides any Allow.`
        : `No statement of the policy of ${roleArn}, attached as ${parameter}, allows ${action} on ${resource}.`;
    throw new SqlError(
      SqlState.insufficientPrivilege,
      `${roleArn} is not authorized to perform: ${action} on resource: ${resource} ${because}`,
      detail,
      `Change the role's policy in iam.roles of the pgsage configuration (pgsage iam put-role-policy; try it with pgsage iam simulate ${service} ${action} ${resource}), then restart pgsage.`,
    );
  }

  /**
   * For exports and imports through Amazon S3 (aws_s3.query_export_to_s3 …):
   * checks `action` on arn:aws:s3:::bucket/key (object actions) or
   * arn:aws:s3:::bucket (bucket actions such as s3:ListBucket, or key omitted).
   * `region` (the one aws_commons.create_s3_uri carries) must be the cluster's.
   */
  authorizeS3(action: S3Action, bucket: string, key?: string, region?: string): void {
    if (region !== undefined && region !== '' && region !== this.scope.region) {
      throw new SqlError(
        SqlState.invalidParameterValue,
        `bucket ${bucket} is given in region ${region}; this cluster reaches Amazon S3 in its own region ${this.scope.region} only`,
        undefined,
        `Use a bucket in ${this.scope.region} (aws_commons.create_s3_uri(bucket, path, '${this.scope.region}')).`,
      );
    }
    const bucketAction = /^s3:(ListBucket|ListBucketMultipartUploads|GetBucketLocation)$/i.test(action);
    const resource = key === undefined || bucketAction ? `arn:aws:s3:::${bucket}` : `arn:aws:s3:::${bucket}/${key}`;
    this.authorize('s3', action, resource);
  }

  /** Which role a service's calls use (for `pgsage iam list` and diagnostics). */
  attachedRole(service: MlService): string | undefined {
    return this.iam.attached[ROLE_PARAMETERS[service]];
  }
}
