import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaryLogisticFixture, deployEndpoint } from '../support/endpoints.js';
import { startStack, type TestStack } from '../support/stack.js';

/** The per-row path: any SQL context reaches the services through the bridge. */
let stack: TestStack;
let admin: pg.Client;
const fixture = binaryLogisticFixture();
const features = Array.from({ length: 12 }, (_, i) => `f${i + 1}`);
const valuesOf = (row: (number | null)[]) => row.map((v) => (v === null ? 'NULL' : String(v))).join(', ');

beforeAll(async () => {
  stack = await startStack();
  await deployEndpoint(stack.pgsage.edge.url, 'rows', fixture.model);
  admin = await stack.connect();
  await admin.query('CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE');
  await admin.query(
    `CREATE TABLE events (id int PRIMARY KEY, ${features.map((f) => `${f} float8`).join(', ')}, p float8)`,
  );
});

afterAll(async () => {
  await stack?.stop();
});

describe('the per-row path', () => {
  it('serves a trigger', async () => {
    await admin.query(`CREATE FUNCTION score_event() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        NEW.p := aws_sagemaker.invoke_endpoint('rows', NULL, ${features.map((f) => `NEW.${f}`).join(', ')})::float8;
        RETURN NEW;
      END $$`);
    await admin.query('CREATE TRIGGER score BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION score_event()');
    for (let i = 0; i < 5; i++) await admin.query(`INSERT INTO events VALUES (${i + 1}, ${valuesOf(fixture.rows[i])})`);
    const { rows } = await admin.query('SELECT id, p FROM events ORDER BY id');
    for (const row of rows) expect(row.p).toBeCloseTo(fixture.predictions[row.id - 1], 5);
  });

  it('serves a client connected straight to PostgreSQL (packed form)', async () => {
    const direct = await stack.direct();
    const { rows } = await direct.query(
      `SELECT aws_sagemaker.invoke_endpoint('rows', NULL, json_build_array(${valuesOf(fixture.rows[7])}))::float8 AS p`,
    );
    expect(rows[0].p).toBeCloseTo(fixture.predictions[7], 5);
    // The Aurora form needs the gateway's rewrite, and says so by failing to resolve.
    await expect(direct.query(`SELECT aws_sagemaker.invoke_endpoint('rows', NULL, 1, 2)`)).rejects.toMatchObject({
      code: '42883',
    });
  });

  it('serves a PL/pgSQL loop and many sessions at once', async () => {
    const sessions = await Promise.all(Array.from({ length: 8 }, () => stack.direct()));
    const results = await Promise.all(
      sessions.map((session, s) =>
        session.query(`DO $$
          DECLARE total float8 := 0;
          BEGIN
            FOR i IN 1..10 LOOP
              total := total + aws_sagemaker.invoke_endpoint('rows', NULL, json_build_array(${valuesOf(fixture.rows[s])}))::float8;
            END LOOP;
            RAISE NOTICE 'total %', total;
          END $$`),
      ),
    );
    expect(results).toHaveLength(8);
    const stats = stack.pgsage.statistics.snapshot().find((e) => e.function === 'aws_sagemaker.invoke_endpoint');
    expect(stats?.figures.perRowCalls).toBeGreaterThanOrEqual(80);
  });

  it('reconnects after the bridge restarts', async () => {
    const direct = await stack.direct();
    const call = `SELECT aws_sagemaker.invoke_endpoint('rows', NULL, json_build_array(${valuesOf(fixture.rows[0])}))::float8 AS p`;
    await direct.query(call);
    const port = stack.pgsage.bridge.port;
    await stack.pgsage.bridge.close();
    await stack.pgsage.bridge.listen();
    expect(stack.pgsage.bridge.port).toBe(port);
    const notices: string[] = [];
    direct.on('notice', (notice) => notices.push(notice.message ?? ''));
    const { rows } = await direct.query(call);
    expect(rows[0].p).toBeCloseTo(fixture.predictions[0], 5);
    // The broken connection is the extension's business, not the client's.
    expect(notices).toEqual([]);
  });
});
