/**
 * Batch mode against the per-row path, and batch mode's own overhead.
 *
 *   node dist/bench/batch.js [rows=1000000]
 *
 * 1. A SageMaker-style endpoint with 5 ms added latency per request (the real
 *    XGBoost model behind an HTTP server that sleeps, reached through the aws
 *    backend's SDK client): batch mode over 20,000 rows vs the per-row path
 *    (measured on 2,000 rows; its cost is linear in rows). Bar: ≥ 100×.
 * 2. invoke_endpoint with the 60-tree XGBoost model over N rows of 12 features,
 *    end to end through the gateway, vs the same model scoring the same rows
 *    in-process. Bar: ≥ 0.70×.
 * 3. detect_sentiment over N short documents, end to end, vs the bundled model
 *    alone. Bar: ≥ 0.70×.
 * 4. Short statements (one row by primary key, simple and extended protocol,
 *    and a literal): milliseconds per statement in batch mode against the
 *    per-row path, which makes one service call per row without batch mode's
 *    own round trips. No bar: the price batch mode asks of small statements.
 * Each end-to-end figure comes with its breakdown (argument query, scoring
 * after the last argument, result load, final statement). Both sides of a
 * ratio are measured warm: each first runs on the first WARM_UP_ROWS rows, so
 * neither pays for compiling its code or starting its workers in the figure.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pg from 'pg';
import { parseCsvFeatures } from '../src/models/csv-features.js';
import { loadPredictor } from '../src/models/registry.js';
import type { Predictor } from '../src/models/types.js';
import { packagePath } from '../src/util/paths.js';
import { type BenchStack, run, startBenchStack } from './support.js';

const rows = Number(process.argv[2] ?? 1_000_000);
const MODEL = packagePath('test', 'fixtures', 'models', 'xgboost', 'binary_logistic.json.model.tar.gz');
const features = Array.from({ length: 12 }, (_, i) => `f${i + 1}`);
const WARM_UP_ROWS = Math.min(20_000, rows);

setFlagsFromString('--expose-gc');
/**
 * A full collection: the gateway runs in this process, and the model-alone
 * baseline's inputs (a million rows read through pg) must not be collected
 * on its time.
 */
const collectGarbage = runInNewContext('gc') as () => void;

async function predictor(): Promise<Predictor> {
  return loadPredictor('xgboost', { fileName: 'model.tar.gz', bytes: readFileSync(MODEL) });
}

/** A SageMaker runtime for one model that answers each request after `latencyMs`. */
async function slowEndpoint(
  latencyMs: number,
): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  const model = await predictor();
  let requests = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      requests += 1;
      const predictions = await model.predict(parseCsvFeatures(Buffer.concat(chunks)));
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/csv', 'x-amzn-invoked-production-variant': 'AllTraffic' });
        res.end(`${predictions.csvLines().join('\n')}\n`);
      }, latencyMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function connect(stack: BenchStack): Promise<pg.Client> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: stack.gatewayPort,
    user: 'postgres',
    password: 'postgres',
    database: 'postgres',
  });
  // (A connection lost between statements is reported by the next one: no unhandled 'error' event.)
  client.on('error', () => {});
  await client.connect();
  await client.query('CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE');
  return client;
}

/** N rows of 12 deterministic pseudo-random features (some NULL), created in PostgreSQL. */
async function featureTable(db: pg.Client, name: string, count: number): Promise<void> {
  await db.query(`DROP TABLE IF EXISTS ${name}`);
  await db.query(
    `CREATE TABLE ${name} AS SELECT g AS id, ${features
      .map(
        (f, i) =>
          `CASE WHEN (g * ${i + 7}) % 97 = 0 THEN NULL ELSE round((sin(g * ${i + 1}.37) * 3)::numeric, 4)::float8 END AS ${f}`,
      )
      .join(', ')} FROM generate_series(1, ${count}) g`,
  );
  await db.query(`ANALYZE ${name}`);
}

/**
 * How long `work` takes, and the longest the process's event loop was held
 * meanwhile (the gateway runs in this process: its other sessions, and a
 * cancel, wait that long).
 */
async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T; stallMs: number }> {
  const stalls = monitorEventLoopDelay({ resolution: 10 });
  stalls.enable();
  const started = performance.now();
  const value = await work();
  const ms = performance.now() - started;
  stalls.disable();
  return { ms, value, stallMs: stalls.max / 1e6 };
}

function breakdown(stack: BenchStack): string {
  const p = stack.pgsage.statistics.lastStatement;
  if (!p) return '';
  const f = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  return `    breakdown: argument query ${f(p.argumentsMs)} (scoring overlaps it), scoring after it ${f(p.scoringTailMs)}, result load ${f(p.loadTailMs)}, final statement ${p.statementMs === undefined ? 'not measured' : f(p.statementMs)}`;
}

const rate = (count: number, ms: number) => Math.round(count / (ms / 1000));

/** An end-to-end figure against the model alone, with its breakdown. */
function reportOverhead(
  title: string,
  unit: string,
  alone: { ms: number },
  endToEnd: { ms: number; stallMs: number },
  stack: BenchStack,
) {
  console.log(title);
  console.log(`    model alone (in-process): ${rate(rows, alone.ms)} ${unit}/s`);
  console.log(`    end to end through the gateway: ${rate(rows, endToEnd.ms)} ${unit}/s`);
  console.log(breakdown(stack));
  console.log(`    longest event-loop stall meanwhile: ${Math.round(endToEnd.stallMs)} ms`);
  console.log(`    ratio: ${(alone.ms / endToEnd.ms).toFixed(2)}×  (bar: ≥ 0.70×)\n`);
}

/** The model's score of a row of slow_rows, on the endpoint with 5 ms added latency (see withSlowEndpoint). */
const SLOW_CALL = `aws_sagemaker.invoke_endpoint('slow', NULL, ${features.join(', ')})::float8`;

/** Runs `work` on a stack whose endpoint answers after 5 ms, with 20,000 rows of features in slow_rows. */
async function withSlowEndpoint(work: (db: pg.Client, requests: () => number) => Promise<void>): Promise<void> {
  const endpoint = await slowEndpoint(5);
  const stack = await startBenchStack({
    backend: 'aws',
    aws: { endpoint: endpoint.url, accessKeyId: 'bench', secretAccessKey: 'bench' },
  });
  try {
    const db = await connect(stack);
    await featureTable(db, 'slow_rows', 20_000);
    await work(db, endpoint.requests);
    await db.end();
  } finally {
    await stack.stop();
    await endpoint.close();
  }
}

async function latencyComparison(): Promise<void> {
  await withSlowEndpoint(async (db, requests) => {
    const batch = await timed(() => db.query(`SELECT count(${SLOW_CALL}) FROM slow_rows`));
    const batchRequests = requests();
    await db.query('SET apg_enable_function_migration = false');
    const perRow = await timed(() => db.query(`SELECT count(${SLOW_CALL}) FROM slow_rows WHERE id <= 2000`));
    const batchRate = rate(20_000, batch.ms);
    const perRowRate = rate(2_000, perRow.ms);
    console.log('1. endpoint with 5 ms added latency per request');
    console.log(
      `    batch mode: 20,000 rows in ${(batch.ms / 1000).toFixed(2)} s = ${batchRate} rows/s (${batchRequests} requests)`,
    );
    console.log(`    per row:     2,000 rows in ${(perRow.ms / 1000).toFixed(2)} s = ${perRowRate} rows/s`);
    console.log(`    speedup: ${(batchRate / perRowRate).toFixed(0)}×  (bar: ≥ 100×)\n`);
  });
}

/**
 * `… WHERE <model says so> ORDER BY id DESC LIMIT 10` over 20,000 rows on the slow endpoint: batch mode searches
 * the rows window by window; per row makes a request for each row until ten pass; scoring every row is what batch
 * mode did before the search (and still does in a READ COMMITTED block).
 */
async function limitSearch(): Promise<void> {
  await withSlowEndpoint(async (db, requests) => {
    await db.query('ALTER TABLE slow_rows ADD PRIMARY KEY (id)');
    const sql = `SELECT id FROM slow_rows WHERE ${SLOW_CALL} > 0.9 ORDER BY id DESC LIMIT 10`;
    const run = async (before = 'SELECT 1', after = 'SELECT 1') => {
      const made = requests();
      await db.query(before);
      const { ms } = await timed(() => db.query(sql));
      await db.query(after);
      return { ms, requests: requests() - made };
    };
    const searched = await run();
    const whole = await run('BEGIN', 'COMMIT');
    const perRow = await run('SET apg_enable_function_migration = false', 'RESET apg_enable_function_migration');
    const line = (name: string, r: { ms: number; requests: number }) =>
      `    ${name}${r.ms.toFixed(0).padStart(7)} ms, ${String(r.requests).padStart(5)} requests`;
    console.log('5. a LIMIT after an ML condition: the ten latest rows the model scores above 0.9, 20,000 rows, 5 ms');
    console.log(line('searched (batch mode):   ', searched));
    console.log(line('every row scored (before):', whole));
    console.log(line('per row:                 ', perRow));
    console.log(
      `    searched against every row scored: ${(whole.ms / searched.ms).toFixed(1)}×; against per row: ${(perRow.ms / searched.ms).toFixed(1)}×\n`,
    );
  });
}

async function xgboostOverhead(): Promise<void> {
  const stack = await startBenchStack();
  try {
    const db = await connect(stack);
    await deploy(stack, 'xgb');
    await featureTable(db, 'xgb_rows', rows);
    const alone = await xgboostAlone(db);
    const statement = `SELECT avg(aws_sagemaker.invoke_endpoint('xgb', NULL, ${features.join(', ')})::float8) FROM xgb_rows`;
    await db.query(`${statement} WHERE id <= ${WARM_UP_ROWS}`);
    collectGarbage();
    const endToEnd = await timed(() => db.query(statement));
    reportOverhead(`2. invoke_endpoint, 60-tree XGBoost, ${rows} rows of 12 features`, 'rows', alone, endToEnd, stack);
    await db.end();
  } finally {
    await stack.stop();
  }
}

/** Deploys the model with pgsage's own CLI (`pgsage endpoint deploy`). */
async function deploy(stack: BenchStack, name: string): Promise<void> {
  const result = await run(process.execPath, [
    packagePath('bin', 'pgsage.js'),
    'endpoint',
    'deploy',
    name,
    '--model',
    MODEL,
    '--algorithm',
    'xgboost',
    '--services-url',
    stack.pgsage.edge.url,
  ]);
  if (result.status !== 0) throw new Error(`pgsage endpoint deploy failed: ${result.stderr}`);
}

async function sentimentOverhead(): Promise<void> {
  let sentiment: typeof import('../src/models/sentiment/index.js');
  try {
    sentiment = await import('../src/models/sentiment/index.js');
  } catch {
    console.log('3. detect_sentiment: the sentiment model is not available in this build\n');
    return;
  }
  const stack = await startBenchStack();
  try {
    const db = await connect(stack);
    await db.query('DROP TABLE IF EXISTS docs');
    await db.query(`CREATE TABLE docs AS SELECT g AS id,
        (ARRAY['I loved this film', 'terrible acting and a boring plot', 'the food was great but the service was slow',
               'not bad at all', 'worst purchase ever', 'an absolute delight from start to finish'])[1 + g % 6]
        || ' (review ' || g || ')' AS body
      FROM generate_series(1, ${rows}) g`);
    const alone = await sentimentAlone(db, sentiment.loadSentimentModel());
    const statement = `SELECT avg(s.confidence), count(*) FROM docs, aws_comprehend.detect_sentiment(docs.body, 'en') s WHERE s.confidence >= 0`;
    await db.query(`${statement} AND docs.id <= ${WARM_UP_ROWS}`);
    collectGarbage();
    const endToEnd = await timed(() => db.query(statement));
    reportOverhead(`3. detect_sentiment over ${rows} short documents`, 'docs', alone, endToEnd, stack);
    await db.end();
  } finally {
    await stack.stop();
  }
}

/** The model alone on the same rows, in this process; its inputs are dropped before the end-to-end run. */
async function xgboostAlone(db: pg.Client): Promise<{ ms: number }> {
  const data = await db.query({ text: `SELECT ${features.join(', ')} FROM xgb_rows ORDER BY id`, rowMode: 'array' });
  const matrix = new Float64Array(rows * 12);
  data.rows.forEach((row: (number | null)[], r: number) => {
    for (let c = 0; c < 12; c++) matrix[r * 12 + c] = row[c] ?? Number.NaN;
  });
  const model = await predictor();
  (await model.predict({ data: matrix.subarray(0, WARM_UP_ROWS * 12), rows: WARM_UP_ROWS, cols: 12 })).csvLines();
  return timed(async () => (await model.predict({ data: matrix, rows, cols: 12 })).csvLines());
}

/** The model alone over the same documents; its inputs are dropped before the end-to-end run. */
async function sentimentAlone(
  db: pg.Client,
  model: { detectBatch(texts: string[], language: string): unknown },
): Promise<{ ms: number }> {
  const texts = (await db.query({ text: 'SELECT body FROM docs ORDER BY id', rowMode: 'array' })).rows.map(
    (r: string[]) => r[0],
  );
  const score = (count: number) => {
    for (let i = 0; i < count; i += 25) model.detectBatch(texts.slice(i, Math.min(i + 25, count)), 'en');
  };
  score(WARM_UP_ROWS);
  return timed(async () => score(texts.length));
}

/** Milliseconds per statement of each short statement, batch mode against per row (alternating, warm). */
async function shortStatements(): Promise<void> {
  const stack = await startBenchStack();
  try {
    const db = await connect(stack);
    await db.query('DROP TABLE IF EXISTS short_docs');
    await db.query(`CREATE TABLE short_docs (id int PRIMARY KEY, body text)`);
    await db.query(`INSERT INTO short_docs SELECT g, 'a short review, number ' || g FROM generate_series(1, 10000) g`);
    const mood = (input: string) => `(aws_comprehend.detect_sentiment(${input}, 'en')).sentiment`;
    const statements: [string, (i: number) => Promise<unknown>][] = [
      ['one row by key', (i) => db.query(`SELECT ${mood('body')} FROM short_docs WHERE id = ${i}`)],
      ['one row, parameter', (i) => db.query(`SELECT ${mood('body')} FROM short_docs WHERE id = $1`, [i])],
      ['a literal', (i) => db.query(`SELECT ${mood(`'a literal review ${i}'`)}`)],
      ['ten rows', (i) => db.query(`SELECT ${mood('body')} FROM short_docs WHERE id BETWEEN ${i} AND ${i + 9}`)],
    ];
    const count = 200;
    console.log('4. short statements, milliseconds per statement (sentiment, distinct inputs each time)');
    let next = 1;
    for (const [name, statement] of statements) {
      const perMode = new Map<string, number>();
      for (const mode of ['on', 'off', 'on', 'off']) {
        await db.query(`SET apg_enable_function_migration = ${mode}`);
        for (let i = 0; i < 20; i++) await statement(next++ % 9990);
        const { ms } = await timed(async () => {
          for (let i = 0; i < count; i++) await statement(next++ % 9990);
        });
        perMode.set(mode, Math.min(perMode.get(mode) ?? Number.POSITIVE_INFINITY, ms / count));
      }
      const [batched, perRow] = [perMode.get('on')!, perMode.get('off')!];
      console.log(
        `    ${name.padEnd(20)} batch mode ${batched.toFixed(2)} ms, per row ${perRow.toFixed(2)} ms: ${(batched / perRow).toFixed(1)}× the per-row time`,
      );
    }
    console.log('');
    await db.end();
  } finally {
    await stack.stop();
  }
}

async function main(): Promise<void> {
  await latencyComparison();
  await xgboostOverhead();
  await sentimentOverhead();
  await shortStatements();
  await limitSearch();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
