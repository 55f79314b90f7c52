import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { BackendChannel } from '../gateway/backend.js';
import { quoteIdentifier } from '../sql/quote.js';
import { SqlError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { packagePath } from '../util/paths.js';

/** The aws_ml install script as shipped, for servers where pgsage cannot place extension files. */
export function extensionScript(name: string, version = name === 'aws_ml' ? '1.4' : '1.0'): string {
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
    return quoteIdentifier(schema);
  });
}

/** Stores where the bridge listens in a database that has aws_ml (upstream mode). */
export async function storeBridgeConninfo(backend: BackendChannel, conninfo: string): Promise<void> {
  await backend.query('DELETE FROM aws_ml.bridge_settings');
  await backend.queryParams('INSERT INTO aws_ml.bridge_settings (conninfo) VALUES ($1)', [conninfo]);
}

/**
 * At start in upstream mode: the database pgsage was pointed at learns where
 * this gateway's bridge listens now, if it has aws_ml. Other databases learn
 * it when CREATE EXTENSION aws_ml passes through the gateway; pgsage does not
 * rewrite databases it was not given (another gateway may serve them).
 */
export async function syncBridgeConninfo(admin: pg.ClientConfig, conninfo: string, logger: Logger): Promise<boolean> {
  const client = new pg.Client(admin);
  client.on('error', () => {}); // (reported by the statement that meets it)
  try {
    await client.connect();
    const present = await client.query("SELECT to_regclass('aws_ml.bridge_settings') IS NOT NULL AS present");
    if (!present.rows[0].present) return false;
    await client.query('BEGIN');
    await client.query('DELETE FROM aws_ml.bridge_settings');
    await client.query('INSERT INTO aws_ml.bridge_settings (conninfo) VALUES ($1)', [conninfo]);
    await client.query('COMMIT');
    return true;
  } catch (error) {
    logger.warn({ database: admin.database, err: (error as Error).message }, 'could not update aws_ml bridge settings');
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * CREATE EXTENSION aws_ml on a server where pgsage could not install the
 * extension's files (a managed or remote PostgreSQL): the same script runs as
 * plain SQL in the client's session. What differs from a real extension: it is
 * not listed by \dx, and DROP EXTENSION does not know it (drop the schemas
 * aws_ml, aws_comprehend and aws_sagemaker instead). Returns a notice to show,
 * if any.
 */
export async function installAwsMlByScript(
  backend: BackendChannel,
  options: { ifNotExists: boolean; cascade: boolean },
): Promise<string | undefined> {
  const present = await backend.query("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'aws_ml'");
  if (present.rows.length > 0) {
    if (options.ifNotExists) return 'extension "aws_ml" already exists, skipping';
    throw new SqlError('42710', 'extension "aws_ml" already exists');
  }
  let dblink = await backend.query(
    "SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'dblink'",
  );
  if (dblink.rows.length === 0) {
    if (!options.cascade) {
      throw new SqlError(
        '42704',
        'required extension "dblink" is not installed',
        undefined,
        'Use CREATE EXTENSION ... CASCADE to install required extensions too.',
      );
    }
    await backend.query('CREATE EXTENSION dblink');
    dblink = await backend.query(
      "SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'dblink'",
    );
  }
  await backend.query(scriptAsPlainSql(extensionScript('aws_ml'), { dblink: String(dblink.rows[0][0]) }));
  return undefined;
}
