import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CatalogRegistry } from './batch/catalog-registry.js';
import { DdlListener } from './batch/ddl-listener.js';
import { MemoryGuard } from './batch/memory-guard.js';
import { BatchStatistics } from './batch/statistics.js';
import type { Config } from './config/index.js';
import { type PortRole, portsInUse, portTakenMessage } from './config/ports.js';
import { EmbeddedPostgres } from './db/embedded.js';
import type { PostgresTarget } from './db/target.js';
import { UpstreamPostgres } from './db/upstream.js';
import { queryExportHandler } from './export/query-export.js';
import { syncBridgeConninfo } from './extension/install.js';
import { BridgeServer } from './gateway/bridge.js';
import { MlInterceptor } from './gateway/interceptor.js';
import { GatewayServer } from './gateway/server.js';
import { createAccessControl, type S3Action } from './iam/index.js';
import { AwsMlServices } from './ml/aws-services.js';
import { HttpMlServices } from './ml/client.js';
import { perRowHandler } from './ml/per-row.js';
import { ServiceEdge } from './services/edge.js';
import { registerServices } from './services/index.js';
import { loadParser } from './sql/parser.js';
import { authorizedStore } from './storage/authorized-store.js';
import { createObjectStore } from './storage/index.js';
import { reachableHost, urlHost } from './util/addresses.js';
import type { Logger } from './util/log.js';
import { packagePath } from './util/paths.js';
import { portFree } from './util/port-free.js';

export interface RunningPgsage {
  config: Config;
  statistics: BatchStatistics;
  target: PostgresTarget;
  gateway: GatewayServer;
  bridge: BridgeServer;
  edge: ServiceEdge;
  /** What a client connects to. */
  connectionString(database?: string): string;
  /**
   * Resolves (never rejects) when a part pgsage cannot run without stops on
   * its own, such as the embedded PostgreSQL being killed; the rest keeps
   * running until stop(), so the caller decides what to tell and when to stop.
   */
  failed: Promise<Error>;
  stop(): Promise<void>;
}

/** Every port is checked before anything starts: a clash found later would leave a new cluster or a half-started pgsage. */
async function assertPortsFree(config: Config): Promise<void> {
  for (const use of portsInUse(config)) {
    if (!(await portFree(use.host, use.port))) throw new Error(portTakenMessage(use));
  }
}

/** A bind that loses a race after assertPortsFree still names the setting to change. */
async function listenAs<T>(role: PortRole, host: string, port: number, listen: () => Promise<T>): Promise<T> {
  try {
    return await listen();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new Error(portTakenMessage({ role, host, port }));
    throw error;
  }
}

/** The bridge secret is generated once per data directory and kept private to its owner. */
function bridgeSecret(dataDir: string): string {
  const file = path.join(dataDir, 'bridge-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}

/**
 * Tells the embedded server where the bridge listens: a file in its data
 * directory, readable only by the server's OS user and, through
 * pg_read_file, by superusers (the extension's SECURITY DEFINER functions).
 */
function publishBridgeConninfo(clusterDir: string, conninfo: string): void {
  const file = path.join(clusterDir, 'pgsage_bridge.conninfo');
  writeFileSync(file, `${conninfo}\n`, { mode: 0o600 });
  const owner = statSync(clusterDir);
  if (process.getuid?.() === 0) chownSync(file, owner.uid, owner.gid);
}

export async function startPgsage(config: Config, logger: Logger): Promise<RunningPgsage> {
  const stack: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    while (stack.length) {
      const stop = stack.pop()!;
      await stop().catch((error) => logger.error({ err: error }, 'error while stopping'));
    }
  };
  let reportFailure: (error: Error) => void = () => {};
  const failed = new Promise<Error>((resolve) => {
    reportFailure = resolve;
  });
  try {
    // Roles, policies, edge keys and TLS files are checked before anything starts.
    const access = createAccessControl(config);
    const parser = loadParser();
    let target: PostgresTarget;
    if (config.postgres.upstream) {
      await assertPortsFree(config);
      const upstream = new UpstreamPostgres(config.postgres.upstream);
      await upstream.verify();
      target = upstream;
    } else {
      const embedded = new EmbeddedPostgres({
        dataDir: config.dataDir,
        port: config.postgres.port,
        user: config.postgres.user,
        password: config.postgres.password,
        extensionSource: packagePath('src', 'extension', 'sql'),
        settings: { 'aws_ml.enable_function_migration': 'on' },
        logger,
        onUnexpectedExit: (reason) => reportFailure(new Error(`PostgreSQL exited unexpectedly (${reason})`)),
      });
      // "Already running (pid N)" says more than "port in use" when a killed pgsage left its server behind.
      embedded.assertNotRunning();
      await assertPortsFree(config);
      await embedded.start();
      target = embedded;
    }
    stack.push(() => target.stop());

    const edge = new ServiceEdge({
      host: config.host,
      port: config.servicesPort,
      maxBodyBytes: config.services.maxBodyBytes,
      logger: logger.child({ component: 'edge' }),
      tls: access.edgeTls,
    });
    edge.authenticator = access.edgeAuthenticator;
    const statistics = new BatchStatistics();
    edge.route('GET', '/metrics', () => ({
      status: 200,
      headers: { 'content-type': 'text/plain; version=0.0.4' },
      body: statistics.prometheus(),
    }));
    const services = await registerServices(edge, { config, logger });
    stack.push(() => services.close());
    await listenAs('servicesPort', config.host, config.servicesPort, () => edge.listen());
    stack.push(() => edge.close());

    const edgeUrl = `${access.edgeTls ? 'https' : 'http'}://127.0.0.1:${edge.port}`;
    // The `aws` backend sends ML calls to real Comprehend/SageMaker; `local` to the services of this edge.
    const backendClient =
      config.backend === 'aws'
        ? new AwsMlServices({
            region: config.region,
            endpoint: config.aws.endpoint,
            credentials:
              config.aws.accessKeyId && config.aws.secretAccessKey
                ? {
                    accessKeyId: config.aws.accessKeyId,
                    secretAccessKey: config.aws.secretAccessKey,
                    sessionToken: config.aws.sessionToken,
                  }
                : undefined,
          })
        : new HttpMlServices({
            endpoint: edgeUrl,
            ...access.edgeClient(edgeUrl),
            // The services live in this process: same routing and error shapes, without HTTP.
            inProcess: (method, path, headers, body, rows) => edge.invokeInProcess(method, path, headers, body, rows),
            inProcessJson: (target, input) => edge.invokeJsonInProcess(target, input),
          });
    // Every ML call from the database, batch or per row, is checked against the service's role first.
    const ml = access.authorize(backendClient);
    stack.push(async () => backendClient.close());

    const secret = bridgeSecret(config.dataDir);
    const bridge = new BridgeServer({
      host: config.host,
      port: config.bridgePort,
      secret,
      handle: perRowHandler(ml, statistics),
      logger: logger.child({ component: 'bridge' }),
    });
    await listenAs('bridgePort', config.host, config.bridgePort, () => bridge.listen());
    stack.push(() => bridge.close());

    const upstreamMode = !(target instanceof EmbeddedPostgres);
    if (target instanceof EmbeddedPostgres) {
      publishBridgeConninfo(target.clusterDir, bridge.conninfo());
    } else {
      await syncBridgeConninfo(target.adminConnection(), bridge.conninfo(), logger);
    }

    await parser;
    const catalogs = new CatalogRegistry(() => {
      statistics.catalogReads += 1;
    });
    const ddl = new DdlListener({
      connection: (database) => target.adminConnection(database),
      onChange: (database) => catalogs.invalidate(database),
      figures: statistics,
      logger: logger.child({ component: 'ddl-listener' }),
    });
    stack.push(() => ddl.close());
    const interceptorContext = {
      catalogs,
      ddl,
      services: ml,
      statistics,
      memory: new MemoryGuard(config.batch.heapShare),
      handlers: [
        queryExportHandler({
          config,
          logger: logger.child({ component: 'export' }),
          // Exports are checked against the role attached as aws_default_s3_role, like ML calls.
          store: authorizedStore(createObjectStore(config), (action, bucket, key) =>
            access.authorizer.authorizeS3(action as S3Action, bucket, key),
          ),
        }),
      ],
      bridgeConninfoForUpstream: upstreamMode ? () => bridge.conninfo() : undefined,
      bridgeSecret: secret,
    };
    const gateway = new GatewayServer({
      host: config.host,
      port: config.port,
      upstream: { host: target.host, port: target.port },
      tls: access.gatewayTls,
      interceptorFor: (startup, sessionLogger) =>
        new MlInterceptor(interceptorContext, startup.get('database') ?? startup.get('user') ?? '', sessionLogger),
      logger: logger.child({ component: 'gateway' }),
    });
    await listenAs('port', config.host, config.port, () => gateway.listen());
    stack.push(() => gateway.close());

    return {
      config,
      statistics,
      target,
      gateway,
      bridge,
      edge,
      connectionString: (database) => {
        const admin = target.adminConnection(database);
        const user = encodeURIComponent(String(admin.user));
        const password = encodeURIComponent(String(admin.password ?? ''));
        const host = urlHost(reachableHost(config.host));
        return `postgres://${user}:${password}@${host}:${gateway.port}/${encodeURIComponent(String(admin.database))}`;
      },
      failed,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
