import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { BackendChannel } from '../gateway/backend.js';
import type { Logger } from '../util/log.js';
import { packagePath } from '../util/paths.js';

/** The aws_ml install script as shipped, for servers where pgsage cannot place extension files. */
export function extensionScript(name: string, version = '1.0'): string {
  return readFileSync(packagePath('src', 'extension', 'sql', 'extension', `${name}--${version}.sql`), 'utf8');
}

/**
 * The script adapted to run as plain SQL: without the psql guard line and with
 * required extensions' schemas resolved (what CREATE EXTENSION would substitute).
 */
export function scriptAsPlainSql(script: string, schemas: Record<string, string>): string {
  return script.replace(/^\\echo .*$/m, '').replace(/@extschema:([a-z_]+)@/g, (_, ext: string) => {
    const schema = schemas[ext];
    if (!schema) throw new Error(`required extension ${ext} is not installed`);
    return `"${schema.replace(/"/g, '""')}"`;
  });
}

/** Stores where the bridge listens in a database that has aws_ml (upstream mode). */
export async function storeBridgeConninfo(backend: BackendChannel, conninfo: string): Promise<void> {
  await backend.query('DELETE FROM aws_ml.bridge_settings');
  await backend.queryParams('INSERT INTO aws_ml.bridge_settings (conninfo) VALUES ($1)', [conninfo]);
}

/**
 * At start in upstream mode: every database that already has aws_ml learns
 * where this gateway's bridge listens now.
 */
export async function syncBridgeConninfo(
  admin: (database?: string) => pg.ClientConfig,
  conninfo: string,
  logger: Logger,
): Promise<string[]> {
  const updated: string[] = [];
  const root = new pg.Client(admin());
  await root.connect();
  let databases: string[];
  try {
    const { rows } = await root.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1',
    );
    databases = rows.map((r) => r.datname);
  } finally {
    await root.end();
  }
  for (const database of databases) {
    const client = new pg.Client(admin(database));
    try {
      await client.connect();
      const { rowCount } = await client.query("SELECT 1 FROM pg_extension WHERE extname = 'aws_ml'");
      const hasTable = await client.query("SELECT to_regclass('aws_ml.bridge_settings') IS NOT NULL AS present");
      if (!rowCount && !hasTable.rows[0].present) continue;
      await client.query('BEGIN');
      await client.query('DELETE FROM aws_ml.bridge_settings');
      await client.query('INSERT INTO aws_ml.bridge_settings (conninfo) VALUES ($1)', [conninfo]);
      await client.query('COMMIT');
      updated.push(database);
    } catch (error) {
      logger.warn({ database, err: (error as Error).message }, 'could not update aws_ml bridge settings');
    } finally {
      await client.end().catch(() => {});
    }
  }
  return updated;
}
