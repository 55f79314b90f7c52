import { createServer as createHttpServer } from 'node:http';
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

  it('fails a call to a service that never answers, or stops mid-answer, with 58030 once the timeout passes', async () => {
    // One server reads requests and never answers; the other sends headers and part of a body, then stalls.
    const sockets: Socket[] = [];
    const silent = createServer((socket) => {
      sockets.push(socket);
      socket.resume();
    });
    const stalling = createHttpServer((request, response) => {
      request.resume();
      response.writeHead(200, { 'content-type': 'text/csv', 'content-length': '100' });
      response.write('0.5');
    });
    const listening = async (server: { listen: (port: number, host: string, done: () => void) => unknown }) => {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    };
    await listening(silent);
    await listening(stalling);
    const clientOf = (server: { address: () => unknown }) =>
      new AwsMlServices({
        region: 'us-east-1',
        endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
        credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
        timeoutMs: 300,
      });
    const clients = [clientOf(silent), clientOf(stalling)];
    try {
      for (const services of clients) {
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
      }
      expect(sockets.length).toBeGreaterThan(0);
    } finally {
      for (const services of clients) services.close();
      for (const socket of sockets) socket.destroy();
      stalling.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
      await new Promise((resolve) => stalling.close(resolve));
    }
  });
});
