import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaryLogisticFixture, deployEndpoint } from '../support/endpoints.js';
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
      expect(Object.values(shown.rows[0])[0]).toBe('false');
    } finally {
      await db.query('RESET apg_enable_function_migration');
    }
  });

  it('reports Batch Processing in EXPLAIN ANALYZE', async () => {
    const { rows } = await db.query(`EXPLAIN (ANALYZE, COSTS false) SELECT id, ${call}::float8 FROM events`);
    const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
    expect(plan).toMatch(/ML Function: aws_sagemaker\.invoke_endpoint\('churn-xgb'/);
    expect(plan).toMatch(
      /Batch Processing: num batches=1 avg\/min\/max batch size=150\.000\/150\.000\/150\.000 avg\/min\/max batch call time=\d+\.\d{3}\/\d+\.\d{3}\/\d+\.\d{3}/,
    );
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
});
