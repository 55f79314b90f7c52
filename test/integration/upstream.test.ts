import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedPostgres } from '../../src/db/embedded.js';
import { silentLogger } from '../../src/util/log.js';
import { binaryLogisticFixture, deployEndpoint } from '../support/endpoints.js';
import { type EphemeralPgsage, startEphemeralPgsage } from '../support/ephemeral.js';
import { freePort } from '../support/ports.js';

/** A PostgreSQL where pgsage could not install its extension files, like a managed server. */
let server: EmbeddedPostgres;
let serverDir: string;
let stack: EphemeralPgsage;

beforeAll(async () => {
  serverDir = mkdtempSync(path.join(tmpdir(), 'pgsage-upstream-'));
  server = new EmbeddedPostgres({
    dataDir: serverDir,
    port: await freePort(),
    user: 'postgres',
    password: 'postgres',
    logger: silentLogger,
  });
  await server.start();
  stack = await startEphemeralPgsage('pgsage-upstream-gw-', {
    postgres: { upstream: `postgres://postgres:postgres@127.0.0.1:${server.port}/postgres` },
  });
});

afterAll(async () => {
  await stack?.stop();
  await server?.stop();
  if (serverDir) rmSync(serverDir, { recursive: true, force: true });
});

async function connect(): Promise<pg.Client> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: stack.pgsage.gateway.port,
    user: 'postgres',
    password: 'postgres',
    database: 'postgres',
  });
  await client.connect();
  return client;
}

describe('upstream server without the extension files', () => {
  it('carries out CREATE EXTENSION aws_ml itself and serves per-row calls', async () => {
    const client = await connect();
    try {
      const available = await client.query(
        "SELECT count(*)::int AS n FROM pg_available_extensions WHERE name = 'aws_ml'",
      );
      expect(available.rows[0].n).toBe(0);
      await expect(client.query('CREATE EXTENSION aws_ml')).rejects.toMatchObject({
        code: '42704',
        message: 'required extension "dblink" is not installed',
      });
      await client.query('CREATE EXTENSION aws_ml CASCADE');
      const notices: string[] = [];
      client.on('notice', (n) => notices.push(n.message ?? ''));
      await client.query('CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE');
      expect(notices).toContain('extension "aws_ml" already exists, skipping');
      await expect(client.query('CREATE EXTENSION aws_ml CASCADE')).rejects.toMatchObject({ code: '42710' });
      const schemas = await client.query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'aws_%' ORDER BY 1");
      expect(schemas.rows.map((r) => r.nspname)).toEqual(['aws_comprehend', 'aws_ml', 'aws_sagemaker']);

      const fixture = binaryLogisticFixture();
      await deployEndpoint(stack.pgsage.edge.url, 'up', fixture.model);
      const row = fixture.rows[0].map((v) => (v === null ? 'NULL::float8' : String(v))).join(', ');
      await client.query('SET apg_enable_function_migration = off');
      const { rows } = await client.query(`SELECT aws_sagemaker.invoke_endpoint('up', NULL, ${row})::float8 AS p`);
      expect(rows[0].p).toBeCloseTo(fixture.predictions[0], 5);
    } finally {
      await client.end();
    }
  });
});
