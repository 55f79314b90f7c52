import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEdge, type TestEdge } from '../support/edge.js';
import { binaryLogisticFixture, deployEndpoint } from '../support/endpoints.js';
import { startStack, type TestStack } from '../support/stack.js';

/**
 * The `aws` backend sends ML calls through the AWS SDK instead of to pgsage's
 * own edge. Real AWS is out of reach here, so the SDK is pointed at another
 * pgsage edge: the SDK code path, signing and error mapping are the real ones.
 */
let remote: TestEdge;
let stack: TestStack;
const fixture = binaryLogisticFixture();

beforeAll(async () => {
  remote = await startTestEdge();
  await deployEndpoint(remote.url, 'remote-xgb', fixture.model);
  stack = await startStack({
    backend: 'aws',
    region: 'us-east-1',
    accountId: '123456789012',
    aws: { endpoint: remote.url, accessKeyId: 'test', secretAccessKey: 'test' },
  });
});

afterAll(async () => {
  await stack?.stop();
  await remote?.close();
});

describe('the aws backend', () => {
  it('answers batch-mode and per-row calls through the AWS SDK', async () => {
    const db = await stack.connect();
    await db.query('CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE');
    await db.query(`CREATE TABLE rows_in (id int, ${fixture.rows[0].map((_, i) => `f${i + 1} float8`).join(', ')})`);
    await db.query(
      `INSERT INTO rows_in VALUES ${fixture.rows
        .slice(0, 20)
        .map((r, i) => `(${i + 1}, ${r.map((v) => (v === null ? 'NULL' : v)).join(', ')})`)
        .join(', ')}`,
    );
    const features = fixture.rows[0].map((_, i) => `f${i + 1}`).join(', ');
    const sql = `SELECT id, aws_sagemaker.invoke_endpoint('remote-xgb', NULL, ${features})::float8 AS p FROM rows_in ORDER BY id`;
    const batched = await db.query(sql);
    await db.query('SET apg_enable_function_migration = off');
    const perRow = await db.query(sql);
    expect(batched.rows).toEqual(perRow.rows);
    for (const row of batched.rows) expect(row.p).toBeCloseTo(fixture.predictions[row.id - 1], 5);
    await expect(db.query("SELECT aws_sagemaker.invoke_endpoint('missing', NULL, 1)")).rejects.toMatchObject({
      code: '42704',
    });
  });
});
