/**
 * EmbeddedPostgres.start on its own, without the port check `pgsage up` makes
 * first: what it does when it loses the port to another server in between.
 */
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { EmbeddedPostgres } from '../../src/db/embedded.js';
import { silentLogger } from '../../src/util/log.js';

const dataDir = mkdtempSync(path.join(tmpdir(), 'pgsage-embedded-start-'));
// Run as root, the server runs as the OS user postgres, which must reach this (mkdtemp makes it 0700).
chmodSync(dataDir, 0o755);

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('EmbeddedPostgres.start', () => {
  it('fails, and stops its server, when another server answers on its port', async () => {
    // The run's shared server, with the same user and password: it would accept pgsage's connections.
    const other = inject('postgres');
    const server = new EmbeddedPostgres({
      dataDir,
      port: other.port,
      user: other.user,
      password: other.password,
      logger: silentLogger,
    });

    await expect(server.start()).rejects.toThrow(
      `port ${other.port} for the embedded PostgreSQL is already in use on 127.0.0.1`,
    );
    expect(server.pid).toBeUndefined();
    expect(existsSync(path.join(dataDir, 'pg', 'postmaster.pid'))).toBe(false);

    const client = new pg.Client({ ...other, database: 'postgres' });
    await client.connect();
    const { rows } = await client.query('SELECT 1 AS one');
    expect(rows[0].one).toBe(1);
    await client.end();
  });
});
