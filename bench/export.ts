/**
 * aws_s3.query_export_to_s3 against its baseline, in the same run:
 *
 *   1. `COPY (SELECT …) TO STDOUT` read by psql (spawned) into a file: what a
 *      client gets out of PostgreSQL at best.
 *   2. `SELECT * FROM aws_s3.query_export_to_s3('SELECT …', …)` through the
 *      gateway into the local object store (a file as well).
 *
 * Both export the same 1,000,000 rows (text format); each is run --repeat
 * times alternately and the best time counts. The gateway runs in this process:
 * its resident set size is sampled during the exports (baseline before, peak
 * during) to show whether memory stays flat whatever the export size.
 *
 * With --s3 the export also goes to an S3-compatible server (s3rver, a dev
 * dependency, in a child process so it does not count in the RSS), with
 * multipart uploads.
 *
 *   npm run build && node dist/bench/export.js [--rows 1000000] [--repeat 3] [--s3]
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { LocalObjectStore, localStoreRoot, S3ObjectStore } from '../src/storage/index.js';
import { packagePath } from '../src/util/paths.js';
import { startEphemeralPgsage } from '../test/support/ephemeral.js';
import { freePort } from '../test/support/ports.js';
import { ratio, table } from './support.js';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const ROWS = option('--rows', 1_000_000);
const REPEAT = option('--repeat', 3);
const WITH_S3 = process.argv.includes('--s3');
const QUERY = 'SELECT id, name, price, created FROM bench_rows';
const MiB = 1024 * 1024;

/** Samples this process's RSS (and the memory held by Buffers) while `work` runs. */
async function withRss<T>(
  work: () => Promise<T>,
): Promise<{ value: T; before: number; peak: number; buffersBefore: number; buffersPeak: number }> {
  const start = process.memoryUsage();
  let peak = start.rss;
  let buffersPeak = start.arrayBuffers;
  const sample = () => {
    const now = process.memoryUsage();
    peak = Math.max(peak, now.rss);
    buffersPeak = Math.max(buffersPeak, now.arrayBuffers);
  };
  const timer = setInterval(sample, 20);
  try {
    const value = await work();
    sample();
    return { value, before: start.rss, peak, buffersBefore: start.arrayBuffers, buffersPeak };
  } finally {
    clearInterval(timer);
  }
}

async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = process.hrtime.bigint();
  const value = await work();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, value };
}

/** psql reading COPY … TO STDOUT straight from PostgreSQL, its output going to a file. */
function psqlCopy(url: string, file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const out = openSync(file, 'w');
    const child = spawn('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', `COPY (${QUERY}) TO STDOUT`], {
      stdio: ['ignore', out, 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (status) => {
      closeSync(out);
      if (status !== 0) reject(new Error(`psql failed: ${stderr}`));
      else resolve(statSync(file).size);
    });
  });
}

interface Figures {
  bestMs: number;
  bytes: number;
  rssBefore: number;
  rssPeak: number;
  buffersPeak: number;
}

async function exportThrough(client: pg.Client, bucket: string, key: string): Promise<number> {
  const { rows } = await client.query(
    `SELECT * FROM aws_s3.query_export_to_s3('${QUERY}', aws_commons.create_s3_uri('${bucket}', '${key}', 'us-east-1'))`,
  );
  if (Number(rows[0].rows_uploaded) !== ROWS) throw new Error(`exported ${rows[0].rows_uploaded} rows`);
  return Number(rows[0].bytes_uploaded);
}

/** s3rver in a child process, so that its memory is not the gateway's. */
async function startS3rver(): Promise<{ endpoint: string; stop(): void }> {
  const port = await freePort();
  const directory = mkdtempSync(path.join(tmpdir(), 'pgsage-bench-s3rver-'));
  const script = `
    const S3rver = require('@20minutes/s3rver');
    new S3rver({ address: '127.0.0.1', port: ${port}, directory: ${JSON.stringify(directory)}, silent: true,
                 vhostBuckets: false, allowMismatchedSignatures: true })
      .run().then(() => process.stdout.write('ready\\n'));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'], cwd: packagePath() });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}`)));
    child.stdout.once('data', () => resolve());
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop() {
      child.kill();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

async function main(): Promise<void> {
  const pgPort = await freePort();
  const local = await startEphemeralPgsage('pgsage-bench-export-', { postgres: { port: pgPort } });
  const stops: (() => Promise<void> | void)[] = [() => local.stop()];
  try {
    const store = new LocalObjectStore(localStoreRoot(local.pgsage.config), false);
    await store.createBucket('bench');
    const client = new pg.Client({ connectionString: local.pgsage.connectionString() });
    client.on('error', () => {}); // (reported by the statement that meets it)
    await client.connect();
    stops.unshift(() => client.end());
    await client.query('CREATE EXTENSION aws_s3 CASCADE');
    await client.query(`CREATE TABLE bench_rows AS
      SELECT g AS id, md5(g::text) AS name, (g % 10000) * 1.25 AS price,
             timestamptz '2026-01-01' + g * interval '1 second' AS created
        FROM generate_series(1, ${ROWS}) g`);
    await client.query('VACUUM ANALYZE bench_rows');

    const admin = local.pgsage.target.adminConnection();
    const directUrl = `postgres://${admin.user}:${admin.password}@127.0.0.1:${pgPort}/${admin.database}`;
    const scratch = mkdtempSync(path.join(tmpdir(), 'pgsage-bench-psql-'));
    stops.unshift(() => rmSync(scratch, { recursive: true, force: true }));

    // Warm-up: the table in shared buffers, the export path compiled.
    await psqlCopy(directUrl, path.join(scratch, 'warm.txt'));
    await exportThrough(client, 'bench', 'warm.txt');

    const psql: Figures = { bestMs: Infinity, bytes: 0, rssBefore: 0, rssPeak: 0, buffersPeak: 0 };
    const exported: Figures = { bestMs: Infinity, bytes: 0, rssBefore: Infinity, rssPeak: 0, buffersPeak: 0 };
    for (let i = 0; i < REPEAT; i++) {
      const baseline = await timed(() => psqlCopy(directUrl, path.join(scratch, 'copy.txt')));
      psql.bestMs = Math.min(psql.bestMs, baseline.ms);
      psql.bytes = baseline.value;
      const run = await withRss(() => timed(() => exportThrough(client, 'bench', 'export.txt')));
      exported.bestMs = Math.min(exported.bestMs, run.value.ms);
      exported.bytes = run.value.value;
      exported.rssBefore = Math.min(exported.rssBefore, run.before);
      exported.rssPeak = Math.max(exported.rssPeak, run.peak);
      exported.buffersPeak = Math.max(exported.buffersPeak, run.buffersPeak - run.buffersBefore);
    }
    if (exported.bytes !== psql.bytes) throw new Error(`export wrote ${exported.bytes} bytes, psql ${psql.bytes}`);

    const rows: (string | number)[][] = [
      ['path', 'best time', 'MiB/s', 'rows/s', 'vs psql', 'gateway RSS before → peak', 'Buffers held, peak'],
      [
        'psql: COPY (…) TO STDOUT > file',
        `${psql.bestMs.toFixed(0)} ms`,
        (psql.bytes / MiB / (psql.bestMs / 1000)).toFixed(1),
        Math.round(ROWS / (psql.bestMs / 1000)),
        '1.00×',
        '',
        '',
      ],
      [
        'aws_s3.query_export_to_s3 → local store',
        `${exported.bestMs.toFixed(0)} ms`,
        (exported.bytes / MiB / (exported.bestMs / 1000)).toFixed(1),
        Math.round(ROWS / (exported.bestMs / 1000)),
        ratio(psql.bestMs, exported.bestMs),
        `${(exported.rssBefore / MiB).toFixed(0)} → ${(exported.rssPeak / MiB).toFixed(0)} MiB`,
        `${(exported.buffersPeak / MiB).toFixed(1)} MiB`,
      ],
    ];

    if (WITH_S3) {
      const s3 = await startS3rver();
      stops.unshift(() => s3.stop());
      const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
      const admin3 = new S3ObjectStore({ region: 'us-east-1', endpoint: s3.endpoint, credentials: { ...credentials } });
      await admin3.createBucket('bench');
      admin3.close();
      const remote = await startEphemeralPgsage('pgsage-bench-export-', {
        postgres: { upstream: directUrl },
        storage: { kind: 's3', endpoint: s3.endpoint, ...credentials },
      });
      stops.unshift(() => remote.stop());
      const client3 = new pg.Client({ connectionString: remote.pgsage.connectionString() });
      client3.on('error', () => {}); // (reported by the statement that meets it)
      await client3.connect();
      stops.unshift(() => client3.end());
      const run = await withRss(() => timed(() => exportThrough(client3, 'bench', 'export.txt')));
      rows.push([
        'aws_s3.query_export_to_s3 → s3rver (multipart)',
        `${run.value.ms.toFixed(0)} ms`,
        (run.value.value / MiB / (run.value.ms / 1000)).toFixed(1),
        Math.round(ROWS / (run.value.ms / 1000)),
        ratio(psql.bestMs, run.value.ms),
        `${(run.before / MiB).toFixed(0)} → ${(run.peak / MiB).toFixed(0)} MiB`,
        `${((run.buffersPeak - run.buffersBefore) / MiB).toFixed(1)} MiB`,
      ]);
    }

    console.log(
      `aws_s3.query_export_to_s3 vs psql COPY TO STDOUT: ${ROWS.toLocaleString('en')} rows, ${(psql.bytes / MiB).toFixed(1)} MiB of text, best of ${REPEAT}\n`,
    );
    console.log(table(rows));
    console.log(
      `\nexport throughput / psql throughput: ${ratio(psql.bestMs, exported.bestMs)} (target ≥ 0.80×); gateway RSS grew by at most ${((exported.rssPeak - exported.rssBefore) / MiB).toFixed(0)} MiB during ${(exported.bytes / MiB).toFixed(0)} MiB exports`,
    );
  } finally {
    for (const stop of stops) await stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
