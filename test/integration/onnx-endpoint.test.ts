import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packagePath } from '../../src/util/paths.js';
import { deployEndpoint } from '../support/endpoints.js';
import { startStack, type TestStack } from '../support/stack.js';

/** An ONNX model (made by the real onnx library: scripts/fixtures/make_onnx_fixture.py) served by onnxruntime-node. */
const fixture = (name: string) => packagePath('test', 'fixtures', 'models', 'onnx', name);
const csv = (name: string) =>
  readFileSync(fixture(name), 'utf8')
    .trim()
    .split('\n')
    .map((line) => line.split(',').map(Number));

let stack: TestStack;

beforeAll(async () => {
  stack = await startStack();
  await deployEndpoint(stack.pgsage.edge.url, 'mlp', fixture('mlp.onnx'), 'pgsage/onnx-runtime:1.30');
});

afterAll(async () => {
  await stack?.stop();
});

describe('an ONNX endpoint', () => {
  it('answers from SQL, in batch mode and per row, as the model computes', async () => {
    const inputs = csv('mlp.inputs.csv');
    const expected = csv('mlp.expected.csv').map((r) => r[0]);
    const db = await stack.connect();
    await db.query('CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE');
    await db.query('CREATE TABLE points (id int, a real, b real, c real, d real)');
    await db.query(`INSERT INTO points VALUES ${inputs.map((r, i) => `(${i + 1}, ${r.join(', ')})`).join(', ')}`);
    const sql =
      "SELECT id, aws_sagemaker.invoke_endpoint('mlp', NULL, a, b, c, d)::float8 AS y FROM points ORDER BY id";
    const batched = await db.query(sql);
    await db.query('SET apg_enable_function_migration = off');
    const perRow = await db.query(sql);
    expect(batched.rows).toEqual(perRow.rows);
    for (const row of batched.rows) {
      expect(Math.abs(row.y - expected[row.id - 1])).toBeLessThan(1e-4 * Math.max(1, Math.abs(expected[row.id - 1])));
    }
  });
});
