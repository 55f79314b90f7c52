/**
 * A real service edge for tests: registerServices on an ephemeral port, over a
 * temporary data directory (or a given one, to test restarts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Config, configSchema } from '../../src/config/index.js';
import { ServiceEdge } from '../../src/services/edge.js';
import { type RunningServices, registerServices, type ServiceContext } from '../../src/services/index.js';
import { silentLogger } from '../../src/util/log.js';

export interface TestEdge {
  edge: ServiceEdge;
  services: RunningServices;
  config: Config;
  /** e.g. http://127.0.0.1:41234 — what --endpoint-url / the SDK's `endpoint` take. */
  url: string;
  dataDir: string;
  /** Stops the edge; removes the data directory unless it was passed in. */
  close(): Promise<void>;
}

export interface TestEdgeOptions {
  /** Reuse a data directory (it is then left in place on close). */
  dataDir?: string;
  sagemaker?: ServiceContext['sagemaker'];
  maxBodyBytes?: number;
}

export async function startTestEdge(options: TestEdgeOptions = {}): Promise<TestEdge> {
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'pgsage-edge-'));
  const config = configSchema.parse({
    dataDir,
    servicesPort: 0,
    region: 'us-east-1',
    accountId: '123456789012',
    ...(options.maxBodyBytes ? { services: { maxBodyBytes: options.maxBodyBytes } } : {}),
  });
  const edge = new ServiceEdge({
    host: '127.0.0.1',
    port: 0,
    maxBodyBytes: config.services.maxBodyBytes,
    logger: silentLogger,
  });
  const services = await registerServices(edge, { config, logger: silentLogger, sagemaker: options.sagemaker });
  await edge.listen();
  return {
    edge,
    services,
    config,
    url: edge.url,
    dataDir,
    close: async () => {
      await edge.close();
      await services.close();
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** test/fixtures/models/xgboost/<name>: XGBoost models and reference predictions made by the real XGBoost. */
export function xgboostFixture(name: string): string {
  return path.join(import.meta.dirname, '..', 'fixtures', 'models', 'xgboost', name);
}

/** The SageMaker XGBoost image URI in us-east-1, as users pass it. */
export const XGBOOST_IMAGE = '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1';

/** Polls DescribeEndpoint (bounded) until the status is no longer a transitional one. */
export async function waitForEndpoint(
  describe: (name: string) => Promise<{ EndpointStatus?: string; FailureReason?: string }>,
  name: string,
  timeoutMs = 20_000,
): Promise<{ EndpointStatus?: string; FailureReason?: string }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const endpoint = await describe(name);
    if (!['Creating', 'Updating', 'SystemUpdating'].includes(endpoint.EndpointStatus ?? '')) return endpoint;
    if (Date.now() > deadline)
      throw new Error(`endpoint ${name} still ${endpoint.EndpointStatus} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Settings for AWS SDK v3 clients pointed at a test edge. */
export function sdkConfig(edge: { url: string }) {
  return {
    endpoint: edge.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    // The SDK would otherwise retry 5xx answers and slow failing tests down.
    maxAttempts: 1,
  };
}
