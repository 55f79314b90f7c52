import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pg from 'pg';
import postgres from 'postgres';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../support/processes.js';
import { RawSession, raw } from '../support/raw-protocol.js';
import { rejection } from '../support/rejection.js';
import { startRemoteEndpoint } from '../support/remote-endpoint.js';
import { startStack, type TestStack } from '../support/stack.js';

const features = Array.from({ length: 12 }, (_, i) => `f${i + 1}`);
const call = (size: number | 'NULL' = 'NULL') =>
  `aws_sagemaker.invoke_endpoint('remote', ${size}, ${features.join(', ')})::float8`;

type Remote = Awaited<ReturnType<typeof startRemoteEndpoint>>;
let remote: Remote;
let stack: TestStack;

/** A pgsage whose aws backend reaches `remote`, with a table of 2,000 rows. */
async function startWith(
  behaviour: Parameters<typeof startRemoteEndpoint>[0],
  config: Parameters<typeof startStack>[0] = {},
): Promise<pg.Client> {
  remote = await startRemoteEndpoint(behaviour);
  stack = await startStack({
    ...config,
    backend: 'aws',
    aws: { endpoint: remote.url, accessKeyId: 'test', secretAccessKey: 'test' },
  });
  const db = await stack.connect();
  await db.query('CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE');
  await db.query(
    `CREATE TABLE rows_in AS SELECT g AS id, ${features.map((f, i) => `sin(g * ${i + 1}.3) AS ${f}`).join(', ')} FROM generate_series(1, 2000) g`,
  );
  return db;
}

/** Waits until pg_stat_activity shows backend `pid` meeting `condition`, then cancels it from another session. */
async function cancelOnceSeen(pid: number, what: string, condition: string): Promise<void> {
  const admin = await stack.direct();
  try {
    await waitFor(what, async () => {
      const { rowCount } = await admin.query(`SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND ${condition}`, [pid]);
      return rowCount ? true : undefined;
    });
    await admin.query('SELECT pg_cancel_backend($1)', [pid]);
  } finally {
    await admin.end();
  }
}

/**
 * Runs `sql` against an endpoint that takes a minute to answer, cancels it from another session once PostgreSQL waits
 * in the gateway's hold after its argument query (see Hold in src/gateway/backend.ts: idle, PostgreSQL would drop the
 * cancel), and expects 57014 and a usable session.
 */
async function expectCancelledInHold(sql: string): Promise<void> {
  const db = await startWith({ latencyMs: 60_000 });
  const { pid } = (await db.query('SELECT pg_backend_pid() AS pid')).rows[0];
  const running = db.query(sql);
  running.catch(() => {});
  await cancelOnceSeen(
    pid,
    'the hold after the argument query',
    "query LIKE 'COPY pg_temp.aws_ml_results % WHERE false'",
  );
  await expect(running).rejects.toMatchObject({ code: '57014' });
  expect((await db.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
}

/** The remote's first request, held until `release` (RemoteBehaviour.holdFirst). */
function heldRequest(): { holdFirst: Promise<void>; release: () => void } {
  let release = () => {};
  const holdFirst = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { holdFirst, release };
}

/**
 * Runs `sql` in batch mode against an endpoint that holds the first batch; once
 * the argument query has read every row and that batch waits, `change` runs
 * from another session. Returns the statement's rows and the per-row path's.
 */
async function answersWhileChanged(
  sql: string,
  change: (other: pg.Client) => Promise<void>,
  setup: (db: pg.Client) => Promise<void> = async () => {},
): Promise<{ batched: unknown[]; perRow: unknown[] }> {
  const { holdFirst, release } = heldRequest();
  const db = await startWith({ holdFirst });
  await setup(db);
  const other = await stack.connect();
  try {
    const running = db.query(sql);
    await waitFor('the first batch at the endpoint', async () => (remote.holding ? true : undefined));
    await change(other);
    release();
    const batched = (await running).rows;
    await db.query('SET apg_enable_function_migration = false');
    return { batched, perRow: (await db.query(sql)).rows };
  } finally {
    release();
    await other.end();
  }
}

afterEach(async () => {
  await stack?.stop();
  await remote?.close();
});

describe('batch mode under faults', () => {
  it('fails the statement with the service error, the function and the batch, and writes nothing', async () => {
    const db = await startWith({ breakFrom: 3 });
    await db.query('CREATE TABLE scored (id int, p float8)');
    await db.query('BEGIN');
    await db.query('INSERT INTO scored VALUES (0, 0)');
    const error = await db.query(`INSERT INTO scored SELECT id, ${call(100)} FROM rows_in`).catch((e) => e);
    expect(error.code).toMatch(/^58/);
    expect(error.message).toMatch(/^aws_sagemaker\.invoke_endpoint: .*remote/);
    expect(error.detail).toMatch(/batch \d+ of the statement \(100 rows\) failed/);
    await expect(db.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' }); // the transaction is aborted
    await db.query('ROLLBACK');
    const { rows } = await db.query('SELECT count(*)::int AS n FROM scored');
    expect(rows[0].n).toBe(0);
    expect((await db.query('SELECT 1 AS ok')).rows[0].ok).toBe(1); // the session goes on
    // Monitoring counts the statement once, its error once, and the batches the service answered before.
    const stats = await db.query(
      `SELECT statements::int, errors::int, batches::int, rows_scored::int AS rows FROM aws_ml.batch_statistics
        WHERE function_name = 'aws_sagemaker.invoke_endpoint'`,
    );
    const [counted] = stats.rows;
    expect(counted).toMatchObject({ statements: 1, errors: 1 });
    expect(counted.batches).toBeGreaterThan(0);
    expect(counted.rows).toBe(100 * counted.batches);
  });

  it('warns once when an endpoint refuses whole batches, whose calls then go one row at a time', async () => {
    const db = await startWith({ refuseOverRows: 50 });
    const notices: { severity?: string; message?: string; hint?: string }[] = [];
    db.on('notice', (n) => notices.push(n));
    const { rows } = await db.query(`SELECT count(${call(100)})::int AS n FROM rows_in WHERE id <= 300`);
    expect(rows[0].n).toBe(300);
    expect(notices.map(({ severity, message, hint }) => ({ severity, message, hint }))).toEqual([
      {
        severity: 'WARNING',
        message:
          "aws_sagemaker.invoke_endpoint: a batch of 100 rows was refused (SageMaker endpoint remote rejected the request: payload of 100 rows is over the limit); the statement's calls to endpoint remote are made one row at a time",
        hint: 'If the endpoint takes smaller requests, pass a smaller max_rows_per_batch.',
      },
    ]);
    // (Up to the three batches, those sent before the first was refused, are refused; then the rows go one by one.)
    expect(remote.requests).toBeGreaterThanOrEqual(1 + 300);
    expect(remote.requests).toBeLessThanOrEqual(3 + 300);
    // A size it takes: batches, no warning.
    notices.length = 0;
    const before = remote.requests;
    await db.query(`SELECT count(${call(50)}) FROM rows_in WHERE id <= 300`);
    expect({ notices, requests: remote.requests - before }).toEqual({ notices: [], requests: 300 / 50 });
  });

  it('keeps at most K requests in flight, also for batches larger than one request', async () => {
    const db = await startWith({ comprehendLatencyMs: 30 });
    await db.query('SET aws_ml.max_concurrent_batches = 2');
    // Two batches of 200 documents: eight requests of 25 each.
    const { rows } = await db.query(
      `SELECT count((aws_comprehend.detect_sentiment('doc ' || id, 'en', 200)).sentiment)::int AS n FROM rows_in WHERE id <= 400`,
    );
    expect(rows[0].n).toBe(400);
    expect(remote.requests).toBe(400 / 25);
    expect(remote.mostInFlight).toBeLessThanOrEqual(2);
  });

  it('makes each automatic endpoint batch one request within the payload limit, as EXPLAIN ANALYZE counts them', async () => {
    const db = await startWith({});
    // About 96 KB of CSV a row (numbers written with 8,000 decimals): 100 rows are over SageMaker's 6 MB.
    await db.query(
      `CREATE TABLE wide AS SELECT id, ${features.map((f) => `round(${f}::numeric, 8000) AS ${f}`).join(', ')} FROM rows_in WHERE id <= 100`,
    );
    const before = remote.requests;
    const explained = await db.query({
      text: `EXPLAIN (ANALYZE, COSTS false) SELECT count(${call()}) FROM wide`,
      rowMode: 'array',
    });
    const line = explained.rows.map((r) => String(r[0])).find((l) => l.includes('Batch Processing')) ?? '';
    const batches = Number(line.match(/num batches=(\d+)/)?.[1]);
    expect(batches).toBeGreaterThan(1);
    expect(remote.requests - before).toBe(batches);
  });

  it('counts a statement once in monitoring, however many of its calls there are', async () => {
    const db = await startWith({});
    const other = ['f1 + 1', ...features.slice(1)].join(', ');
    await db.query(`SELECT count(${call(500)}), count(aws_sagemaker.invoke_endpoint('remote', 500, ${other})::float8)
      FROM rows_in`);
    const stats = await db.query(
      `SELECT statements::int, batches::int, rows_scored::int AS rows FROM aws_ml.batch_statistics
        WHERE function_name = 'aws_sagemaker.invoke_endpoint'`,
    );
    expect(stats.rows).toEqual([{ statements: 1, batches: 8, rows: 4000 }]);
  });

  it('fails the statement with the model error where a refused row is called for, as per row', async () => {
    const db = await startWith({ failFrom: 3 });
    await db.query('CREATE TABLE scored (id int, p float8)');
    const error = await db.query(`INSERT INTO scored SELECT id, ${call(100)} FROM rows_in`).catch((e) => e);
    expect(error).toMatchObject({ code: '38000' });
    expect(error.message).toMatch(/model error from endpoint remote: row 3: could not convert string to float/);
    const { rows } = await db.query('SELECT count(*)::int AS n FROM scored');
    expect(rows[0].n).toBe(0);
    // A model that answers none of them is given up on after a few requests per batch.
    expect(remote.requests).toBeLessThan(2000 / 100 + 20 * 30);
  });

  it('answers rows changed, deleted or added while it scored as the statement sees them', async () => {
    const sql = `SELECT id, ${call(500)} AS p FROM rows_in ORDER BY id, p`;
    const { batched, perRow } = await answersWhileChanged(sql, async (other) => {
      await other.query('UPDATE rows_in SET f1 = f1 + 1 WHERE id BETWEEN 11 AND 20');
      await other.query('DELETE FROM rows_in WHERE id <= 10');
      await other.query('VACUUM rows_in');
      await other.query(
        `INSERT INTO rows_in SELECT g, ${features.map((_, i) => `cos(g * ${i + 2}.7)`).join(', ')} FROM generate_series(1, 10) g`,
      );
    });
    expect(batched).toHaveLength(2000);
    expect(batched).toEqual(perRow);
  });

  it('reads no stored answer of a table rewritten while it scored (rows moved, xmin kept)', async () => {
    const sql = `SELECT id, ${call(500)} AS p FROM rows_in ORDER BY id`;
    const ctidOfFirst = 'SELECT ctid::text AS c FROM rows_in WHERE id = 1';
    let before = '';
    const { batched, perRow } = await answersWhileChanged(
      sql,
      async (other) => {
        // Every row was loaded by one transaction (same xmin); CLUSTER puts them in another order.
        await other.query('CLUSTER rows_in USING rows_in_f1');
        expect((await other.query(ctidOfFirst)).rows[0].c).not.toBe(before);
      },
      async (db) => {
        await db.query('CREATE INDEX rows_in_f1 ON rows_in (f1)');
        before = (await db.query(ctidOfFirst)).rows[0].c;
      },
    );
    expect(batched).toHaveLength(2000);
    expect(batched).toEqual(perRow);
  });

  it('retries throttled batches with backoff and succeeds', async () => {
    const db = await startWith({ throttleFirst: 3 });
    const { rows } = await db.query(`SELECT count(${call(500)})::int AS n FROM rows_in`);
    expect(rows[0].n).toBe(2000);
    expect(remote.requests).toBe(3 + 4);
    const stats = await db.query(
      "SELECT retries FROM aws_ml.batch_statistics WHERE function_name = 'aws_sagemaker.invoke_endpoint'",
    );
    expect(Number(stats.rows[0].retries)).toBe(3);
  });

  it('sends a request once more when its connection is reset, and names a reset as one', async () => {
    // (A kept-alive connection that the service closes as a request goes out ends so.)
    let db = await startWith({ resetFirst: 1 });
    expect((await db.query(`SELECT count(${call(500)})::int AS n FROM rows_in`)).rows[0].n).toBe(2000);
    expect(remote.requests).toBe(1 + 4);
    await db.query('SET apg_enable_function_migration = off');
    expect((await db.query(`SELECT count(${call()})::int AS n FROM rows_in WHERE id <= 2`)).rows[0].n).toBe(2);
    await stack.stop();
    await remote.close();
    db = await startWith({ resetFirst: 1000 });
    const error = await db.query(`SELECT count(${call(500)}) FROM rows_in`).catch((e) => e);
    expect(error).toMatchObject({ code: '58030' });
    expect(error.message).toMatch(/SageMaker endpoint remote closed the connection before answering/);
  });

  it('per row too, retries throttled calls with backoff and succeeds', async () => {
    const db = await startWith({ throttleFirst: 3 });
    await db.query('SET apg_enable_function_migration = off');
    const { rows } = await db.query(`SELECT id, ${call()} AS p FROM rows_in WHERE id <= 2 ORDER BY id`);
    expect(rows.map((r) => typeof r.p)).toEqual(['number', 'number']);
    expect(remote.requests).toBe(3 + 2);
  });

  it('fails a statement read from the transaction start as it would alone, leaving no block open', async () => {
    const db = await startWith({ breakFrom: 1 });
    const inputs = ['f1 + extract(microseconds from now()) * 1e-9', ...features.slice(1)].join(', ');
    const sql = `SELECT count(aws_sagemaker.invoke_endpoint('remote', 100, ${inputs})::float8) FROM rows_in WHERE id <= $1`;
    for (const query of [sql.replace('$1', '500'), { text: sql, values: [500] }]) {
      const error = await rejection(db.query(query));
      expect(error.code).toMatch(/^58/);
      expect(error.message).toMatch(/^aws_sagemaker\.invoke_endpoint: .*remote/);
      await expect(db.query('SAVEPOINT s')).rejects.toMatchObject({ code: '25P01' }); // no block is open
      expect((await db.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    }
  });

  it('fails a portal read in pieces after Flushes when its scoring fails, skipping to the Sync as PostgreSQL does', async () => {
    const db = await startWith({ breakFrom: 1 });
    const session = new RawSession(db);
    for (const block of [false, true]) {
      if (block) await session.query('BEGIN');
      const failed = await session.round(
        [
          raw.parse('', `SELECT id, ${call(100)} FROM rows_in WHERE id <= $1`),
          raw.bind('', ['500'], 'c1'),
          raw.execute('c1', 20),
          raw.flush(),
        ],
        0,
        (answer) => answer.errors.length > 0,
      );
      expect(failed.errors[0].code).toMatch(/^58/);
      expect(failed.errors[0].message).toMatch(/^aws_sagemaker\.invoke_endpoint: .*remote/);
      expect(failed.types).toBe('12E'); // ParseComplete and BindComplete first, as PostgreSQL answers them
      // What the client sends up to its Sync is skipped, the Sync answered.
      const skipped = await session.round([raw.execute('c1', 20), raw.flush(), raw.sync()]);
      expect(skipped.types).toBe('Z');
      expect(skipped.statuses).toEqual([block ? 'E' : 'I']);
      if (block) await session.query('ROLLBACK');
      expect((await session.query('SELECT 1')).results).toEqual([[['1']]]);
    }
    // Bound and described, its rows read by later groups (pg-cursor): nothing fails before the client reads it
    // (it may never), and reading it fails as per row.
    const bindAndDescribe = (portal: string) => [
      raw.parse('', `SELECT id, ${call(100)} FROM rows_in WHERE id <= $1`),
      raw.bind('', ['500'], portal),
      raw.describePortal(portal),
      raw.flush(),
    ];
    for (const block of [false, true]) {
      if (block) await session.query('BEGIN');
      const unread = await session.round(bindAndDescribe('c2'), 0, (answer) => /[TE]$/.test(answer.types));
      expect(unread.types).toBe('12T');
      const closed = await session.round([raw.closePortal('c2'), raw.sync()]);
      expect(closed.types).toBe('3Z');
      expect(closed.statuses).toEqual([block ? 'T' : 'I']);
      const read = await session.round(bindAndDescribe('c3'), 0, (answer) => /[TE]$/.test(answer.types));
      expect(read.types).toBe('12T');
      const failed = await session.round([raw.execute('c3', 20), raw.flush(), raw.sync()]);
      expect(failed.errors[0].code).toMatch(/^58/);
      expect(failed.types).toBe('EZ');
      if (block) await session.query('ROLLBACK');
    }
  });

  it('backs off exponentially even when the service says Retry-After: 0, and gives up within the time budget', async () => {
    const db = await startWith({ throttleFirst: 1_000_000 });
    await db.query("SET statement_timeout = '2s'");
    const error = await rejection(db.query(`SELECT count(${call(2000)})::int AS n FROM rows_in`));
    expect(error.code).toBe('58030');
    expect(error.message).toMatch(/throttled/);
    // 100, 200, 400, 800 ms… (with jitter): a handful of requests, not a retry loop.
    expect(remote.requests).toBeLessThanOrEqual(10);
  });

  it('fails a throttled call at once when Retry-After asks for longer than the statement may take, also per row', async () => {
    // With no statement_timeout the budget is 15 minutes: an hour's wait is refused, not waited for.
    const db = await startWith({ throttleFirst: 1_000_000, retryAfterSeconds: 3600 });
    for (const migration of ['on', 'off']) {
      await db.query(`SET apg_enable_function_migration = ${migration}`);
      const before = remote.requests;
      const error = await rejection(db.query(`SELECT ${call()} FROM rows_in LIMIT 1`));
      expect({ migration, code: error.code, requests: remote.requests - before }).toEqual({
        migration,
        code: '58030',
        requests: 1,
      });
      expect(error.message).toMatch(/throttled/);
    }
  });

  it('fails at once on a cancel while it scores a prepared UPDATE whose table another session locks', async () => {
    const { holdFirst, release } = heldRequest();
    const db = await startWith({ holdFirst });
    await db.query('CREATE TABLE locked_scores AS SELECT id, NULL::float8 AS p FROM rows_in');
    const update = `UPDATE locked_scores s SET p = ${call()} FROM rows_in WHERE rows_in.id = s.id AND rows_in.id > $1`;
    const sql = postgres(stack.gatewayUrl(), { max: 1, onnotice: () => {} });
    const locker = await stack.direct();
    try {
      // Prepared by a run that scores nothing; the next binds it by name.
      await sql.unsafe(update, [1_000_000], { prepare: true });
      await locker.query('BEGIN');
      // (CREATE INDEX takes this lock too: reads go on, writes wait.)
      await locker.query('LOCK TABLE locked_scores IN SHARE MODE');
      await sql.unsafe('BEGIN');
      const running = sql.unsafe(update, [0], { prepare: true }).execute();
      const outcome = running.then(
        () => 'finished',
        (error: { code?: string }) => error.code,
      );
      await waitFor('the first batch held', async () => (remote.holding ? true : undefined));
      running.cancel();
      // Not sent on to wait for the lock, where the cancel, spent on the gateway's work, would not reach it.
      expect(await outcome).toBe('57014');
      await sql.unsafe('ROLLBACK');
      expect((await sql.unsafe('SELECT count(p)::int AS n FROM locked_scores'))[0].n).toBe(0);
    } finally {
      release();
      await locker.query('ROLLBACK');
      await Promise.all([locker.end(), sql.end()]);
    }
  });

  it('runs what a group sends before a statement that statement_timeout stops while it scores (a SAVEPOINT)', async () => {
    const { holdFirst, release } = heldRequest();
    const db = await startWith({ holdFirst });
    await db.query('CREATE TABLE kept_log (n int)');
    const session = new RawSession(await stack.connect());
    try {
      await session.query("BEGIN; INSERT INTO kept_log VALUES (1); SET LOCAL statement_timeout = '300ms'");
      // (pgjdbc with autosave sends its SAVEPOINT so, before each statement.)
      const failed = await session.round([
        ...raw.statement('SAVEPOINT before_scoring'),
        ...raw.statement('INSERT INTO kept_log VALUES (2)'),
        ...raw.statement(`SELECT count(${call()}) FROM rows_in`),
        raw.sync(),
      ]);
      expect(failed.errors.map((e) => e.code)).toEqual(['57014']);
      const after = await session.query('ROLLBACK TO SAVEPOINT before_scoring; COMMIT');
      expect(after.errors).toEqual([]);
      expect((await db.query('SELECT array_agg(n) AS ns FROM kept_log')).rows[0].ns).toEqual([1]);
    } finally {
      release();
    }
  });

  it('stops in-flight calls within a second on cancel and keeps the session usable', async () => {
    await startWith({ latencyMs: 60_000 });
    const sql = postgres(stack.gatewayUrl(), { max: 1 });
    try {
      const running = sql.unsafe(`SELECT count(${call(100)}) FROM rows_in`).execute();
      await waitFor('calls in flight', async () => (remote.inFlight > 0 ? true : undefined));
      const started = Date.now();
      running.cancel();
      await expect(running).rejects.toMatchObject({ code: '57014' });
      expect(Date.now() - started).toBeLessThan(1000);
      await waitFor('the remote to see the requests abandoned', async () => (remote.inFlight === 0 ? true : undefined));
      const [row] = await sql`SELECT 'usable' AS state`;
      expect(row.state).toBe('usable');
    } finally {
      await sql.end();
    }
  });

  it('stops a statement cancelled while the gateway still plans it (PostgreSQL idle)', async () => {
    await startWith({ latencyMs: 5_000 });
    const client = await stack.connect();
    const session = new RawSession(client);
    const sql = `SELECT count(${call(100)}) FROM rows_in`;
    for (let i = 0; i < 8; i++) {
      // The statement goes with a quick one before it: once that one is answered, the gateway has the statement and
      // is starting on it (a cancel that comes before a statement is ignored, by PostgreSQL as by the gateway).
      const first = await session.round([raw.query('SELECT 1'), raw.query(sql)], 1);
      expect(first.errors).toEqual([]);
      const canceller = new pg.Client({ connectionString: stack.gatewayUrl() }) as pg.Client & {
        cancel(client: pg.Client, query: unknown): void;
      };
      canceller.cancel(client, (client as unknown as { activeQuery: unknown }).activeQuery);
      const cancelled = await session.round([], 1);
      expect(
        cancelled.errors.map((e) => e.code),
        `attempt ${i}`,
      ).toEqual(['57014']);
      expect((await session.query('SELECT 1')).results[0]).toEqual([['1']]);
    }
  });

  it('stops scoring at a pg_cancel_backend from another session', async () => {
    const db = await startWith({ latencyMs: 60_000 });
    const { pid } = (await db.query('SELECT pg_backend_pid() AS pid')).rows[0];
    await db.query('CREATE TABLE one_row AS SELECT 1 AS u');
    // Answers stored per table row, and per input (a join of two tables).
    for (const sql of [`SELECT count(${call(100)}) FROM rows_in`, `SELECT count(${call(100)}) FROM rows_in, one_row`]) {
      const running = db.query(sql);
      await waitFor('calls in flight', async () => (remote.inFlight > 0 ? true : undefined));
      // While the answers are being loaded, which waits for the service. (A cancel that lands in the instant
      // between two of the gateway's statements finds the backend idle, and PostgreSQL drops it.)
      await cancelOnceSeen(pid, 'the answers being loaded', "state = 'active' AND query LIKE 'COPY pg_temp.aws_ml%'");
      await expect(running).rejects.toMatchObject({ code: '57014' });
      await waitFor('the remote to see the requests abandoned', async () => (remote.inFlight === 0 ? true : undefined));
      expect((await db.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    }
  });

  it('stops at a pg_cancel_backend that comes while the gateway still reads rows PostgreSQL has sent', async () => {
    // A request per row: the gateway reads the rows long after PostgreSQL has sent them all. (Before the hold,
    // PostgreSQL was idle here, the cancel lost, the statement answered.)
    const inputs = features.map((_, i) => `sin(g * ${i + 1}.3)`).join(', ');
    await expectCancelledInHold(
      `SELECT count(aws_sagemaker.invoke_endpoint('remote', 1, ${inputs})) FROM generate_series(1, 100000) g`,
    );
  });

  it('stops at a pg_cancel_backend taken in the hold after a failed argument query', async () => {
    // The argument query fails at its last rows (the COALESCE spares them the call, per row); the calls would then go
    // per row, each waiting a minute on the endpoint.
    const inputs = [...features.slice(1).map((_, i) => `sin(g * ${i + 1}.3)`), '1.0 / (g - 99990)'].join(', ');
    await expectCancelledInHold(`SELECT count(COALESCE(CASE WHEN g >= 99990 THEN 'spared' END,
        aws_sagemaker.invoke_endpoint('remote', 1, ${inputs}))) FROM generate_series(1, 100000) g`);
  });

  it("tells the client PostgreSQL's FATAL when its backend is terminated while the gateway scores", async () => {
    const db = await startWith({ latencyMs: 60_000 });
    db.on('error', () => {});
    const { pid } = (await db.query('SELECT pg_backend_pid() AS pid')).rows[0];
    // (Its error is taken at once: it may come while the terminating session still closes.)
    const running = db.query(`SELECT count(${call(100)}) FROM rows_in`).then(
      () => undefined,
      (error: unknown) => error,
    );
    await waitFor('calls in flight', async () => (remote.inFlight > 0 ? true : undefined));
    const admin = await stack.direct();
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    await admin.end();
    expect(await running).toMatchObject({
      code: '57P01',
      severity: 'FATAL',
      message: 'terminating connection due to administrator command',
    });
    await waitFor('the remote to see the requests abandoned', async () => (remote.inFlight === 0 ? true : undefined));
    const other = await stack.connect();
    expect((await other.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });

  it('stops scoring at a pg_cancel_backend while later batches answer behind a slow first one', async () => {
    const { holdFirst, release } = heldRequest();
    const db = await startWith({ holdFirst, latencyMs: 50 });
    try {
      await db.query('SET aws_ml.max_concurrent_batches = 2');
      const { pid } = (await db.query('SELECT pg_backend_pid() AS pid')).rows[0];
      // Answers stored per table row go in table order: none can be written while the first batch is out,
      // and the other slot answers a one-row batch every 50 ms for the next 100 s.
      const running = db.query(`SELECT count(${call(1)}) FROM rows_in`);
      await waitFor('later batches answered', async () => (remote.holding && remote.requests >= 10 ? true : undefined));
      const admin = await stack.direct();
      await admin.query('SELECT pg_cancel_backend($1)', [pid]);
      await admin.end();
      await expect(running).rejects.toMatchObject({ code: '57014' });
    } finally {
      release();
    }
  });

  it('honours statement_timeout during scoring', async () => {
    const db = await startWith({ latencyMs: 60_000 });
    await db.query("SET statement_timeout = '300ms'");
    const started = Date.now();
    await expect(db.query(`SELECT count(${call(100)}) FROM rows_in`)).rejects.toMatchObject({
      code: '57014',
      message: 'canceling statement due to statement timeout',
    });
    expect(Date.now() - started).toBeLessThan(1500);
    await db.query('RESET statement_timeout');
    expect((await db.query('SELECT 2 AS ok')).rows[0].ok).toBe(2);
    // No answers stay current for functions called later (PL/pgSQL, triggers).
    const current = await db.query("SELECT current_setting('aws_ml.batch_statement', true) AS n");
    expect([null, '', '0']).toContain(current.rows[0].n);
  });

  it('gives the final statement only what is left of statement_timeout, and puts the setting back', async () => {
    const db = await startWith({ latencyMs: 600 });
    await db.query("SET statement_timeout = '1s'");
    // Scoring takes 600 ms, the statement itself 600 more: together past the 1 s, though each part is not.
    const slow = `SELECT count(${call(100)})::int AS n, pg_sleep(0.6)::text FROM rows_in WHERE id <= 50`;
    const timedOut = { code: '57014', message: 'canceling statement due to statement timeout' };
    await expect(db.query(slow)).rejects.toMatchObject(timedOut);
    expect((await db.query('SHOW statement_timeout')).rows[0].statement_timeout).toBe('1s');
    await db.query('BEGIN');
    await expect(db.query(slow)).rejects.toMatchObject(timedOut);
    await db.query('ROLLBACK');
    expect((await db.query('SHOW statement_timeout')).rows[0].statement_timeout).toBe('1s');
    // What the final statement sees is what was left; the block and the session keep the setting as it was.
    const left = `SELECT current_setting('statement_timeout') AS t, count(${call(100)})::int AS n FROM rows_in WHERE id <= 50`;
    await db.query("SET statement_timeout = '30s'");
    await db.query('BEGIN');
    const [inBlock] = (await db.query(left)).rows;
    expect(inBlock.n).toBe(50);
    expect(inBlock.t).toMatch(/^\d+ms$/);
    expect(Number.parseInt(inBlock.t, 10)).toBeLessThanOrEqual(30_000 - 600);
    expect((await db.query('SHOW statement_timeout')).rows[0].statement_timeout).toBe('30s');
    await db.query('COMMIT');
    expect((await db.query('SHOW statement_timeout')).rows[0].statement_timeout).toBe('30s');
    // The same with the extended protocol (a driver's $1), in a block and outside one.
    const limit = (sql: string) => ({ text: sql.replace('id <= 50', 'id <= $1'), values: [50] });
    await db.query("SET statement_timeout = '1s'");
    await expect(db.query(limit(slow))).rejects.toMatchObject(timedOut);
    await db.query('BEGIN');
    await expect(db.query(limit(slow))).rejects.toMatchObject(timedOut);
    await db.query('ROLLBACK');
    await db.query("SET statement_timeout = '30s'");
    for (const block of [true, false]) {
      if (block) await db.query('BEGIN');
      const [extended] = (await db.query(limit(left))).rows;
      expect(extended.n).toBe(50);
      expect(Number.parseInt(extended.t, 10)).toBeLessThanOrEqual(30_000 - 600);
      expect((await db.query('SHOW statement_timeout')).rows[0].statement_timeout).toBe('30s');
      if (block) await db.query('COMMIT');
    }
    // Set when the session started (not by SET): still so after a batched statement outside a block.
    const pg = (await import('pg')).default;
    const started = new pg.Client({ connectionString: stack.gatewayUrl(), options: '-c statement_timeout=30s' });
    await started.connect();
    try {
      const [outside] = (await started.query(left)).rows;
      expect(Number.parseInt(outside.t, 10)).toBeLessThanOrEqual(30_000 - 600);
      const setting = await started.query(
        "SELECT setting, source FROM pg_catalog.pg_settings WHERE name = 'statement_timeout'",
      );
      expect(setting.rows[0]).toEqual({ setting: '30000', source: 'client' });
    } finally {
      await started.end();
    }
  });

  it('leaves statement_timeout alone for what is not a batched statement', async () => {
    const db = await startWith({ latencyMs: 600 });
    await db.query("SET statement_timeout = '1s'");
    const scored = `SELECT count(${call(100)})::int FROM rows_in WHERE id <= $1`;
    const session = new RawSession(db);
    // Another statement of the same group gets the whole setting: 600 ms of scoring, then 600 ms of sleep.
    await session.query('BEGIN');
    let answer = await session.round([
      ...raw.statement(scored, ['20']),
      ...raw.statement('SELECT pg_sleep(0.6)'),
      raw.sync(),
    ]);
    expect(answer.errors).toEqual([]);
    // A savepoint of the group, rolled back to: the block goes on under the setting as it was.
    answer = await session.round([...raw.statement('SAVEPOINT s'), ...raw.statement(scored, ['20']), raw.sync()]);
    expect(answer.errors).toEqual([]);
    await session.query('ROLLBACK TO SAVEPOINT s');
    answer = await session.round([...raw.statement("SELECT current_setting('statement_timeout')"), raw.sync()]);
    expect(answer.results[0]).toEqual([['1s']]);
    // A statement that changes the setting itself (here through a trigger) keeps its change.
    await session.query(`CREATE TABLE sink (p float8);
      CREATE FUNCTION five_seconds() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM set_config('statement_timeout', '5s', false); RETURN NEW; END $$;
      CREATE TRIGGER five_seconds BEFORE INSERT ON sink FOR EACH ROW EXECUTE FUNCTION five_seconds();
      SET LOCAL statement_timeout = '30s'`);
    answer = await session.query(`INSERT INTO sink SELECT ${call(100)} FROM rows_in WHERE id <= 20`);
    expect(answer.errors).toEqual([]);
    answer = await session.query("SELECT current_setting('statement_timeout')");
    expect(answer.results[0]).toEqual([['5s']]);
    await session.query('ROLLBACK');
    // A cursor declared outside a block fails as it does alone.
    answer = await session.round([...raw.statement(`DECLARE c CURSOR FOR ${scored}`, ['20']), raw.sync()]);
    expect(answer.errors.map((e) => e.code)).toEqual(['25P01']);
    // Per row, the statement reads the setting as it is.
    await session.query('SET apg_enable_function_migration = false');
    answer = await session.round([
      ...raw.statement(`SELECT current_setting('statement_timeout'), ${call()} FROM rows_in WHERE id <= $1`, ['1']),
      raw.sync(),
    ]);
    expect(answer.results[0][0][0]).toBe('1s');
    await session.query('RESET apg_enable_function_migration');
    // An error's position counts from the statement's start, as it does without a timeout.
    const misspelt = `CREATE TABLE misspelt AS SELECT id, ${call(100)}, nosuch FROM rows_in WHERE id <= 20`;
    const positions: string[] = [];
    for (const timeout of ['0', '30s']) {
      const other = await stack.connect();
      try {
        await other.query(`SET statement_timeout = '${timeout}'`);
        const error = await rejection(other.query(misspelt));
        expect(error.code).toBe('42703');
        positions.push(String(error.position));
      } finally {
        await other.end();
      }
    }
    expect(positions[1]).toBe(positions[0]);
  });

  it('keeps idle timeouts from ending the session while it scores, and puts them back', async () => {
    // The endpoint answers in 600 ms, and PostgreSQL waits that long between the gateway's own statements:
    // twice either timeout. (Each is set and reset inside one Query, so the client's own gaps are not timed.)
    const db = await startWith({ latencyMs: 600 });
    const scored = `SELECT count(${call(100)})::int AS n FROM rows_in WHERE id <= 50`;
    const shown = (name: string) => `SELECT setting, source FROM pg_catalog.pg_settings WHERE name = '${name}'`;
    type Results = pg.QueryResult[];
    let results = (await db.query(`SET idle_session_timeout = '300ms'; ${scored};
      ${shown('idle_session_timeout')}; RESET idle_session_timeout`)) as unknown as Results;
    expect(results[1].rows).toEqual([{ n: 50 }]);
    expect(results[2].rows).toEqual([{ setting: '300', source: 'session' }]);
    await db.query('BEGIN');
    results = (await db.query(`SET LOCAL idle_in_transaction_session_timeout = '300ms'; ${scored};
      ${shown('idle_in_transaction_session_timeout')}; SET LOCAL idle_in_transaction_session_timeout = 0`)) as unknown as Results;
    expect(results[1].rows).toEqual([{ n: 50 }]);
    expect(results[2].rows).toEqual([{ setting: '300', source: 'session' }]);
    await db.query('COMMIT');
    // After COMMIT the SET LOCAL is gone, as it goes without the gateway.
    expect((await db.query(shown('idle_in_transaction_session_timeout'))).rows).toEqual([
      { setting: '0', source: 'default' },
    ]);
    // Put back as they came, after a statement that scores and after one that fails: a SET stays the session's,
    // a startup option the client's.
    const failing = `SELECT ${call(100)} FROM rows_in WHERE 1 / (id - id) > 0`;
    const started = new pg.Client({ connectionString: stack.gatewayUrl(), options: '-c idle_session_timeout=1h' });
    await started.connect();
    try {
      await started.query("SET idle_in_transaction_session_timeout = '2h'");
      for (const run of [
        async () => expect((await started.query(scored)).rows).toEqual([{ n: 50 }]),
        () => expect(started.query(failing)).rejects.toMatchObject({ code: '22012' }),
      ]) {
        await run();
        expect((await started.query(shown('idle_session_timeout'))).rows).toEqual([
          { setting: '3600000', source: 'client' },
        ]);
        expect((await started.query(shown('idle_in_transaction_session_timeout'))).rows).toEqual([
          { setting: '7200000', source: 'session' },
        ]);
      }
    } finally {
      await started.end();
    }
  });

  it('stops the largest batched statement when the gateway heap fills up, and serves on', async () => {
    // A share of the heap no statement stays under: a batched statement is stopped at the next full collection.
    const { holdFirst, release } = heldRequest();
    const db = await startWith({ holdFirst }, { batch: { heapShare: 0.001 } });
    // Its argument query would send rows for hours (8 billion, 2,000 distinct inputs, batches of one): PostgreSQL is made to stop
    // it with the statement.
    const endless = '(SELECT 1 FROM rows_in b, rows_in c) AS endless(k)';
    let settled = false;
    const running = rejection(db.query(`SELECT count(${call(1)})::int AS n FROM rows_in, ${endless}`)).finally(() => {
      settled = true;
    });
    // (A full collection of the gateway's own may come first, while the argument rows are read: it stops the
    // statement just the same.)
    await waitFor('the first batch at the endpoint', async () => (remote.holding || settled ? true : undefined));
    if (!settled) {
      setFlagsFromString('--expose-gc');
      (runInNewContext('gc') as () => void)();
    }
    const error = await running;
    release();
    expect(error).toMatchObject({ code: '53200' });
    expect(error.message).toMatch(/^out of memory: the gateway's heap holds \d+ MB of its \d+ MB$/);
    // The session and the gateway serve on: a statement without ML calls, and calls made per row.
    expect((await db.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    await db.query('SET apg_enable_function_migration = off');
    const perRow = await db.query(`SELECT count(${call()})::int AS n FROM rows_in WHERE id <= 2`);
    expect(perRow.rows).toEqual([{ n: 2 }]);
  });

  it('per row too, stops a call waiting on the service at a cancel or statement_timeout', async () => {
    const db = await startWith({ latencyMs: 600_000 });
    await db.query('SET apg_enable_function_migration = off');
    await db.query("SET statement_timeout = '500ms'");
    await expect(db.query(`SELECT ${call()} FROM rows_in WHERE id = 1`)).rejects.toMatchObject({ code: '57014' });
    await waitFor('the remote to see the request abandoned', async () => (remote.inFlight === 0 ? true : undefined));
    await db.query('RESET statement_timeout');
    const sql = postgres(stack.gatewayUrl(), { max: 1 });
    try {
      await sql`SET apg_enable_function_migration = off`;
      const running = sql.unsafe(`SELECT ${call()} FROM rows_in WHERE id = 2`).execute();
      await waitFor('the call in flight', async () => (remote.inFlight > 0 ? true : undefined));
      running.cancel();
      await expect(running).rejects.toMatchObject({ code: '57014' });
      await waitFor('the remote to see the request abandoned', async () => (remote.inFlight === 0 ? true : undefined));
      const [row] = await sql`SELECT 'usable' AS state`;
      expect(row.state).toBe('usable');
    } finally {
      await sql.end();
    }
  });

  it("counts the service calls in EXPLAIN ANALYZE's Execution Time, as Aurora's does", async () => {
    const db = await startWith({ latencyMs: 400 });
    const plan = await db.query({ text: `EXPLAIN ANALYZE SELECT count(${call()}) FROM rows_in`, rowMode: 'array' });
    const lines = plan.rows.map((r) => r[0] as string);
    const time = lines.map((l) => /^Execution Time: (\d+\.\d{3}) ms$/.exec(l)).find(Boolean);
    expect(Number(time?.[1])).toBeGreaterThanOrEqual(400);
    const callTime = lines.map((l) => /batch call time=(\d+\.\d{3})\//.exec(l)).find(Boolean);
    expect(Number(time?.[1])).toBeGreaterThan(Number(callTime?.[1]));
  });

  it('sends progress notices for long statements unless turned off', async () => {
    const db = await startWith({ latencyMs: 1200 });
    const notices: string[] = [];
    db.on('notice', (n) => notices.push(n.message ?? ''));
    await db.query('SET aws_ml.max_concurrent_batches = 1');
    await db.query('ANALYZE rows_in'); // the planner's estimate is the total the lines give
    const total = Number((await db.query('SELECT count(*) AS n FROM rows_in')).rows[0].n);
    await db.query(`SELECT count(${call(500)}) FROM rows_in`);
    const lines = notices.map((m) =>
      /^aws_ml: (\d+) of about (\d+) rows read, \d+ inputs scored \((\d+) (rows|inputs)\/s\)$/.exec(m),
    );
    expect(lines.length, notices.join('\n')).toBeGreaterThan(0);
    for (const line of lines) {
      expect(line, notices.join('\n')).not.toBeNull();
      expect(Number(line![2])).toBe(total);
      expect(Number(line![1])).toBeLessThanOrEqual(total);
    }
    // Once every row is read (at once here), the rate is of the inputs scored since the line before, one batch
    // of 500 each 1.2 s: not the rows read over the whole time, which only falls.
    const scoring = lines.filter((line) => line![4] === 'inputs');
    expect(scoring.length, notices.join('\n')).toBeGreaterThan(0);
    for (const line of scoring) expect(Number(line![3]), notices.join('\n')).toBeGreaterThan(100);
    notices.length = 0;
    await db.query('SET aws_ml.progress = off');
    await db.query(`SELECT count(${call(500)}) FROM rows_in WHERE id <= 1000`);
    expect(notices).toEqual([]);
    // Progress lines are NOTICEs: a client that asks for warnings and errors only gets none.
    await db.query('RESET aws_ml.progress; SET client_min_messages = warning');
    await db.query(`SELECT count(${call(500)}) FROM rows_in WHERE id <= 1000`);
    expect(notices).toEqual([]);
  });

  it('sends progress notices while a batch is still out', async () => {
    const db = await startWith({ latencyMs: 5_000 });
    const notices: { at: number; message: string }[] = [];
    db.on('notice', (n) => notices.push({ at: Date.now(), message: n.message ?? '' }));
    await db.query(`SELECT count(${call(2000)}) FROM rows_in`); // one batch, answered after 5 s
    const done = Date.now();
    expect(notices.filter((n) => n.message.startsWith('aws_ml: ')).length, JSON.stringify(notices)).toBeGreaterThan(1);
    expect(notices[0].at).toBeLessThan(done - 1000);
  });

  /** A Comprehend that breaks its API: every statement fails with 58030 and this message, both ways, and all serve on. */
  async function expectComprehendFault(behaviour: Parameters<typeof startRemoteEndpoint>[0], message: RegExp) {
    const db = await startWith(behaviour);
    await db.query(`CREATE TABLE notes AS SELECT g AS id, 'note ' || g AS body FROM generate_series(1, 60) g`);
    const sql = `SELECT count(s.sentiment) FROM notes, aws_comprehend.detect_sentiment(notes.body, 'en') s`;
    for (const setting of ['on', 'off']) {
      await db.query(`SET apg_enable_function_migration = ${setting}`);
      const before = remote.requests;
      const error = await rejection(db.query(sql));
      expect({ setting, code: error.code }).toEqual({ setting, code: '58030' });
      expect(error.message).toMatch(message);
      expect(`${error.message} ${error.detail ?? ''}`).not.toMatch(/hidden field/);
      // The service's fault: not taken for a refused input and retried row by row.
      expect(remote.requests - before).toBeLessThanOrEqual(3);
      expect((await db.query('SELECT 1 AS alive')).rows).toEqual([{ alive: 1 }]);
    }
    const other = await stack.connect();
    expect((await other.query('SELECT 2 AS alive')).rows).toEqual([{ alive: 2 }]);
    await other.end();
  }

  it('fails a statement whose Comprehend answer leaves a document out, and serves on', async () => {
    await expectComprehendFault(
      { comprehendDropsLast: true },
      /Comprehend BatchDetectSentiment answered \d+ of \d+ documents/,
    );
  });

  it('fails a statement whose service answers what is not its API, as the service’s fault, not the input’s', async () => {
    await expectComprehendFault(
      { comprehendGarbled: true },
      /^(aws_comprehend\.detect_sentiment: )?Comprehend sent an answer that could not be read/,
    );
  });

  it('sends the rows of answers larger than SageMaker answers at once (6 MB) in smaller requests, and serves on', async () => {
    const db = await startWith({ answerLineBytes: 8_000 });
    const other = await stack.connect();
    try {
      // Batches of 1,000 rows, each answered with 8 MB: sent again in halves of 4 MB, and the endpoint's next
      // requests in the statement take no more rows. (Before, 54000 where per row answers each row.)
      const sql = `SELECT count(*)::int AS n, sum(length(aws_sagemaker.invoke_endpoint('remote', 1000, ${features.join(', ')})))::int AS bytes FROM rows_in`;
      const before = remote.requests;
      const { rows } = await db.query(sql);
      expect(rows[0].n).toBe(2000);
      expect(rows[0].bytes).toBeGreaterThan(2000 * 8000);
      // One or two requests too large (the batches in flight before the first answer), then requests of 500 rows.
      expect(remote.requests - before).toBeGreaterThanOrEqual(5);
      expect(remote.requests - before).toBeLessThanOrEqual(6);
      expect((await other.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await db.query('SET apg_enable_function_migration = off');
      expect((await db.query(sql)).rows).toEqual(rows);
    } finally {
      await other.end();
    }
  });

  it('leaves an answer over 6 MB to one row to the per-row path, which fails where the row is called for', async () => {
    const db = await startWith({ answerOversize: true });
    // Every row answers megabytes: the search for rows that fit gives up as the model-error search does (before,
    // two requests per row of 7 MB each, and the statement failed all the same).
    const before = remote.requests;
    expect(await rejection(db.query(`SELECT count(${call()}) FROM rows_in WHERE id <= 100`))).toMatchObject({
      code: '54000',
    });
    expect(remote.requests - before).toBeLessThanOrEqual(30);
    for (const setting of ['on', 'off']) {
      await db.query(`SET apg_enable_function_migration = ${setting}`);
      const error = await rejection(db.query(`SELECT ${call()} FROM rows_in WHERE id <= 3`));
      expect({ setting, code: error.code }).toEqual({ setting, code: '54000' });
      expect(error.message).toMatch(/endpoint remote answered more than 6291456 bytes/);
      // No row called for, no error.
      const spared = await db.query(
        `SELECT count(*)::int AS n FROM rows_in WHERE id <= 3 AND (id > 5 AND ${call()} > 0)`,
      );
      expect(spared.rows).toEqual([{ n: 0 }]);
    }
  });

  it('stops reading an answer that never ends at 6 MB, and serves on', async () => {
    const db = await startWith({ answerEndless: true });
    // (Before, the SDK read the answer whole: memory without bound, and past 4 GiB the gateway crashed.)
    for (const setting of ['on', 'off']) {
      await db.query(`SET apg_enable_function_migration = ${setting}`);
      const error = await rejection(db.query(`SELECT ${call()} FROM rows_in WHERE id <= 3`));
      expect({ setting, code: error.code }).toEqual({ setting, code: '54000' });
      expect(error.message).toMatch(/endpoint remote answered more than 6291456 bytes/);
    }
    await waitFor('the answers abandoned', async () => (remote.inFlight === 0 ? true : undefined));
    expect(remote.endlessBytes / remote.aborted).toBeLessThan(64 * 1024 * 1024);
    expect((await db.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });

  it('keeps batching an endpoint after one row whose answer alone is over 6 MB', async () => {
    const db = await startWith({ hugeAnswerBelow: -1.5 });
    // (In the first batch: the table made again in id order, which an UPDATE would have moved row 5 out of.)
    await db.query('UPDATE rows_in SET f1 = -2 WHERE id = 5');
    await db.query('CREATE TABLE huge_first AS SELECT * FROM rows_in ORDER BY id');
    // (A CASE whose condition batch mode cannot test spares row 5 its call per row; batch mode scores it.)
    const sql = `SELECT md5(string_agg(CASE WHEN f1 < 0 AND random() >= 0 THEN 'spared'
      ELSE aws_sagemaker.invoke_endpoint('remote', 200, ${features.join(', ')}) END, ',' ORDER BY id)) AS digest
      FROM huge_first`;
    // (One batch at a time: the next ones are formed once the first is answered.)
    await db.query('SET aws_ml.max_concurrent_batches = 1');
    const before = remote.requests;
    const batched = (await db.query(sql)).rows;
    // Ten batches, the first halved down to row 5 (before: one row per request from then on, 1,600 requests).
    expect(remote.requests - before).toBeLessThanOrEqual(40);
    await db.query('SET apg_enable_function_migration = off');
    expect((await db.query(sql)).rows).toEqual(batched);
  });

  /** The endpoint's answers to rows 1–300 as text, batch mode's (with its notices and requests) and per row's. */
  async function textAnswers(db: pg.Client, size: number | 'NULL' = 'NULL') {
    const sql = `SELECT id, aws_sagemaker.invoke_endpoint('remote', ${size}, ${features.join(', ')}) AS out
      FROM rows_in WHERE id <= 300 ORDER BY id`;
    const notices: { severity?: string; message?: string; hint?: string }[] = [];
    const onNotice = (n: { severity?: string; message?: string; hint?: string }) =>
      notices.push({ severity: n.severity, message: n.message, hint: n.hint });
    db.on('notice', onNotice);
    const before = remote.requests;
    const batched = (await db.query(sql)).rows;
    const requests = remote.requests - before;
    db.off('notice', onNotice);
    await db.query('SET apg_enable_function_migration = false');
    const perRow = (await db.query(sql)).rows;
    await db.query('RESET apg_enable_function_migration');
    return { batched, perRow, notices, requests };
  }

  it('takes an endpoint’s quoted answers holding line breaks as one answer each, as per row', async () => {
    const db = await startWith({ answerBody: (lines) => lines.map((l) => `"${l}\r\nscore, ""p"""\n`).join('') });
    const { batched, perRow, notices, requests } = await textAnswers(db);
    expect(batched).toEqual(perRow);
    expect(perRow[0].out).toMatch(/^"[0-9.e-]+\r\nscore, ""p"""$/);
    // (Split at every line break, the answer had three lines for each row: the statement failed with 58030.)
    expect({ notices, requests }).toEqual({ notices: [], requests: 1 });
  });

  it('makes the calls of an endpoint that does not answer a line per row one row at a time, with a warning', async () => {
    // A blank line after the answers: per row, a row's answer is its line and a line break.
    const db = await startWith({ answerBody: (lines) => `${lines.join('\n')}\n\n` });
    const { batched, perRow, notices, requests } = await textAnswers(db);
    expect(batched).toEqual(perRow);
    expect(perRow[0].out).toMatch(/^[0-9.e-]+\n$/);
    expect(notices).toEqual([
      {
        severity: 'WARNING',
        message:
          "aws_sagemaker.invoke_endpoint: endpoint remote answered 301 lines for 300 input rows; the statement's calls to endpoint remote are made one row at a time",
        hint: 'A batch-mode endpoint answers one output line per input row (text/csv). For one that does not, pass max_rows_per_batch 1: its rows are then sent one per request, several at once.',
      },
    ]);
    // The batch, then each row by the per-row fallback.
    expect(requests).toBe(1 + 300);
    // As the hint says: a row per request from the start, and the same answers.
    const single = await textAnswers(db, 1);
    expect(single.batched).toEqual(perRow);
    expect({ notices: single.notices, requests: single.requests }).toEqual({ notices: [], requests: 300 });
  });

  it('writes the per-row answers of an endpoint that answers fewer lines than it got rows, in one statement', async () => {
    const db = await startWith({ dropsLastLine: true });
    await db.query('CREATE TABLE scored AS SELECT id, NULL::text AS p FROM rows_in');
    const update = `UPDATE scored SET p = aws_sagemaker.invoke_endpoint('remote', NULL, ${features.join(', ')})
      FROM rows_in WHERE rows_in.id = scored.id AND rows_in.id <= 100`;
    const notices: string[] = [];
    db.on('notice', (n) => notices.push(n.message ?? ''));
    expect((await db.query(update)).rowCount).toBe(100);
    expect(notices).toEqual([
      "aws_sagemaker.invoke_endpoint: endpoint remote answered 99 lines for 100 input rows; the statement's calls to endpoint remote are made one row at a time",
    ]);
    // Per row, the row's answer is the empty line the endpoint leaves.
    const written =
      "SELECT count(*)::int AS n, count(*) FILTER (WHERE p = '')::int AS empty FROM scored WHERE p IS NOT NULL";
    expect((await db.query(written)).rows).toEqual([{ n: 100, empty: 100 }]);
    await db.query('UPDATE scored SET p = NULL');
    await db.query('SET apg_enable_function_migration = false');
    await db.query(update);
    expect((await db.query(written)).rows).toEqual([{ n: 100, empty: 100 }]);
  });

  it('fails on an answer holding a NUL character with the per-row path’s error', async () => {
    const db = await startWith({ nulInAnswers: true });
    for (const setting of ['on', 'off']) {
      await db.query(`SET apg_enable_function_migration = ${setting}`);
      // (Before, PostgreSQL's reading of the answer failed: 22P05 "unsupported Unicode escape sequence".)
      expect(await rejection(db.query(`SELECT ${call()} FROM rows_in WHERE id <= 20`)), setting).toMatchObject({
        code: '58030',
        message: "endpoint remote answered a NUL character, which PostgreSQL's text cannot hold",
      });
    }
  });

  it('fails a pipelined group where PostgreSQL would: what came before answers, and stays prepared', async () => {
    const db = await startWith({ breakFrom: 1 });
    await db.query('CREATE TABLE journal (note text)');
    const session = new RawSession(await stack.connect());
    const steps = [
      raw.parse('note', 'INSERT INTO journal VALUES ($1)'),
      raw.bind('note', ['before']),
      raw.execute(),
      raw.parse('scored', `SELECT ${call()} FROM rows_in WHERE id <= $1`),
      raw.bind('scored', ['50']),
      raw.execute(),
      raw.bind('note', ['after']),
      raw.execute(),
      raw.sync(),
    ];
    for (const inBlock of [false, true]) {
      if (inBlock) await session.query('BEGIN');
      const answer = await session.round(steps);
      // ParseComplete, BindComplete, CommandComplete of the INSERT; ParseComplete, BindComplete of the scored
      // statement, and its Execute's error; nothing of what follows.
      expect(answer.types, `in a block: ${inBlock}`).toBe('12C12EZ');
      expect(answer.errors).toEqual([expect.objectContaining({ code: '58030' })]);
      expect(answer.statuses).toEqual([inBlock ? 'E' : 'I']);
      if (inBlock) await session.query('ROLLBACK');
      // Nothing of the gateway's own stays prepared.
      const own = await session.query("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'aws_ml%'");
      expect(own.results[0]).toEqual([['0']]);
      // The failure rolled the INSERT back with the rest, and both statements stay prepared.
      expect((await db.query('SELECT count(*)::int AS n FROM journal')).rows[0].n).toBe(0);
      const again = await session.round([raw.bind('note', ['later']), raw.execute(), raw.sync()]);
      expect(again.errors).toEqual([]);
      await session.round([raw.parse('', 'DEALLOCATE ALL'), raw.bind('', []), raw.execute(), raw.sync()]);
      await db.query('TRUNCATE journal');
    }
    // A portal bound and not executed in its group makes no call: it is answered as PostgreSQL answers it.
    const requests = remote.requests;
    const unexecuted = await session.round([
      raw.parse('later', `SELECT ${call()} FROM rows_in WHERE id <= $1`),
      raw.bind('later', ['50']),
      Buffer.from([0x44, 0, 0, 0, 6, 0x50, 0]), // Describe the unnamed portal
      raw.sync(),
    ]);
    expect(unexecuted.errors).toEqual([]);
    expect(unexecuted.types).toBe('12TZ');
    expect(remote.requests).toBe(requests);
  });

  it('fails cleanly when the service is down', async () => {
    const db = await startWith({});
    await remote.close();
    await expect(db.query(`SELECT count(${call()}) FROM rows_in`)).rejects.toMatchObject({ code: '58030' });
    expect((await db.query('SELECT 3 AS ok')).rows[0].ok).toBe(3);
  });
});
