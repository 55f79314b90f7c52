/**
 * Who may use the service edge. With access keys configured (iam.credentials)
 * every signed request must carry a valid AWS Signature Version 4 and its
 * principal's role, if it has one, must allow the operation; unsigned requests
 * are served only as iam.anonymous allows (by default: from loopback, and only
 * while no keys are configured). The gateway signs its own calls with a key
 * made at start-up that never leaves the process.
 */
import { randomBytes } from 'node:crypto';
import type { Authenticator, EdgeRequest } from '../services/edge.js';
import { AwsError } from '../services/errors.js';
import { evaluate } from './policy.js';
import type { ClusterScope, ResolvedIam } from './roles.js';
import { type Credentials, hasSignature, signRequest, verifyRequest } from './sigv4.js';

export interface InternalKey extends Credentials {
  principal: string;
}

/** A fresh key for the gateway's own calls to the edge (kept in memory only). */
export function makeInternalKey(scope: ClusterScope): InternalKey {
  return {
    accessKeyId: `PGSAGEGW${randomBytes(8).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64url'),
    principal: `arn:aws:iam::${scope.accountId}:user/pgsage-gateway`,
  };
}

/** An edge request as IAM sees it: the signing name of its service, the action and the resource. */
export interface EdgeOperation {
  signingName?: string;
  action: string;
  resource: string;
}

const JSON_PREFIXES: Record<string, string> = {
  Comprehend_20171127: 'comprehend',
  SageMaker: 'sagemaker',
};

/** Maps an edge request to its IAM action and resource. */
export function describeOperation(request: EdgeRequest, scope: ClusterScope): EdgeOperation {
  const arn = (type: string, name: unknown) =>
    `arn:aws:sagemaker:${scope.region}:${scope.accountId}:${type}/${String(name).toLowerCase()}`;
  const targetHeader = request.headers['x-amz-target'];
  const target = Array.isArray(targetHeader) ? targetHeader[0] : targetHeader;
  if (target !== undefined) {
    const dot = target.lastIndexOf('.');
    const prefix = target.slice(0, dot);
    const operation = target.slice(dot + 1);
    const service = JSON_PREFIXES[prefix];
    if (service === 'comprehend') {
      return {
        signingName: service,
        action: `comprehend:${operation}`,
        resource: `arn:aws:comprehend:${scope.region}:${scope.accountId}:*`,
      };
    }
    if (service === 'sagemaker') {
      let input: Record<string, unknown> = {};
      try {
        const parsed = JSON.parse(request.body.toString('utf8'));
        if (typeof parsed === 'object' && parsed !== null) input = parsed;
      } catch {
        // the service reports the malformed body itself
      }
      const resource =
        typeof input.EndpointName === 'string'
          ? arn('endpoint', input.EndpointName)
          : typeof input.EndpointConfigName === 'string'
            ? arn('endpoint-config', input.EndpointConfigName)
            : typeof input.ModelName === 'string'
              ? arn('model', input.ModelName)
              : typeof input.TrainingJobName === 'string'
                ? arn('training-job', input.TrainingJobName)
                : '*';
      return { signingName: service, action: `sagemaker:${operation}`, resource };
    }
    return { action: `${prefix.toLowerCase()}:${operation}`, resource: '*' };
  }
  const invocation = /^\/endpoints\/([^/]+)\/invocations$/.exec(request.path);
  if (invocation && request.method === 'POST') {
    let name = invocation[1];
    try {
      name = decodeURIComponent(name);
    } catch {
      // left as sent
    }
    return { signingName: 'sagemaker', action: 'sagemaker:InvokeEndpoint', resource: arn('endpoint', name) };
  }
  if (request.method === 'GET' && request.path === '/metrics') return { action: 'pgsage:GetMetrics', resource: '*' };
  return { action: `pgsage:${request.method}`, resource: '*' };
}

/** Prometheus cannot sign requests: a scraper on this host reads /metrics without a signature. */
const isLocalScrape = (request: EdgeRequest) =>
  request.method === 'GET' && request.path === '/metrics' && isLoopback(request.remoteAddress);

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return v4.startsWith('127.') || address === '::1';
}

function accessKeyIdOf(request: EdgeRequest): string | undefined {
  const header = request.headers.authorization;
  const text = Array.isArray(header) ? header[0] : header;
  const fromHeader = text ? /Credential=([^/,\s]+)\//.exec(text)?.[1] : undefined;
  if (fromHeader) return fromHeader;
  const credential = request.query.get('X-Amz-Credential');
  return credential ? credential.split('/')[0] : undefined;
}

export interface EdgeAccessOptions {
  iam: ResolvedIam;
  scope: ClusterScope;
  internal: InternalKey;
  now?: () => Date;
}

/** The edge's authenticator (ServiceEdge.authenticator). Sets request.principal. */
export function edgeAuthenticator(options: EdgeAccessOptions): Authenticator {
  const { iam, scope, internal } = options;
  const keys = new Map(
    iam.credentials.map((c) => [
      c.accessKeyId,
      {
        secret: c.secretAccessKey,
        principal: c.principal ?? `arn:aws:iam::${scope.accountId}:user/${c.accessKeyId}`,
        role: c.role,
      },
    ]),
  );
  keys.set(internal.accessKeyId, { secret: internal.secretAccessKey, principal: internal.principal, role: undefined });
  const enforce = iam.credentials.length > 0;

  return (request) => {
    if (request.method === 'GET' && request.path === '/_pgsage/health') return;
    // The gateway's own calls in this process: the same principal its signed calls carry.
    if (request.inProcess) {
      request.principal = internal.principal;
      return;
    }
    const operation = describeOperation(request, scope);
    const url = request.rawUrl ?? `${request.path}${request.query.size ? `?${request.query}` : ''}`;
    if (hasSignature({ url, headers: request.headers })) {
      const keyId = accessKeyIdOf(request);
      // Without configured keys signatures are not checked (any SDK credentials work), except the gateway's own.
      if (enforce || keyId === internal.accessKeyId) {
        const verified = verifyRequest(
          { method: request.method, url, headers: request.headers, body: request.body },
          {
            secretFor: (id) => keys.get(id)?.secret,
            region: scope.region,
            service: operation.signingName,
            now: options.now?.(),
          },
        );
        const key = keys.get(verified.accessKeyId)!;
        request.principal = key.principal;
        if (key.role) {
          const role = iam.roles.get(key.role);
          const decision = role ? evaluate([role.policy], operation.action, operation.resource) : undefined;
          if (decision?.decision !== 'allowed') {
            const because =
              decision?.decision === 'explicitDeny'
                ? 'with an explicit deny in an identity-based policy'
                : `because no identity-based policy allows the ${operation.action} action`;
            throw new AwsError(
              'AccessDeniedException',
              `User: ${key.principal} is not authorized to perform: ${operation.action} on resource: ${operation.resource} ${because}`,
              400,
            );
          }
        }
        return;
      }
    }
    const allowed =
      iam.anonymous === 'any' ||
      (iam.anonymous === 'loopback' && isLoopback(request.remoteAddress)) ||
      isLocalScrape(request);
    if (!allowed) {
      throw new AwsError(
        'MissingAuthenticationToken',
        iam.anonymous === 'loopback'
          ? 'Request is missing Authentication Token: unsigned requests are accepted from this host only (iam.anonymous = loopback). Sign requests with an access key of iam.credentials.'
          : 'Request is missing Authentication Token: sign requests (AWS Signature Version 4) with an access key of iam.credentials.',
        403,
      );
    }
    request.principal = 'anonymous';
  };
}

/**
 * The sign hook of HttpMlServices: signs the gateway's calls to the edge with
 * the internal key. The body is sent UNSIGNED-PAYLOAD: these calls stay inside
 * the host (or inside TLS), and hashing megabytes of batch input on both ends
 * would cost the event loop for nothing.
 */
export function gatewaySigner(
  endpoint: string,
  key: InternalKey,
  region: string,
): (request: { method: string; path: string; headers: Record<string, string>; body: Buffer }) => void {
  const host = new URL(endpoint).host;
  return (request) => {
    request.headers.host = host;
    const target = request.headers['x-amz-target'] ?? '';
    const service =
      request.path.startsWith('/endpoints/') || target.startsWith('SageMaker.') ? 'sagemaker' : 'comprehend';
    signRequest(request, { credentials: key, region, service, contentSha256: 'unsigned' });
  };
}
