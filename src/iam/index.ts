/**
 * Access control of a pgsage installation, assembled from its configuration:
 * the service authorizer (roles and policies for calls from the database), the
 * edge's authenticator (SigV4), the gateway's internal signing key and the TLS
 * material of the gateway and the edge.
 */
import type https from 'node:https';
import type { Config } from '../config/index.js';
import type { MlServices } from '../ml/client.js';
import type { Authenticator } from '../services/edge.js';
import { AuthorizedMlServices } from './authorized-services.js';
import { ServiceAuthorizer } from './authorizer.js';
import { edgeAuthenticator, gatewaySigner, type InternalKey, makeInternalKey } from './edge-auth.js';
import { type ResolvedIam, resolveIam } from './roles.js';
import { type CertificatePair, type GatewayTls, loadTls, pinnedClientOptions } from './tls.js';

export { AuthorizedMlServices } from './authorized-services.js';
export { type S3Action, ServiceAuthorizer } from './authorizer.js';
export { ROLE_PARAMETERS } from './config.js';

export interface AccessControl {
  iam: ResolvedIam;
  /** Checks calls from the database; also what exports to S3 call (authorizeS3). */
  authorizer: ServiceAuthorizer;
  /** Wraps the gateway's ML services so that every call is authorized first. */
  authorize(services: MlServices): AuthorizedMlServices;
  /** For ServiceEdge.authenticator. */
  edgeAuthenticator: Authenticator;
  /** The gateway's own key for its calls to the edge. */
  internalKey: InternalKey;
  /** HttpMlServices options (sign hook and, with an HTTPS edge, the pinned certificate) for an edge URL. */
  edgeClient(endpoint: string): {
    sign: ReturnType<typeof gatewaySigner>;
    tls?: https.AgentOptions;
  };
  gatewayTls?: GatewayTls;
  edgeTls?: CertificatePair;
}

export function createAccessControl(config: Config, cwd = process.cwd()): AccessControl {
  const scope = { region: config.region, accountId: config.accountId };
  const iam = resolveIam(config);
  const authorizer = new ServiceAuthorizer(iam, scope);
  const internalKey = makeInternalKey(scope);
  const tls = loadTls(config.tls, cwd);
  return {
    iam,
    authorizer,
    authorize: (services) => new AuthorizedMlServices(services, authorizer),
    edgeAuthenticator: edgeAuthenticator({ iam, scope, internal: internalKey }),
    internalKey,
    edgeClient: (endpoint) => ({
      sign: gatewaySigner(endpoint, internalKey, config.region),
      ...(tls.edge ? { tls: pinnedClientOptions(tls.edge) } : {}),
    }),
    gatewayTls: tls.gateway,
    edgeTls: tls.edge,
  };
}
