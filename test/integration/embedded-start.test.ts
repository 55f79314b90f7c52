/**
 * EmbeddedPostgres.start on its own, without the port check `pgsage up` makes
 * first: what it does when it loses the port to another server in between.
 */
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { EmbeddedPostgres } from '../../src/db/embedded.js';
import { createLogger, silentLogger } from '../../src/util/log.js';

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

    // Its logs are its user's alone: PostgreSQL logs a failed statement whole, a password in it too.
    const mode = (file: string) => statSync(path.join(dataDir, 'logs', file)).mode & 0o777;
    expect(mode('')).toBe(0o700);
    expect(mode('postgres.log')).toBe(0o600);
    createLogger({ directory: path.join(dataDir, 'logs'), level: 'info' }).info('started');
    expect(mode('pgsage.log')).toBe(0o600);

    const client = new pg.Client({ ...other, database: 'postgres' });
    await client.connect();
    const { rows } = await client.query('SELECT 1 AS one');
    expect(rows[0].one).toBe(1);
    await client.end();
  });
});
