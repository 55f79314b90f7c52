import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { xgboostFixture } from '../support/edge.js';
import { binaryLogisticFixture, deployEndpoint } from '../support/endpoints.js';
import { RawSession, raw } from '../support/raw-protocol.js';
import { rejection } from '../support/rejection.js';
import { startStack, type TestStack } from '../support/stack.js';

let stack: TestStack;
let db: pg.Client;
const fixture = binaryLogisticFixture();
const features = Array.from({ length: 12 }, (_, i) => `f${i + 1}`);

beforeAll(async () => {
  stack = await startStack();
  await deployEndpoint(stack.pgsage.edge.url, 'churn-xgb', fixture.model);
  db = await stack.connect();
  await db.query('CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE');
  await db.query(`CREATE TABLE events (id int PRIMARY KEY, ${features.map((f) => `${f} float8`).join(', ')})`);
  const values = fixture.rows.map((row, i) => `(${i + 1}, ${row.map((v) => (v === null ? 'NULL' : v)).join(', ')})`);
  await db.query(`INSERT INTO events VALUES ${values.join(', ')}`);
});

afterAll(async () => {
  await stack?.stop();
});

const call = `aws_sagemaker.invoke_endpoint('churn-xgb', NULL, ${features.join(', ')})`;

function expectReference(rows: { id: number; p: number }[]): void {
  expect(rows).toHaveLength(fixture.predictions.length);
  for (const row of rows) {
    const expected = fixture.predictions[row.id - 1];
    expect(Math.abs(row.p - expected)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(expected)));
  }
}

describe('batch mode with a SageMaker endpoint', () => {
  it('scores a table in batches and matches the real XGBoost', async () => {
    const before = stack.pgsage.statistics.snapshot();
    const { rows } = await db.query(`SELECT id, ${call}::float8 AS p FROM events ORDER BY id`);
    expectReference(rows);
    const after = stack.pgsage.statistics.snapshot().find((s) => s.function === 'aws_sagemaker.invoke_endpoint');
    const earlier = before.find((s) => s.function === 'aws_sagemaker.invoke_endpoint');
    expect((after?.figures.rows ?? 0) - (earlier?.figures.rows ?? 0)).toBe(150);
    expect((after?.figures.perRowCalls ?? 0) - (earlier?.figures.perRowCalls ?? 0)).toBe(0);
  });

  it('gives the same answers per row when function migration is off', async () => {
    await db.query('SET apg_enable_function_migration = false');
    try {
      const perRowBefore =
        stack.pgsage.statistics.snapshot().find((s) => s.function === 'aws_sagemaker.invoke_endpoint')?.figures
          .perRowCalls ?? 0;
      const { rows } = await db.query(`SELECT id, ${call}::float8 AS p FROM events WHERE id <= 20 ORDER BY id`);
      expect(rows).toHaveLength(20);
      for (const row of rows) {
        expect(Math.abs(row.p - fixture.predictions[row.id - 1])).toBeLessThanOrEqual(1e-5);
      }
      const perRowAfter = stack.pgsage.statistics
        .snapshot()
        .find((s) => s.function === 'aws_sagemaker.invoke_endpoint')!.figures.perRowCalls;
      expect(perRowAfter - perRowBefore).toBe(20);
      const shown = await db.query('SHOW apg_enable_function_migration');
      // (Under Aurora's name, as PostgreSQL names a SHOW's column.)
      // (Its value as PostgreSQL shows a boolean setting's, whatever was written: `false` here.)
      expect(shown.rows).toEqual([{ apg_enable_function_migration: 'off' }]);
      expect(shown.command).toBe('SHOW');
      // Read and set by name through the functions too, as on Aurora.
      const read = await db.query(
        "SELECT current_setting('apg_enable_function_migration') AS now, set_config('apg_enable_function_migration', 'on', true) AS set",
      );
      expect(read.rows).toEqual([{ now: 'off', set: 'on' }]);
    } finally {
      await db.query('RESET apg_enable_function_migration');
    }
  });

  it('batches inputs read from the transaction start outside a block too, scoring each row once', async () => {
    const figures = () => {
      const entry = stack.pgsage.statistics.snapshot().find((s) => s.function === 'aws_sagemaker.invoke_endpoint');
      return { rows: entry?.figures.rows ?? 0, perRowCalls: entry?.figures.perRowCalls ?? 0 };
    };
    const rest = features.slice(1).join(', ');
    // Inputs that differ from one transaction to the next (as an age computed from now() does).
    for (const first of [
      'f1 + extract(microseconds from now()) * 1e-9',
      'f1 + extract(microseconds from current_timestamp) * 1e-9',
      "f1 + extract(microseconds from 'now'::timestamptz) * 1e-9",
    ]) {
      const sql = `SELECT count(aws_sagemaker.invoke_endpoint('churn-xgb', NULL, ${first}, ${rest})::float8)::int AS n,
        now() AS started FROM events WHERE id <= 150`;
      // Sent as it is, and with the extended protocol (a driver's $1).
      for (const query of [sql, { text: sql.replace('150', '$1'), values: [150] }]) {
        const before = figures();
        const { rows } = await db.query(query);
        expect(rows[0].n, first).toBe(150);
        expect(figures().perRowCalls - before.perRowCalls, first).toBe(0);
        expect(figures().rows - before.rows, first).toBe(150);
        // Outside a block, as it came: a statement of its own, its transaction ended.
        const after = await db.query('SELECT now() > $1::timestamptz AS later', [rows[0].started]);
        expect(after.rows[0].later).toBe(true);
      }
    }
    // A statement that fails in that transaction fails as it would alone, and leaves no block open.
    const failing = `SELECT aws_sagemaker.invoke_endpoint('churn-xgb', NULL, f1 + extract(microseconds from now()) * 1e-9,
      ${rest})::float8 / 0::int FROM events WHERE id <= $1`;
    await expect(db.query({ text: failing, values: [3] })).rejects.toMatchObject({ code: '22012' });
    await expect(db.query(failing.replace('$1', '3'))).rejects.toMatchObject({ code: '22012' });
    expect((await db.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    await expect(db.query('SAVEPOINT s')).rejects.toMatchObject({ code: '25P01' }); // no block is open
  });

  it('batches them in a group that opens the block first, as pgjdbc sends a transaction with autocommit off', async () => {
    const perRowCalls = () =>
      stack.pgsage.statistics.snapshot().find((s) => s.function === 'aws_sagemaker.invoke_endpoint')?.figures
        .perRowCalls ?? 0;
    const rest = features.slice(1).join(', ');
    const sql = `SELECT count(aws_sagemaker.invoke_endpoint('churn-xgb', NULL,
      f1 + extract(microseconds from now()) * 1e-9, ${rest})::float8)::int, now()::text FROM events WHERE id <= $1`;
    const session = new RawSession(await stack.connect());
    const step = (text: string, values: string[] = []) => [raw.parse('', text), raw.bind('', values), raw.execute()];
    const before = perRowCalls();
    const answer = await session.round([...step('BEGIN'), ...step(sql, ['120']), raw.sync()]);
    expect(answer.errors).toEqual([]);
    expect(answer.types).toMatch(/^12C12DCZ$/); // BEGIN's replies, then the statement's, one ReadyForQuery
    expect(answer.statuses).toEqual(['T']);
    expect(answer.results[1][0][0]).toBe('120');
    expect(perRowCalls() - before).toBe(0);
    // The statement ran in the client's block: its now() is the block's.
    const inBlock = await session.query('SELECT now()::text');
    expect(inBlock.results[0][0][0]).toBe(answer.results[1][0][1]);
    await session.query('COMMIT');
    // A BEGIN that fails skips the rest of the group, as PostgreSQL skips it.
    const refused = await session.round([...step('BEGIN ISOLATION LEVEL nonsense'), ...step(sql, ['5']), raw.sync()]);
    expect(refused.errors.map((e) => e.code)).toEqual(['42601']);
    expect(refused.types).toBe('EZ');
  });

  it("takes Aurora's apg_enable_function_migration when the session starts, as a parameter or in options", async () => {
    const pg = (await import('pg')).default;
    const postgres = (await import('postgres')).default;
    const client = new pg.Client({
      connectionString: stack.gatewayUrl(),
      options: '-c apg_enable_function_migration=false',
    });
    await client.connect();
    try {
      const shown = await client.query('SHOW apg_enable_function_migration');
      // (As PostgreSQL shows a boolean setting.)
      expect(Object.values(shown.rows[0])[0]).toBe('off');
    } finally {
      await client.end();
    }
    const sql = postgres(stack.gatewayUrl(), { max: 1, connection: { apg_enable_function_migration: 'no' } });
    try {
      const [row] = await sql.unsafe('SHOW apg_enable_function_migration');
      expect(Object.values(row)[0]).toBe('off');
    } finally {
      await sql.end();
    }
  });

  it('refuses a value of apg_enable_function_migration that is not a boolean, as Aurora does', async () => {
    const NOT_BOOLEAN = 'parameter "apg_enable_function_migration" requires a Boolean value';
    const client = await stack.connect();
    for (const value of ['nonsense', "'maybe'", '2', 'o']) {
      await expect(client.query(`SET apg_enable_function_migration = ${value}`)).rejects.toMatchObject({
        code: '22023',
        message: 'parameter "apg_enable_function_migration" requires a Boolean value',
      });
    }
    // PostgreSQL's spellings of a boolean, prefixes included.
    for (const value of ['of', 'FALSE', 'n', '0', "'t'", 'yes', 'on', '1']) {
      await client.query(`SET apg_enable_function_migration = ${value}`);
    }
    // Refused inside a block, the block is aborted as a failed SET aborts it.
    await client.query('BEGIN');
    await expect(client.query('SET LOCAL apg_enable_function_migration TO nonsense')).rejects.toMatchObject({
      code: '22023',
    });
    await expect(client.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
    await client.query('ROLLBACK');
    // In a Query string of several statements too: what came before in it is rolled back, as PostgreSQL does.
    await client.query('CREATE TEMP TABLE kept (v int)');
    await expect(
      client.query(
        "INSERT INTO kept VALUES (1); SET apg_enable_function_migration = 'maybe'; INSERT INTO kept VALUES (2)",
      ),
    ).rejects.toMatchObject({ code: '22023' });
    expect((await client.query('SELECT count(*)::int AS n FROM kept')).rows[0].n).toBe(0);
    await client.query('BEGIN');
    await expect(client.query("SELECT 1; SET LOCAL apg_enable_function_migration = 'maybe'")).rejects.toMatchObject({
      code: '22023',
    });
    await expect(client.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
    await client.query('ROLLBACK');
    // With the extended protocol (pgjdbc sends every statement so) the SET is refused where PostgreSQL refuses one,
    // at its Execute.
    const session = new RawSession(await stack.connect());
    const set = (value: string) => [...raw.statement(`SET apg_enable_function_migration = ${value}`), raw.sync()];
    let answer = await session.round(set('nonsense'));
    expect(answer.errors.map((e) => [e.code, e.message])).toEqual([['22023', NOT_BOOLEAN]]);
    expect(answer.types).toBe('12EZ');
    answer = await session.round(set('off'));
    expect(answer.errors).toEqual([]);
    expect((await session.query('SHOW apg_enable_function_migration')).results[0]).toEqual([['off']]);
    await session.query('BEGIN');
    expect((await session.round(set("'maybe'"))).errors.map((e) => e.code)).toEqual(['22023']);
    expect((await session.query('SELECT 1')).errors.map((e) => e.code)).toEqual(['25P02']);
    await session.query('ROLLBACK');
    // Set past the statement (set_config): the next ML statement says what is wrong, and batches.
    const notices: string[] = [];
    client.on('notice', (notice) => notices.push(notice.message ?? ''));
    await client.query("SELECT set_config('aws_ml.enable_function_migration', 'nonsense', false)");
    const plan = await client.query(`EXPLAIN (ANALYZE, COSTS false) SELECT ${call} AS v FROM events`);
    expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).toMatch(/Batch Processing: num batches=1 /);
    expect(notices).toContain(
      'parameter "apg_enable_function_migration" requires a Boolean value: "nonsense" is taken as on',
    );
    await client.query('RESET apg_enable_function_migration');
    // Empty is unset (a placeholder setting RESET where the server has no value, as with --upstream): no warning.
    notices.length = 0;
    await client.query("SELECT set_config('aws_ml.enable_function_migration', '', false)");
    expect((await client.query(`SELECT ${call} AS v FROM events LIMIT 1`)).rows).toHaveLength(1);
    expect(notices).toEqual([]);
    expect((await client.query(`SELECT ${call} AS v FROM events LIMIT 1`)).rows).toHaveLength(1);
  });

  it('exposes per-function figures as SQL and as Prometheus metrics', async () => {
    const { rows } = await db.query(
      "SELECT function_name, batches, rows_scored, per_row_calls FROM aws_ml.batch_statistics WHERE function_name = 'aws_sagemaker.invoke_endpoint'",
    );
    expect(Number(rows[0].rows_scored)).toBeGreaterThanOrEqual(150);
    expect(Number(rows[0].per_row_calls)).toBeGreaterThanOrEqual(20);
    const metrics = await (await fetch(`${stack.pgsage.edge.url}/metrics`)).text();
    expect(metrics).toMatch(/^pgsage_batch_rows_total\{function="aws_sagemaker\.invoke_endpoint"\} \d+/m);
  });

  it('reports Batch Processing in EXPLAIN ANALYZE', async () => {
    const { rows } = await db.query(`EXPLAIN (ANALYZE, COSTS false) SELECT id, ${call}::float8 FROM events`);
    const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
    expect(plan).toMatch(/ML Function: aws_sagemaker\.invoke_endpoint\('churn-xgb'/);
    expect(plan).toMatch(
      /Batch Processing: num batches=1 avg\/min\/max batch size=150\.000\/150\.000\/150\.000 avg\/min\/max batch call time=\d+\.\d{3}\/\d+\.\d{3}\/\d+\.\d{3}/,
    );
  });

  it('refuses a model input over the 6 MB request limit with 54000, in batch mode and per row', async () => {
    // The CSV line of 6 MiB of text plus its line ending is one byte over SageMaker's limit.
    const sql = `SELECT id, aws_sagemaker.invoke_endpoint('churn-xgb', NULL, f1, repeat('x', 6 * 1024 * 1024)) AS p
                   FROM events WHERE id <= 3 ORDER BY id`;
    for (const setting of ['true', 'false']) {
      await db.query(`SET apg_enable_function_migration = ${setting}`);
      const error = await rejection(db.query(sql));
      expect(error.code, setting).toBe('54000');
      expect(error.message).toMatch(/endpoint churn-xgb is 6291\d{3} bytes as CSV; SageMaker accepts at most 6291456/);
      expect((await db.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    }
    await db.query('RESET apg_enable_function_migration');
  });

  /** `sql`'s rows or error (SQLSTATE and message), in batch mode and per row. */
  async function bothWays(sql: string) {
    const answers: Record<string, unknown> = {};
    for (const setting of ['on', 'off']) {
      await db.query(`SET apg_enable_function_migration = ${setting}`);
      answers[setting] = await db.query(sql).then(
        ({ rows }) => rows,
        (error) => ({ code: error.code, message: error.message }),
      );
    }
    await db.query('RESET apg_enable_function_migration');
    return answers;
  }

  it('sends a whole row (`t.*`) as the one argument it is, as per row does', async () => {
    // (Batch mode read it as the row's columns, each a model input, and answered with predictions.)
    await db.query('CREATE TABLE two_values (a float8, b float8)');
    await db.query('INSERT INTO two_values VALUES (0.5, 1.5), (2, 3)');
    for (const sql of [
      `SELECT aws_sagemaker.invoke_endpoint('churn-xgb', NULL, two_values.*) FROM two_values`,
      `SELECT aws_sagemaker.invoke_endpoint('churn-xgb', NULL, t.*, a) FROM two_values t`,
    ]) {
      const { on, off } = await bothWays(sql);
      expect(off, sql).toMatchObject({
        code: '0A000',
        message: expect.stringMatching(/composite values cannot be sent/),
      });
      expect(on, sql).toEqual(off);
    }
  });

  it('does not send a model input of blanks among others, which alone the endpoint refuses', async () => {
    // (Among other rows the endpoint read the blank line as a row of missing values, and answered it.)
    // (In the middle of the batch: as its first or last line, the answer had a line too few.)
    for (const blank of ["'  '", "E'\\t'"]) {
      await db.query('DROP TABLE IF EXISTS blank_inputs');
      await db.query(`CREATE TABLE blank_inputs AS SELECT * FROM (VALUES (1, '1'), (2, ${blank}), (3, '2')) v(id, s)`);
      const sql = `SELECT id, aws_sagemaker.invoke_endpoint('churn-xgb', NULL, s) FROM blank_inputs ORDER BY id`;
      const { on, off } = await bothWays(sql);
      expect(off, blank).toMatchObject({ code: '38000' });
      expect(on, blank).toEqual(off);
    }
    // Rows that are not read make no call, in either mode.
    const spared = `SELECT id, aws_sagemaker.invoke_endpoint('churn-xgb', NULL, s)::float8 > 0 AS p FROM blank_inputs
      WHERE id IN (1, 3) ORDER BY id`;
    const both = await bothWays(spared);
    expect(both.on).toEqual(both.off);
    expect(both.on).toHaveLength(2);
  });

  it('batches calls inside Aurora-style wrapper functions', async () => {
    await db.query(`CREATE FUNCTION churn_probability (${features.map((f) => `${f} float8`).join(', ')}, max_rows_per_batch INT DEFAULT NULL, OUT p float8)
      AS $$ SELECT aws_sagemaker.invoke_endpoint('churn-xgb', max_rows_per_batch, ${features.join(', ')})::float8 $$
      LANGUAGE SQL PARALLEL SAFE COST 5000`);
    const src = await db.query("SELECT prosrc FROM pg_proc WHERE proname = 'churn_probability'");
    expect(src.rows[0].prosrc).toContain('invoke_endpoint');
    const { rows } = await db.query(
      `SELECT id, churn_probability(${features.join(', ')}, 40) AS p FROM events ORDER BY id`,
    );
    expectReference(rows);
    const explain = await db.query(
      `EXPLAIN (ANALYZE, COSTS false) SELECT churn_probability(${features.join(', ')}, 40) FROM events`,
    );
    const plan = explain.rows.map((r) => r['QUERY PLAN']).join('\n');
    expect(plan).toMatch(/Batch Processing: num batches=4 avg\/min\/max batch size=37\.500\/30\.000\/40\.000/);
  });

  it('casts a multi-value answer to a composite type, in batch mode and per row', async () => {
    await deployEndpoint(stack.pgsage.edge.url, 'classes', xgboostFixture('multi_softprob.json'));
    const reference = readFileSync(xgboostFixture('multi_softprob.predict.csv'), 'utf8').trim().split('\n');
    const inputs = readFileSync(xgboostFixture('inputs_classification3.csv'), 'utf8').trim().split('\n');
    await db.query(`CREATE TABLE companies (id int, ${features.map((f) => `${f} float8`).join(', ')})`);
    await db.query(
      `INSERT INTO companies VALUES ${inputs
        .slice(0, 30)
        .map(
          (line, i) =>
            `(${i + 1}, ${line
              .split(',')
              .map((v) => (v === '' ? 'NULL' : v))
              .join(', ')})`,
        )
        .join(', ')}`,
    );
    await db.query('CREATE TYPE class_forecast AS (p0 real, p1 float8, p2 float8)');
    await db.query(`CREATE FUNCTION forecast (${features.map((f) => `${f} float8`).join(', ')}, max_rows_per_batch INT DEFAULT NULL, OUT prediction class_forecast)
      AS $$ SELECT (aws_sagemaker.invoke_endpoint('classes', max_rows_per_batch, ${features.join(', ')}))::class_forecast; $$
      LANGUAGE SQL PARALLEL SAFE COST 5000`);
    const query = `SELECT id, (forecast(${features.join(', ')})).* FROM companies ORDER BY id`;
    const batched = await db.query(query);
    await db.query('SET apg_enable_function_migration = off');
    const perRow = await db.query(query);
    await db.query('RESET apg_enable_function_migration');
    expect(batched.rows).toEqual(perRow.rows);
    expect(batched.rows).toHaveLength(30);
    for (const row of batched.rows) {
      const [p0, p1, p2] = reference[row.id - 1].split(',').map(Number);
      expect(row.p0).toBeCloseTo(p0, 6);
      expect(row.p1).toBeCloseTo(p1, 6);
      expect(row.p2).toBeCloseTo(p2, 6);
    }
  });
});
