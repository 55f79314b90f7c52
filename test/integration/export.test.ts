import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalObjectStore, localStoreRoot } from '../../src/storage/index.js';
import { psql } from '../support/processes.js';
import { RawSession, raw } from '../support/raw-protocol.js';
import { startStack, type TestStack } from '../support/stack.js';

const PART_SIZE = 4096;

let stack: TestStack;
let db: pg.Client;
let store: LocalObjectStore;
const role = `exporter_${randomBytes(4).toString('hex')}`;
const stranger = `stranger_${randomBytes(4).toString('hex')}`;

const uri = (key: string, region = 'us-east-1') => `aws_commons.create_s3_uri('exports', '${key}', '${region}')`;

/** What a real COPY gives, read straight from PostgreSQL with psql (bypassing the gateway). */
async function copyOutput(query: string, options = ''): Promise<string> {
  const result = await psql(stack.directUrl(), `COPY (${query}) TO STDOUT ${options}`, ['-X']);
  expect(result.stderr).toBe('');
  return result.stdout;
}

async function errorOf(
  client: pg.Client,
  sql: string | pg.QueryConfig,
): Promise<{ code?: string; message: string; hint?: string }> {
  try {
    await client.query(sql);
  } catch (error) {
    return error as { code?: string; message: string; hint?: string };
  }
  throw new Error(`expected ${sql} to fail`);
}

/** Sends `messages` as one group on a connection of its own; its errors. */
async function rawPipeline(messages: Buffer[]): Promise<{ errors: { code: string }[] }> {
  const client = await stack.connect();
  try {
    return await new RawSession(client).round(messages);
  } finally {
    await client.end();
  }
}

/** An export to the bucket `exports` through postgres.js, with its own `options`; the rows_uploaded it answers. */
async function exportedByPostgresJs(options: { prepare?: boolean }, query: string, key: string): Promise<string> {
  const js = postgres(stack.gatewayUrl(), { max: 1, onnotice: () => {}, ...options });
  try {
    const [answer] = await js`SELECT * FROM aws_s3.query_export_to_s3(${query}, ${'exports'}, ${key})`;
    return answer.rows_uploaded;
  } finally {
    await js.end();
  }
}

async function text(key: string): Promise<string> {
  return (await store.get('exports', key)).toString('utf8');
}

beforeAll(async () => {
  stack = await startStack({ storage: { partSizeBytes: PART_SIZE } });
  store = new LocalObjectStore(localStoreRoot(stack.pgsage.config), false);
  await store.createBucket('exports');
  db = await stack.connect();
  await db.query('CREATE EXTENSION aws_s3 CASCADE');
  await db.query(`CREATE TABLE items (id int PRIMARY KEY, name text, price numeric)`);
  await db.query(
    `INSERT INTO items SELECT g, CASE WHEN g % 10 = 0 THEN NULL ELSE 'item ' || g END, g * 1.5 FROM generate_series(1, 100) g`,
  );
  await db.query(`CREATE ROLE ${role} LOGIN PASSWORD 'secret'`);
  await db.query(`CREATE ROLE ${stranger} LOGIN PASSWORD 'secret'`);
  await db.query(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA aws_s3 TO ${role}`);
});

afterAll(async () => {
  await db?.query(`DROP OWNED BY ${role}, ${stranger}`).catch(() => {});
  await db?.query(`DROP ROLE IF EXISTS ${role}, ${stranger}`).catch(() => {});
  await stack?.stop();
});

/** Lines packed greedily into parts of at most `size` bytes: how the export must split. */
function expectedParts(output: string, size: number): string[] {
  const parts: string[] = [];
  let current = '';
  for (const line of output.split(/(?<=\n)/)) {
    if (current !== '' && Buffer.byteLength(current + line) > size) {
      parts.push(current);
      current = '';
    }
    current += line;
  }
  if (current !== '') parts.push(current);
  return parts;
}

async function connectAs(user: string): Promise<pg.Client> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: stack.pgsage.gateway.port,
    user,
    password: 'secret',
    database: stack.database,
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}

describe('CREATE EXTENSION aws_s3 CASCADE', () => {
  it('brings aws_commons and has Aurora signatures, EXECUTE revoked from PUBLIC', async () => {
    const extensions = await db.query(
      "SELECT extname FROM pg_extension WHERE extname IN ('aws_commons', 'aws_s3') ORDER BY 1",
    );
    expect(extensions.rows.map((r) => r.extname)).toEqual(['aws_commons', 'aws_s3']);
    const functions = await db.query(`
      SELECT p.proname || '(' || pg_get_function_arguments(p.oid) || ')' AS signature,
             has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
        FROM pg_proc p WHERE p.pronamespace = 'aws_s3'::regnamespace AND p.proname = 'query_export_to_s3' ORDER BY 1`);
    expect(functions.rows).toEqual([
      {
        signature:
          'query_export_to_s3(query text, bucket text, file_path text, region text DEFAULT NULL::text, options text DEFAULT NULL::text, kms_key text DEFAULT NULL::text, OUT rows_uploaded bigint, OUT files_uploaded bigint, OUT bytes_uploaded bigint)',
        public_execute: false,
      },
      {
        signature:
          'query_export_to_s3(query text, s3_info aws_commons._s3_uri_1, options text DEFAULT NULL::text, kms_key text DEFAULT NULL::text, OUT rows_uploaded bigint, OUT files_uploaded bigint, OUT bytes_uploaded bigint)',
        public_execute: false,
      },
    ]);
    const s3uri = await db.query(`SELECT (${uri('a/b.csv')}).*`);
    expect(s3uri.rows).toEqual([{ bucket: 'exports', file_path: 'a/b.csv', region: 'us-east-1' }]);
  });
});

describe('aws_s3.query_export_to_s3 through the gateway', () => {
  it('exports CSV with a header, byte for byte what COPY gives', async () => {
    const query = 'SELECT id, name, price FROM items ORDER BY id';
    const { rows } = await db.query(
      `SELECT * FROM aws_s3.query_export_to_s3('${query}', ${uri('items.csv')}, options := 'format csv, header true')`,
    );
    const expected = await copyOutput(query, 'WITH (FORMAT csv, HEADER true)');
    expect(expected.split('\n')[0]).toBe('id,name,price');
    expect(await text('items.csv')).toBe(expected);
    expect(rows).toEqual([
      { rows_uploaded: '100', files_uploaded: '1', bytes_uploaded: String(Buffer.byteLength(expected)) },
    ]);
  });

  it('exports text format by default, and with another delimiter', async () => {
    const query = 'SELECT id, name FROM items WHERE id <= 20 ORDER BY id';
    await db.query(`SELECT * FROM aws_s3.query_export_to_s3('${query}', ${uri('items.txt')})`);
    const plain = await text('items.txt');
    expect(plain).toBe(await copyOutput(query));
    expect(plain.split('\n')[9]).toBe('10\t\\N');

    await db.query(
      `SELECT * FROM aws_s3.query_export_to_s3('${query}', ${uri('items-pipe.txt')}, 'format text, delimiter $$|$$')`,
    );
    const piped = await text('items-pipe.txt');
    expect(piped).toBe(await copyOutput(query, "WITH (DELIMITER '|')"));
    expect(piped.split('\n')[0]).toBe('1|item 1');
  });

  it('takes the older COPY option syntax and quotes values itself', async () => {
    await db.query(
      `SELECT * FROM aws_s3.query_export_to_s3('SELECT id, name FROM items WHERE id IN (1, 10) ORDER BY id', ${uri('legacy.csv')}, 'CSV HEADER DELIMITER '';'' NULL ''it''''s null''')`,
    );
    expect(await text('legacy.csv')).toBe("id;name\n1;item 1\n10;it's null\n");
  });

  it('accepts the bucket, file_path, region form, with the region optional', async () => {
    const withRegion = await db.query(
      "SELECT * FROM aws_s3.query_export_to_s3('SELECT 1 AS one', 'exports', 'forms/with-region.txt', 'us-east-1')",
    );
    expect(withRegion.rows).toEqual([{ rows_uploaded: '1', files_uploaded: '1', bytes_uploaded: '2' }]);
    const without = await db.query(
      "SELECT rows_uploaded FROM aws_s3.query_export_to_s3('VALUES (1), (2)', 'exports', 'forms/no-region.csv', options := 'format csv')",
    );
    expect(without.rows).toEqual([{ rows_uploaded: '2' }]);
    expect(await text('forms/with-region.txt')).toBe('1\n');
    expect(await text('forms/no-region.csv')).toBe('1\n2\n');
  });

  it('gives SELECT f(...) and SELECT * FROM f(...) the shapes a real function would', async () => {
    const scalar = await db.query(
      "SELECT aws_s3.query_export_to_s3('SELECT 42', 'exports', 'shape/scalar.txt') AS r, 'x' AS other",
    );
    expect(scalar.rows).toEqual([{ r: '(1,1,3)', other: 'x' }]);
    const unnamed = await db.query("SELECT aws_s3.query_export_to_s3('SELECT 42', 'exports', 'shape/unnamed.txt')");
    expect(unnamed.fields.map((f) => f.name)).toEqual(['query_export_to_s3']);
    expect(unnamed.rows).toEqual([{ query_export_to_s3: '(1,1,3)' }]);
    const field = await db.query(
      "SELECT (aws_s3.query_export_to_s3('SELECT 42', 'exports', 'shape/field.txt')).bytes_uploaded",
    );
    expect(field.rows).toEqual([{ bytes_uploaded: '3' }]);
    const qualified = await db.query(
      "SELECT query_export_to_s3.files_uploaded FROM aws_s3.query_export_to_s3('SELECT 42', 'exports', 'shape/from.txt')",
    );
    expect(qualified.rows).toEqual([{ files_uploaded: '1' }]);
    const aliased = await db.query(
      "SELECT e.r FROM aws_s3.query_export_to_s3('SELECT 42', 'exports', 'shape/alias.txt') AS e(r, f, b)",
    );
    expect(aliased.rows).toEqual([{ r: '1' }]);
    const types = await db.query(
      "SELECT pg_typeof(rows_uploaded)::text AS t FROM aws_s3.query_export_to_s3('SELECT 42', 'exports', 'shape/types.txt')",
    );
    expect(types.rows).toEqual([{ t: 'bigint' }]);
  });

  it('evaluates argument expressions on the session and takes psql variables', async () => {
    await db.query("SET pgsage_test.export_key = 'args/from-setting.txt'");
    const { rows } = await db.query(
      "SELECT files_uploaded FROM aws_s3.query_export_to_s3('SELECT ' || 6 * 7, 'exports', current_setting('pgsage_test.export_key'))",
    );
    expect(rows).toEqual([{ files_uploaded: '1' }]);
    expect(await text('args/from-setting.txt')).toBe('42\n');

    const result = await psql(
      stack.gatewayUrl(),
      `SELECT aws_commons.create_s3_uri('exports', 'args/psql.csv', 'us-east-1') AS s3_uri_1 \\gset
SELECT * FROM aws_s3.query_export_to_s3('SELECT id FROM items WHERE id < 4 ORDER BY 1', :'s3_uri_1', options :='format csv');`,
    );
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe('3|1|6');
    expect(await text('args/psql.csv')).toBe('1\n2\n3\n');
  });

  it('runs the query with the caller’s privileges', async () => {
    const exporter = await connectAs(role);
    try {
      const denied = await errorOf(
        exporter,
        `SELECT * FROM aws_s3.query_export_to_s3('SELECT * FROM items', ${uri('denied.txt')})`,
      );
      expect(denied.code).toBe('42501');
      expect(denied.message).toBe('permission denied for table items');
      expect(await store.exists('exports', 'denied.txt')).toBe(false);

      await db.query(`GRANT SELECT (id) ON items TO ${role}`);
      const { rows } = await exporter.query(
        `SELECT rows_uploaded FROM aws_s3.query_export_to_s3('SELECT id FROM items WHERE id <= 5', ${uri('granted.txt')})`,
      );
      expect(rows).toEqual([{ rows_uploaded: '5' }]);
    } finally {
      await exporter.end();
    }
  });

  it('needs EXECUTE on query_export_to_s3, like any function', async () => {
    const other = await connectAs(stranger);
    try {
      for (const call of [
        `aws_s3.query_export_to_s3('SELECT 1', ${uri('stranger.txt')})`,
        "aws_s3.query_export_to_s3('SELECT 1', 'exports', 'stranger.txt')",
      ]) {
        const denied = await errorOf(other, `SELECT * FROM ${call}`);
        expect(denied.code).toBe('42501');
        expect(denied.message).toBe('permission denied for function query_export_to_s3');
      }
      expect(await store.exists('exports', 'stranger.txt')).toBe(false);
    } finally {
      await other.end();
    }
  });

  it('sees the caller’s uncommitted rows and temp tables inside a transaction', async () => {
    await db.query('BEGIN');
    try {
      await db.query("INSERT INTO items VALUES (1001, 'uncommitted', 0)");
      await db.query("CREATE TEMP TABLE scratch AS SELECT 'temp row' AS note");
      const { rows } = await db.query(
        `SELECT rows_uploaded FROM aws_s3.query_export_to_s3('SELECT name FROM items WHERE id > 1000 UNION ALL SELECT note FROM scratch', ${uri('tx.txt')})`,
      );
      expect(rows).toEqual([{ rows_uploaded: '2' }]);
      // The transaction goes on normally after the export.
      const still = await db.query('SELECT count(*)::int AS n FROM items WHERE id = 1001');
      expect(still.rows).toEqual([{ n: 1 }]);
    } finally {
      await db.query('ROLLBACK');
    }
    expect(await text('tx.txt')).toBe('uncommitted\ntemp row\n');
    const gone = await db.query('SELECT count(*)::int AS n FROM items WHERE id = 1001');
    expect(gone.rows).toEqual([{ n: 0 }]);
  });

  it('leaves a transaction aborted when the export fails in it, like any failed statement', async () => {
    await db.query('BEGIN');
    try {
      const failed = await errorOf(
        db,
        `SELECT * FROM aws_s3.query_export_to_s3('SELECT * FROM no_such_table', ${uri('tx-failed.txt')})`,
      );
      expect(failed.code).toBe('42P01');
      const aborted = await errorOf(db, 'SELECT 1');
      expect(aborted.code).toBe('25P02');
    } finally {
      await db.query('ROLLBACK');
    }
    expect((await db.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });

  it('splits output larger than storage.partSizeBytes into path, path_part2, … at row boundaries', async () => {
    const query = "SELECT g, repeat('x', 60) FROM generate_series(1, 500) g";
    const expected = await copyOutput(query);
    const { rows } = await db.query(
      `SELECT * FROM aws_s3.query_export_to_s3('${query.replace(/'/g, "''")}', ${uri('split/big.txt')})`,
    );
    const wanted = expectedParts(expected, PART_SIZE);
    expect(wanted.length).toBeGreaterThan(5);
    const keys = wanted.map((_, i) => (i === 0 ? 'split/big.txt' : `split/big.txt_part${i + 1}`));
    expect((await store.list('exports', 'split/')).map((o) => o.key).sort()).toEqual([...keys].sort());
    expect(rows).toEqual([
      {
        rows_uploaded: '500',
        files_uploaded: String(wanted.length),
        bytes_uploaded: String(Buffer.byteLength(expected)),
      },
    ]);
    const parts = await Promise.all(keys.map((key) => text(key)));
    expect(parts).toEqual(wanted);

    // A smaller export to the same path replaces the object and removes the parts it no longer has.
    await db.query(`SELECT * FROM aws_s3.query_export_to_s3('SELECT 1', ${uri('split/big.txt')})`);
    expect((await store.list('exports', 'split/')).map((o) => o.key)).toEqual(['split/big.txt']);
  });

  it('overwrites an existing object', async () => {
    await db.query(`SELECT * FROM aws_s3.query_export_to_s3('SELECT ''first''', ${uri('overwrite.txt')})`);
    expect(await text('overwrite.txt')).toBe('first\n');
    await db.query(`SELECT * FROM aws_s3.query_export_to_s3('SELECT ''second''', ${uri('overwrite.txt')})`);
    expect(await text('overwrite.txt')).toBe('second\n');
  });

  it('reports PostgreSQL’s own error for a bad query and writes nothing', async () => {
    const missing = await errorOf(
      db,
      `SELECT * FROM aws_s3.query_export_to_s3('SELECT * FROM no_such_table', ${uri('bad/missing.txt')})`,
    );
    expect(missing.code).toBe('42P01');
    expect(missing.message).toBe('relation "no_such_table" does not exist');

    const syntax = await errorOf(db, `SELECT * FROM aws_s3.query_export_to_s3('SELEC 1', ${uri('bad/syntax.txt')})`);
    expect(syntax.code).toBe('42601');
    expect(syntax.message).toMatch(/syntax error at or near "SELEC"/);

    const runtime = await errorOf(
      db,
      `SELECT * FROM aws_s3.query_export_to_s3('SELECT 1 / (g - 300) FROM generate_series(1, 1000) g', ${uri('bad/runtime.txt')})`,
    );
    expect(runtime.code).toBe('22012');

    const twoStatements = await errorOf(
      db,
      `SELECT * FROM aws_s3.query_export_to_s3('SELECT 1; DROP TABLE items', ${uri('bad/two.txt')})`,
    );
    expect(twoStatements.code).toBe('42601');
    expect(await store.list('exports', 'bad/')).toEqual([]);
    expect((await db.query('SELECT count(*)::int AS n FROM items')).rows).toEqual([{ n: 100 }]);
  });

  it('reports arguments no form accepts as PostgreSQL would for the function called', async () => {
    const error = await errorOf(db, 'SELECT * FROM aws_s3.query_export_to_s3(1, 2)');
    expect(error.code).toBe('42883');
    expect(error.message).toBe('function aws_s3.query_export_to_s3(integer, integer) does not exist');
  });

  it('rejects unknown or malformed options with 22023, never running them', async () => {
    const cases = [
      "'format xml'",
      "'freeze true'",
      "'format csv, oids true'",
      "'format csv) TO STDOUT; DROP TABLE items; --'",
      "'header maybe'",
    ];
    for (const options of cases) {
      const error = await errorOf(
        db,
        `SELECT * FROM aws_s3.query_export_to_s3('SELECT 1', ${uri('bad/options.txt')}, ${options})`,
      );
      expect(error.code, options).toBe('22023');
    }
    expect(await store.exists('exports', 'bad/options.txt')).toBe(false);
    expect((await db.query('SELECT count(*)::int AS n FROM items')).rows).toEqual([{ n: 100 }]);
  });

  it('refuses another region than the cluster’s', async () => {
    const error = await errorOf(
      db,
      `SELECT * FROM aws_s3.query_export_to_s3('SELECT 1', ${uri('region.txt', 'eu-west-1')})`,
    );
    expect(error.code).toBe('22023');
    expect(error.message).toBe(
      "cannot export to region eu-west-1: the bucket must be in the cluster's region us-east-1",
    );
    expect(await store.exists('exports', 'region.txt')).toBe(false);
  });

  it('reports a bucket that does not exist', async () => {
    const error = await errorOf(
      db,
      "SELECT * FROM aws_s3.query_export_to_s3('SELECT 1', 'no-such-bucket', 'x.txt', 'us-east-1')",
    );
    expect(error.code).toBe('42704');
    expect(error.message).toBe('bucket "no-such-bucket" does not exist');
    // The server's own data directory: `pgsage bucket create` elsewhere would use ./.pgsage there.
    expect(error.hint).toBe(
      `Create it first, e.g. with: pgsage bucket create no-such-bucket --data-dir ${stack.pgsage.config.dataDir}`,
    );
    expect(readdirSync(localStoreRoot(stack.pgsage.config))).not.toContain('no-such-bucket');
  });

  it('carries out an export sent with the extended protocol, its arguments bound as parameters', async () => {
    const expected = await copyOutput('SELECT * FROM items WHERE id <= 7 ORDER BY id', '(FORMAT csv)');
    const sql = `SELECT * FROM aws_s3.query_export_to_s3($1, aws_commons.create_s3_uri($2, $3, 'us-east-1'), $4)`;
    const args = (key: string) => ['SELECT * FROM items WHERE id <= 7 ORDER BY id', 'exports', key, 'format csv'];
    const { rows } = await db.query(sql, args('bound.csv'));
    expect(rows).toEqual([{ rows_uploaded: '7', files_uploaded: '1', bytes_uploaded: String(expected.length) }]);
    expect(await text('bound.csv')).toBe(expected);
    // A named statement, bound again in later groups without its Parse; and one column, as SELECT f(…) names it.
    for (const key of ['named-1.csv', 'named-2.csv']) {
      const named = await db.query({ name: 'export_named', text: sql, values: args(key) });
      expect(named.rows[0].rows_uploaded).toBe('7');
      expect(await text(key)).toBe(expected);
    }
    const single = await db.query(
      "SELECT aws_s3.query_export_to_s3('SELECT 1', aws_commons.create_s3_uri('exports', $1, 'us-east-1'))",
      ['single.txt'],
    );
    expect(Object.keys(single.rows[0])).toEqual(['query_export_to_s3']);
    expect(await text('single.txt')).toBe('1\n');
    // postgres.js prepares in one round trip and binds in the next, with values in their types.
    expect(await exportedByPostgresJs({}, 'SELECT id FROM items WHERE id <= $$3$$::int', 'js.txt')).toBe('3');
    expect(await text('js.txt')).toBe('1\n2\n3\n');
    // BEGIN in the same group (pgjdbc with autocommit off): the block is opened, the export done in it.
    const client = await stack.connect();
    try {
      const session = new RawSession(client);
      const answer = await session.round([
        ...raw.statement('BEGIN'),
        raw.parse('', sql),
        raw.bind('', args('in-block.csv')),
        raw.describePortal(),
        raw.execute(),
        raw.sync(),
      ]);
      expect(answer.errors).toEqual([]);
      expect(answer.types).toBe('12C12TDCZ');
      expect(answer.results[1]).toEqual([['7', '1', String(expected.length)]]);
      expect(answer.statuses).toEqual(['T']);
      expect((await session.query('COMMIT')).errors).toEqual([]);
      // After prepareThreshold pgjdbc names both: BEGIN prepared in a group of its own, bound with the export.
      await session.round([raw.parse('S_1', 'BEGIN'), raw.parse('S_2', sql), raw.sync()]);
      const named = await session.round([
        raw.bind('S_1', []),
        raw.execute(),
        raw.bind('S_2', args('in-named-block.csv')),
        raw.describePortal(),
        raw.execute(),
        raw.sync(),
      ]);
      expect(named.errors).toEqual([]);
      expect(named.types).toBe('2C2TDCZ');
      expect(named.statuses).toEqual(['T']);
      expect((await session.query('COMMIT')).errors).toEqual([]);
    } finally {
      await client.end();
    }
    expect(await text('in-block.csv')).toBe(expected);
    expect(await text('in-named-block.csv')).toBe(expected);
    // Failing: the error PostgreSQL would give at the Execute, nothing written, and the session (or block) as after it.
    const missing = await errorOf(db, { text: sql, values: ['SELECT 1', 'no-such-bucket', 'x.csv', 'format csv'] });
    expect(missing.code).toBe('42704');
    expect((await db.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    await db.query('BEGIN');
    const bad = await errorOf(db, {
      text: sql,
      values: ['SELECT nosuch FROM items', 'exports', 'bad.csv', 'format csv'],
    });
    expect(bad.code).toBe('42703');
    expect((await errorOf(db, 'SELECT 1')).code).toBe('25P02');
    await db.query('ROLLBACK');
    expect(await store.list('exports', 'bad')).toEqual([]);
    // The gateway's own statement is gone after each.
    const left = await db.query("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name LIKE 'aws_ml%'");
    expect(left.rows).toEqual([{ n: 0 }]);
  });

  it('carries out the unnamed statement bound again, and keeps to what each statement is', async () => {
    const exportSql = 'SELECT rows_uploaded FROM aws_s3.query_export_to_s3($1, $2, $3)';
    const client = await stack.connect();
    try {
      const session = new RawSession(client);
      const run = (messages: Buffer[]) => session.round([...messages, raw.execute(), raw.sync()]);
      await run([raw.parse('', "SELECT $1::text || $2 || coalesce($3, '-') AS v"), raw.bind('', ['a', 'b', 'c'])]);
      let answer = await run([raw.parse('', exportSql), raw.bind('', ['SELECT 1', 'exports', 'unnamed-1.txt'])]);
      expect(answer.results[0]).toEqual([['1']]);
      // libpq's PQexecPrepared(""): the unnamed statement is the export, not the one before it.
      answer = await run([raw.bind('', ['SELECT 2', 'exports', 'unnamed-2.txt'])]);
      expect(answer.errors).toEqual([]);
      expect(answer.results[0]).toEqual([['1']]);
      expect(await text('unnamed-2.txt')).toBe('2\n');
      // Failing when bound again: PostgreSQL's error, at the Execute.
      answer = await run([raw.bind('', ['SELECT 3', 'no-such-bucket', 'unnamed-3.txt'])]);
      expect(answer.errors.map((e) => e.code)).toEqual(['42704']);
      expect(answer.types).toBe('2EZ');
      // Another statement under the name, then bound again: that statement.
      await run([raw.parse('', 'SELECT $1::int + 1 AS v'), raw.bind('', ['41'])]);
      answer = await run([raw.bind('', ['1'])]);
      expect(answer.results[0]).toEqual([['2']]);
    } finally {
      await client.end();
    }
    // postgres.js without prepared statements parses in a round trip of its own, ended by Flush.
    expect(await exportedByPostgresJs({ prepare: false }, 'SELECT 4', 'unprepared.txt')).toBe('1');
    expect(await text('unprepared.txt')).toBe('4\n');
  });

  it('leaves an export it cannot read as written to PostgreSQL (client_encoding other than UTF8)', async () => {
    const client = await stack.connect();
    try {
      const session = new RawSession(client);
      await session.query("SET client_encoding = 'LATIN1'");
      const sql = Buffer.from("SELECT * FROM aws_s3.query_export_to_s3('SELECT ''caf\xe9''', $1, $2)", 'latin1');
      const parse = Buffer.concat([Buffer.from('P\0\0\0\0\0'), sql, Buffer.from([0, 0, 0])]);
      parse.writeInt32BE(parse.length - 1, 1);
      const group = [parse, raw.bind('', ['exports', 'latin.txt']), raw.execute(), raw.sync()];
      const answer = await session.round(group);
      // PostgreSQL's own answer: its function's 0A000, whose hint LATIN1 cannot spell (22P05).
      const direct = new RawSession(await stack.direct());
      await direct.query("SET client_encoding = 'LATIN1'");
      expect(answer.errors.map((e) => e.code)).toEqual((await direct.round(group)).errors.map((e) => e.code));
      expect(answer.errors).toHaveLength(1);
    } finally {
      await client.end();
    }
    expect(await store.list('exports', 'latin')).toEqual([]);
  });

  it('fails with 0A000 where the gateway cannot carry out the export', async () => {
    const direct = await stack.direct();
    try {
      const error = await errorOf(direct, `SELECT * FROM aws_s3.query_export_to_s3('SELECT 1', ${uri('direct.txt')})`);
      expect(error.code).toBe('0A000');
      expect(error.message).toBe('aws_s3.query_export_to_s3 runs through the pgsage gateway');
    } finally {
      await direct.end();
    }
    // Bound with other statements executed in one pipeline, the export is not carried out: PostgreSQL's function says so.
    const pipelined = await rawPipeline([
      ...raw.statement('SELECT 1'),
      ...raw.statement('SELECT * FROM aws_s3.query_export_to_s3($1, $2, $3)', ['SELECT 1', 'exports', 'pipelined.txt']),
      raw.sync(),
    ]);
    expect(pipelined.errors.map((e) => e.code)).toEqual(['0A000']);
    const inDo = await errorOf(
      db,
      `DO $$ BEGIN PERFORM aws_s3.query_export_to_s3('SELECT 1', ${uri('do.txt')}); END $$`,
    );
    expect(inDo.code).toBe('0A000');
    const correlated = await errorOf(
      db,
      "SELECT (aws_s3.query_export_to_s3('SELECT ' || id, 'exports', 'corr-' || id)).* FROM items WHERE id < 3",
    );
    expect(correlated.code).toBe('0A000');
    expect(correlated.message).toBe(
      'the arguments of aws_s3.query_export_to_s3 cannot refer to columns of the statement that calls it',
    );
    expect(await store.list('exports', 'corr-')).toEqual([]);
    expect(readdirSync(path.join(localStoreRoot(stack.pgsage.config), 'exports'))).not.toContain('direct.txt');
  });
});
