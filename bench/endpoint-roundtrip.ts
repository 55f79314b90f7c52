/**
 * The service edge end to end, over HTTP on loopback with kept-alive connections,
 * as the gateway calls it:
 *
 *   1. InvokeEndpoint with a 1,000-row text/csv batch (XGBoost, 60 trees, 12 features):
 *      rows/s and latency, and where the time goes (CSV parse, scoring, output
 *      formatting, and the rest: HTTP and routing), measured in this run.
 *   2. A 20,000-row batch scored in the worker pool vs on the event loop: how long
 *      the event loop stalls while it is scored (what every other request waits).
 *   3. BatchDetectSentiment with 25 short documents: latency at the edge.
 *
 *   npm run build && node dist/bench/endpoint-roundtrip.js [--seconds 2]
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { configSchema } from '../src/config/index.js';
import { loadPredictor } from '../src/models/registry.js';
import { ServiceEdge } from '../src/services/edge.js';
import { type RunningServices, registerServices } from '../src/services/index.js';
import { CSV } from '../src/services/sagemaker/runtime/codec.js';
import { score } from '../src/services/sagemaker/runtime/scoring.js';
import { silentLogger } from '../src/util/log.js';

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 2;
const REQUEST_ROWS = 1_000;
const BIG_ROWS = 20_000;

function fixtures(): string {
  let dir = import.meta.dirname;
  while (!existsSync(join(dir, 'test', 'fixtures', 'models', 'xgboost'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find test/fixtures/models/xgboost above ${import.meta.dirname}`);
    dir = parent;
  }
  return join(dir, 'test', 'fixtures', 'models', 'xgboost');
}

interface Edge {
  url: URL;
  services: RunningServices;
  close(): Promise<void>;
}

async function startEdge(workerThresholdRows: number): Promise<Edge> {
  const dataDir = mkdtempSync(join(tmpdir(), 'pgsage-bench-edge-'));
  const config = configSchema.parse({ dataDir, servicesPort: 0 });
  const edge = new ServiceEdge({
    host: '127.0.0.1',
    port: 0,
    maxBodyBytes: config.services.maxBodyBytes,
    logger: silentLogger,
  });
  const services = await registerServices(edge, { config, logger: silentLogger, sagemaker: { workerThresholdRows } });
  await edge.listen();
  return {
    url: new URL(edge.url),
    services,
    close: async () => {
      await edge.close();
      await services.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

function post(
  edge: Edge,
  path: string,
  headers: Record<string, string>,
  body: Buffer,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: edge.url.hostname,
        port: edge.url.port,
        method: 'POST',
        path,
        agent,
        headers: { ...headers, 'content-length': body.length },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

async function deploy(edge: Edge, name: string): Promise<void> {
  const hosting = edge.services.sagemaker;
  const url = pathToFileURL(join(fixtures(), 'binary_logistic.json.model.tar.gz')).href;
  await hosting.createModel({
    ModelName: name,
    PrimaryContainer: { Image: 'sagemaker-xgboost:1.7-1', ModelDataUrl: url },
  });
  await hosting.createEndpointConfig({
    EndpointConfigName: name,
    ProductionVariants: [{ VariantName: 'AllTraffic', ModelName: name }],
  });
  await hosting.createEndpoint(name, name, undefined);
  const deadline = Date.now() + 30_000;
  while (hosting.describeEndpoint(name).EndpointStatus !== 'InService') {
    if (Date.now() > deadline) throw new Error(`endpoint ${name}: ${hosting.describeEndpoint(name).FailureReason}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Latencies (ms) of `call` repeated for about `seconds` after a warm-up. */
async function measure(call: () => Promise<void>): Promise<number[]> {
  for (let i = 0; i < 20; i++) await call();
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t = performance.now();
    await call();
    latencies.push(performance.now() - t);
  }
  return latencies.sort((a, b) => a - b);
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const ms = (n: number) => `${n.toFixed(2)} ms`;

function csvRows(rows: number): Buffer {
  const lines = readFileSync(join(fixtures(), 'inputs_classification2.csv'), 'utf8').trim().split('\n');
  return Buffer.from(Array.from({ length: rows }, (_, i) => lines[i % lines.length]).join('\n'));
}

async function invocationThroughput(edge: Edge): Promise<void> {
  const body = csvRows(REQUEST_ROWS);
  const path = '/endpoints/churn/invocations';
  const headers = { 'content-type': 'text/csv', accept: 'text/csv' };
  const latencies = await measure(async () => {
    const response = await post(edge, path, headers, body);
    if (response.status !== 200) throw new Error(response.body);
  });
  const avg = mean(latencies);

  // The same request's stages, timed in-process with the same code the edge runs.
  const fixture = join(fixtures(), 'binary_logistic.json.model.tar.gz');
  const predictor = await loadPredictor('xgboost', { fileName: fixture, bytes: readFileSync(fixture) });
  const stages = { decodeMs: 0, predictMs: 0, encodeMs: 0 };
  let runs = 0;
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const { timing } = await score(predictor, { body, inputType: CSV, outputType: CSV });
    stages.decodeMs += timing.decodeMs;
    stages.predictMs += timing.predictMs;
    stages.encodeMs += timing.encodeMs;
    runs++;
  }
  const parse = stages.decodeMs / runs;
  const predict = stages.predictMs / runs;
  const encode = stages.encodeMs / runs;
  const rest = Math.max(0, avg - parse - predict - encode);
  const share = (n: number) => `${((100 * n) / avg).toFixed(0)}%`;

  console.log(
    `InvokeEndpoint, ${REQUEST_ROWS}-row text/csv batch (XGBoost binary:logistic, 60 trees, 12 features), one client`,
  );
  console.log(
    `  ${(REQUEST_ROWS / (avg / 1000)).toFixed(0)} rows/s   latency p50 ${ms(quantile(latencies, 0.5))}  p95 ${ms(quantile(latencies, 0.95))}  (${latencies.length} requests)`,
  );
  console.log(
    `  time per request: CSV parse ${ms(parse)} (${share(parse)}), scoring ${ms(predict)} (${share(predict)}), ` +
      `output ${ms(encode)} (${share(encode)}), HTTP + routing ${ms(rest)} (${share(rest)})`,
  );
  console.log(`  parse : scoring = ${(parse / predict).toFixed(2)} : 1`);

  // Four clients at once: the edge scores inline, so this shows what one event loop sustains.
  const concurrent = 4;
  let done = 0;
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrent }, async () => {
      while (performance.now() < until) {
        await post(edge, path, headers, body);
        done += REQUEST_ROWS;
      }
    }),
  );
  console.log(
    `  ${concurrent} concurrent clients: ${(done / ((performance.now() - started) / 1000)).toFixed(0)} rows/s`,
  );
}

/** Longest event-loop stall (ms) while a big batch is scored, with a small request racing it. */
async function stallDuring(edge: Edge, body: Buffer): Promise<{ stall: number; latency: number }> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  await post(edge, '/endpoints/churn/invocations', { 'content-type': 'text/csv' }, body); // warm (workers load the model)
  histogram.enable();
  const t = performance.now();
  const response = await post(edge, '/endpoints/churn/invocations', { 'content-type': 'text/csv' }, body);
  const latency = performance.now() - t;
  if (response.status !== 200) throw new Error(`the ${BIG_ROWS}-row request failed: ${response.body}`);
  histogram.disable();
  return { stall: histogram.max / 1e6, latency };
}

async function workerPool(inline: Edge, pooled: Edge): Promise<void> {
  const body = csvRows(BIG_ROWS);
  const a = await stallDuring(inline, body);
  const b = await stallDuring(pooled, body);
  console.log(`InvokeEndpoint, ${BIG_ROWS}-row batch: event-loop stall while it is scored`);
  console.log(`  on the event loop: ${ms(a.stall)} stall, ${ms(a.latency)} latency`);
  console.log(
    `  in the worker pool: ${ms(b.stall)} stall, ${ms(b.latency)} latency  (stall ${(a.stall / b.stall).toFixed(1)}× shorter)`,
  );
}

async function sentiment(edge: Edge): Promise<void> {
  const texts = Array.from({ length: 25 }, (_, i) =>
    i % 2
      ? `The delivery was late again and the box was damaged (${i}).`
      : `I really like this, great value for money (${i})!`,
  );
  const body = Buffer.from(JSON.stringify({ TextList: texts, LanguageCode: 'en' }));
  const headers = {
    'content-type': 'application/x-amz-json-1.1',
    'x-amz-target': 'Comprehend_20171127.BatchDetectSentiment',
  };
  const first = await post(edge, '/', headers, body);
  if (first.status !== 200) {
    console.log(`BatchDetectSentiment: skipped (${first.body.slice(0, 200)})`);
    return;
  }
  const latencies = await measure(async () => {
    await post(edge, '/', headers, body);
  });
  console.log('BatchDetectSentiment, 25 short documents, one client');
  console.log(
    `  latency p50 ${ms(quantile(latencies, 0.5))}  p95 ${ms(quantile(latencies, 0.95))}  p99 ${ms(quantile(latencies, 0.99))}  (${latencies.length} requests)`,
  );
}

async function main(): Promise<void> {
  const pooled = await startEdge(2000);
  const inline = await startEdge(Number.POSITIVE_INFINITY);
  try {
    await deploy(pooled, 'churn');
    await deploy(inline, 'churn');
    await invocationThroughput(pooled);
    await workerPool(inline, pooled);
    await sentiment(pooled);
  } finally {
    agent.destroy();
    await pooled.close();
    await inline.close();
  }
}

await main();
