import { createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsMlServices } from '../../src/ml/aws-services.js';
import { SqlError } from '../../src/util/errors.js';
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

  it('fails a call to a service that never answers with 58030 once the request timeout passes', async () => {
    // Accepts connections and reads requests, never answers.
    const sockets: Socket[] = [];
    const silent = createServer((socket) => {
      sockets.push(socket);
      socket.resume();
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const services = new AwsMlServices({
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${port}`,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      timeoutMs: 300,
    });
    try {
      for (const call of [
        () => services.invokeEndpoint('silent', '1,2\n'),
        () => services.detectSentiment(['hello'], 'en'),
      ]) {
        const error = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(SqlError);
        expect(error).toMatchObject({
          sqlstate: '58030',
          message: expect.stringMatching(/did not answer within 300 ms$/),
        });
      }
      expect(sockets.length).toBeGreaterThan(0);
    } finally {
      services.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
