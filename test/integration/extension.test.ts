import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type TestStack } from '../support/stack.js';

let stack: TestStack;
let admin: pg.Client;

beforeAll(async () => {
  stack = await startStack();
  admin = await stack.connect();
  await admin.query('CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE');
  await admin.query(`
    DO $$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ext_tenant') THEN
        CREATE ROLE ext_tenant LOGIN PASSWORD 'tenant';
      END IF;
    END $$`);
  await admin.query(`GRANT CONNECT ON DATABASE ${stack.database} TO ext_tenant`);
});

afterAll(async () => {
  await stack?.stop();
});

async function asTenant(): Promise<pg.Client> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: stack.pgsage.gateway.port,
    user: 'ext_tenant',
    password: 'tenant',
    database: stack.database,
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}

describe('CREATE EXTENSION aws_ml', () => {
  it("says to create the extension where a database has not, on either protocol, with PostgreSQL's error", async () => {
    await admin.query('DROP DATABASE IF EXISTS ext_missing');
    await admin.query('CREATE DATABASE ext_missing');
    const db = await stack.connect('ext_missing');
    try {
      await db.query("CREATE TABLE docs AS SELECT 'a fine day' AS doc");
      const failures = [];
      for (const query of [
        { text: "SELECT (aws_comprehend.detect_sentiment('I like it!', 'en')).sentiment" },
        { text: "SELECT (aws_comprehend.detect_sentiment(doc, 'en')).sentiment FROM docs" },
        {
          text: "SELECT (aws_comprehend.detect_sentiment(doc, 'en')).sentiment FROM docs WHERE doc <> $1",
          values: ['x'],
        },
        { text: "SELECT aws_sagemaker.invoke_endpoint('churn', NULL, 1, 2)" },
        { text: 'SELECT * FROM aws_ml.batch_statistics' },
        { text: "SELECT aws_s3.query_export_to_s3('SELECT 1', aws_commons.create_s3_uri('b', 'k', 'us-east-1'))" },
        // (Naming no ML function nor the export, it passed without being looked at, and without the hint.)
        { text: "SELECT aws_commons.create_s3_uri('b', 'k', 'us-east-1')" },
      ]) {
        const error = await db.query(query).catch((e) => e);
        failures.push({ code: error.code, message: error.message, hint: error.hint });
      }
      const hint = (extension: string) => `Run CREATE EXTENSION ${extension} CASCADE in this database.`;
      expect(failures).toEqual([
        { code: '3F000', message: 'schema "aws_comprehend" does not exist', hint: hint('aws_ml') },
        { code: '3F000', message: 'schema "aws_comprehend" does not exist', hint: hint('aws_ml') },
        { code: '3F000', message: 'schema "aws_comprehend" does not exist', hint: hint('aws_ml') },
        { code: '3F000', message: 'schema "aws_sagemaker" does not exist', hint: hint('aws_ml') },
        // (PostgreSQL says the same where the schema is there, of a mistyped name: no hint.)
        { code: '42P01', message: 'relation "aws_ml.batch_statistics" does not exist', hint: undefined },
        { code: '3F000', message: 'schema "aws_commons" does not exist', hint: hint('aws_s3') },
        { code: '3F000', message: 'schema "aws_commons" does not exist', hint: hint('aws_s3') },
      ]);
      // Other schemas' errors are PostgreSQL's own, and so is a mistyped name where the extension is there.
      expect(await db.query('SELECT nowhere.f()').catch((e) => e)).toMatchObject({ code: '3F000', hint: undefined });
      const typo = await admin
        .query("SELECT (aws_comprehend.detect_sentiment('x', 'en')).sentiment FROM aws_ml.nosuch")
        .catch((e) => e);
      expect(typo).toMatchObject({ code: '42P01', hint: undefined });
    } finally {
      await db.end();
      await admin.query('DROP DATABASE ext_missing WITH (FORCE)');
    }
  });

  it('creates the schemas, the aws_ml role and functions with Aurora signatures', async () => {
    const schemas = await admin.query(
      "SELECT nspname, pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname LIKE 'aws_%' ORDER BY 1",
    );
    expect(schemas.rows).toEqual([
      { nspname: 'aws_comprehend', owner: 'postgres' },
      { nspname: 'aws_ml', owner: 'postgres' },
      { nspname: 'aws_sagemaker', owner: 'postgres' },
    ]);
    const functions = await admin.query(`
      SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_arguments(p.oid) || ')' AS signature
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname IN ('aws_comprehend', 'aws_sagemaker') ORDER BY 1`);
    expect(functions.rows.map((r) => r.signature)).toEqual([
      'aws_comprehend.detect_sentiment(input_text character varying, language_code character varying, max_rows_per_batch integer DEFAULT NULL::integer, OUT sentiment character varying, OUT confidence real)',
      'aws_comprehend.detect_sentiment(unused character varying, input_text character varying, language_code character varying, max_rows_per_batch integer DEFAULT NULL::integer, OUT sentiment character varying, OUT confidence real)',
      'aws_sagemaker.cast_output(model_output character varying, target anyelement)',
      'aws_sagemaker.invoke_endpoint(endpoint_name character varying, max_rows_per_batch integer, model_input json, OUT model_output character varying)',
    ]);
    const member = await admin.query("SELECT pg_has_role(current_user, 'aws_ml', 'MEMBER') AS member");
    expect(member.rows[0].member).toBe(true);
    // The ML functions keep out of parallel queries (see aws_ml--1.1.sql); cast_output is safe.
    const parallel = await admin.query(
      "SELECT proname, proparallel FROM pg_proc WHERE pronamespace IN ('aws_comprehend'::regnamespace, 'aws_sagemaker'::regnamespace) ORDER BY 1, 2",
    );
    expect(parallel.rows).toEqual([
      { proname: 'cast_output', proparallel: 's' },
      { proname: 'detect_sentiment', proparallel: 'u' },
      { proname: 'detect_sentiment', proparallel: 'u' },
      { proname: 'invoke_endpoint', proparallel: 'u' },
    ]);
  });

  it('resolves both detect_sentiment call forms with literals and columns', async () => {
    const resolved = await admin.query(`
      SELECT 'aws_comprehend.detect_sentiment(varchar, varchar, int)'::regprocedure::oid
               = (SELECT p.oid FROM pg_proc p WHERE p.proname = 'detect_sentiment' AND p.pronargs = 3) AS two_form,
             'aws_comprehend.detect_sentiment(varchar, varchar, varchar, int)'::regprocedure::oid
               = (SELECT p.oid FROM pg_proc p WHERE p.proname = 'detect_sentiment' AND p.pronargs = 4) AS three_form`);
    expect(resolved.rows[0]).toEqual({ two_form: true, three_form: true });
    // Blank input answers NULL without calling any service, through either form.
    const blank = await admin.query(`
      SELECT (aws_comprehend.detect_sentiment('  ', 'en')).sentiment AS a,
             (aws_comprehend.detect_sentiment(null, '', 'en')).sentiment AS b,
             (aws_comprehend.detect_sentiment(doc, 'en')).confidence AS c
        FROM (VALUES (NULL::text)) v(doc)`);
    expect(blank.rows[0]).toEqual({ a: null, b: null, c: null });
  });

  it('revokes EXECUTE from PUBLIC; GRANT and REVOKE USAGE control tenants', async () => {
    const tenant = await asTenant();
    await expect(tenant.query("SELECT aws_comprehend.detect_sentiment('', 'en')")).rejects.toMatchObject({
      code: '42501',
      message: 'permission denied for function detect_sentiment',
    });
    await admin.query('GRANT EXECUTE ON FUNCTION aws_comprehend.detect_sentiment(varchar, varchar, int) TO ext_tenant');
    const granted = await tenant.query("SELECT (aws_comprehend.detect_sentiment('', 'en')).sentiment AS s");
    expect(granted.rows[0].s).toBeNull();
    await admin.query('REVOKE USAGE ON SCHEMA aws_comprehend FROM PUBLIC');
    await expect(tenant.query("SELECT aws_comprehend.detect_sentiment('', 'en')")).rejects.toMatchObject({
      code: '42501',
      message: 'permission denied for schema aws_comprehend',
    });
    await admin.query('GRANT USAGE ON SCHEMA aws_comprehend TO PUBLIC');
  });

  it("does not let a member of aws_ml add functions to the service schemas, where others' calls would find them", async () => {
    // An overload of detect_sentiment taking text would be chosen over the extension's for calls with text
    // arguments, and run as whoever called it.
    await admin.query('GRANT aws_ml TO ext_tenant');
    const tenant = await asTenant();
    try {
      for (const schema of ['aws_comprehend', 'aws_sagemaker']) {
        await expect(
          tenant.query(`CREATE FUNCTION ${schema}.detect_sentiment(input_text text, language_code text,
            OUT sentiment varchar, OUT confidence real) LANGUAGE sql AS $$ SELECT 'POSITIVE'::varchar, 1::real $$`),
        ).rejects.toMatchObject({ code: '42501', message: `permission denied for schema ${schema}` });
      }
    } finally {
      await tenant.end();
      await admin.query('REVOKE aws_ml FROM ext_tenant');
    }
  });

  it('keeps the bridge secret away from unprivileged roles', async () => {
    const tenant = await asTenant();
    await expect(tenant.query('SELECT * FROM aws_ml.bridge_settings')).rejects.toMatchObject({ code: '42501' });
    await expect(tenant.query('SELECT aws_ml.bridge_conninfo()')).rejects.toMatchObject({ code: '42501' });
    await expect(tenant.query("SELECT aws_ml.bridge_call('{}')")).rejects.toMatchObject({ code: '42501' });
    await expect(tenant.query("SELECT pg_read_file('pgsage_bridge.conninfo')")).rejects.toMatchObject({
      code: '42501',
    });
    const stored = await admin.query('SELECT conninfo FROM aws_ml.bridge_settings');
    expect(stored.rows[0].conninfo).toContain(`port=${stack.pgsage.bridge.port}`);
  });

  it('refuses bridge clients without the secret and keeps serving the database', async () => {
    const intruder = new pg.Client({
      host: '127.0.0.1',
      port: stack.pgsage.bridge.port,
      user: 'aws_ml_bridge',
      password: 'guess',
      database: 'aws_ml_bridge',
    });
    intruder.on('error', () => {});
    await expect(intruder.connect()).rejects.toMatchObject({ code: '28P01' });
    const wrongUser = new pg.Client({
      host: '127.0.0.1',
      port: stack.pgsage.bridge.port,
      user: 'postgres',
      password: 'postgres',
    });
    wrongUser.on('error', () => {});
    await expect(wrongUser.connect()).rejects.toMatchObject({ code: '28000' });
    // The database itself still reaches the bridge (the request fails further on: no such endpoint).
    await expect(
      admin.query("SELECT aws_sagemaker.invoke_endpoint('no-such-endpoint', NULL, 1)"),
    ).rejects.toMatchObject({ message: expect.stringMatching(/no-such-endpoint/) });
  });

  it('does not let a user plant a view the definer functions would read as batch results', async () => {
    const tenant = await asTenant();
    await admin.query('GRANT EXECUTE ON FUNCTION aws_comprehend.detect_sentiment(varchar, varchar, int) TO ext_tenant');
    await tenant.query(
      "CREATE TEMP VIEW aws_ml_results AS SELECT 1 AS stmt, 'sentiment'::text AS kind, 'en'::text AS target, 'x'::text AS key, 'PLANTED'::text AS out_text, 1::real AS out_real",
    );
    await tenant.query("SELECT set_config('aws_ml.batch_statement', '1', false)");
    await tenant.query(
      "SELECT set_config('aws_ml.batch_results', pg_backend_pid()::text || ':' || 'pg_temp.aws_ml_results'::regclass::oid::text, false)",
    );
    // The planted view is not trusted: the call goes to the service, never to the view.
    const outcome = await tenant.query("SELECT (aws_comprehend.detect_sentiment('x', 'en')).sentiment AS s").then(
      (result) => result.rows[0].s as string,
      () => 'service call',
    );
    expect(outcome).not.toBe('PLANTED');
  });
});

describe('ALTER EXTENSION aws_ml UPDATE', () => {
  /** A client of another database, through the gateway. */
  async function clientOf(database: string): Promise<pg.Client> {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: stack.pgsage.gateway.port,
      user: 'postgres',
      password: 'postgres',
      database,
    });
    await client.connect();
    return client;
  }
  /** The extension's functions as PostgreSQL would write them again, with their privileges, and its event trigger. */
  async function extensionShape(client: pg.Client) {
    const functions =
      await client.query(`SELECT p.oid::regprocedure::text AS name, pg_get_functiondef(p.oid) AS definition,
        p.proacl::text AS acl
      FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
      JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'aws_ml' ORDER BY 1`);
    const triggers = await client.query('SELECT evtname, evtevent, evttags FROM pg_event_trigger ORDER BY 1');
    const version = await client.query("SELECT extversion FROM pg_extension WHERE extname = 'aws_ml'");
    const schemas = await client.query(
      "SELECT nspname, pg_get_userbyid(nspowner) AS owner, nspacl::text AS acl FROM pg_namespace WHERE nspname LIKE 'aws_%' ORDER BY 1",
    );
    return { functions: functions.rows, triggers: triggers.rows, version: version.rows, schemas: schemas.rows };
  }

  it("keeps a session's own table named like batch mode's in a database still at 1.0", async () => {
    await admin.query('CREATE DATABASE ext_still_old');
    const old = await clientOf('ext_still_old');
    try {
      await old.query("CREATE EXTENSION aws_ml VERSION '1.0' CASCADE");
      await old.query(`CREATE TABLE reviews (id int, body text);
        INSERT INTO reviews VALUES (1, 'I love it'), (2, 'I hate it'), (3, 'fine')`);
      const sql = "SELECT id, (aws_comprehend.detect_sentiment(body, 'en')).sentiment FROM reviews ORDER BY id";
      await old.query('SET apg_enable_function_migration = off');
      const expected = (await old.query(sql)).rows;
      await old.query('RESET apg_enable_function_migration');
      // A role other than the extension's owner: 1.0's begin_batch would drop its table. The gateway does not
      // call it then, and answers per row.
      await old.query(`GRANT aws_ml TO ext_tenant; GRANT SELECT ON reviews TO ext_tenant; SET ROLE ext_tenant;
        CREATE TEMP TABLE aws_ml_results (a int); INSERT INTO aws_ml_results VALUES (7)`);
      expect((await old.query(sql)).rows).toEqual(expected);
      expect((await old.query({ text: sql, values: [] })).rows).toEqual(expected);
      expect((await old.query('SELECT a FROM pg_temp.aws_ml_results')).rows).toEqual([{ a: 7 }]);
    } finally {
      await old.end();
    }
  });

  it("keeps an administrator's grants and revokes on the extension's functions", async () => {
    await admin.query('CREATE DATABASE ext_granted');
    const old = await clientOf('ext_granted');
    try {
      await old.query("CREATE EXTENSION aws_ml VERSION '1.0' CASCADE");
      await old.query(`GRANT EXECUTE ON FUNCTION aws_sagemaker.invoke_endpoint(varchar, int, json) TO PUBLIC;
        REVOKE EXECUTE ON FUNCTION aws_ml.view_definition(oid) FROM PUBLIC;
        CREATE FUNCTION aws_sagemaker.my_helper() RETURNS int LANGUAGE sql AS 'SELECT 1';
        ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
        -- (A function 1.1 has and this 1.0 lacks: the update makes it, under those default privileges.)
        ALTER EXTENSION aws_ml DROP FUNCTION aws_ml.analyze_batch();
        DROP FUNCTION aws_ml.analyze_batch()`);
      const publicMay = async (fn: string) =>
        (await old.query(`SELECT has_function_privilege('public', $1, 'EXECUTE') AS may`, [fn])).rows[0].may;
      await old.query('ALTER EXTENSION aws_ml UPDATE');
      expect(await publicMay('aws_sagemaker.invoke_endpoint(varchar, int, json)')).toBe(true);
      expect(await publicMay('aws_ml.view_definition(oid)')).toBe(false);
      expect(await publicMay('aws_ml.begin_batch(int, boolean)')).toBe(true);
      expect(await publicMay('aws_comprehend.detect_sentiment(varchar, varchar, int)')).toBe(false);
      expect(await publicMay('aws_ml.analyze_batch()')).toBe(true);
      expect(await publicMay('aws_sagemaker.my_helper()')).toBe(true);
    } finally {
      await old.end();
    }
  });

  it('brings a database made with 1.0, 1.1, 1.2 or 1.3 to what CREATE EXTENSION makes now, keeping what uses it', async () => {
    await admin.query('CREATE DATABASE ext_from_new');
    const fresh = await clientOf('ext_from_new');
    try {
      await fresh.query('CREATE EXTENSION aws_ml CASCADE');
      const made = await extensionShape(fresh);
      expect(made.version).toEqual([{ extversion: '1.4' }]);
      for (const version of ['1.0', '1.1', '1.2', '1.3']) {
        const database = `ext_from_${version.replace('.', '_')}`;
        await admin.query(`CREATE DATABASE ${database}`);
        const old = await clientOf(database);
        try {
          await old.query(`CREATE EXTENSION aws_ml VERSION '${version}' CASCADE`);
          await old.query(`CREATE FUNCTION mood(t text) RETURNS varchar LANGUAGE sql
              AS $$ SELECT (aws_comprehend.detect_sentiment(t, 'en')).sentiment $$;
            CREATE VIEW moods AS SELECT (aws_comprehend.detect_sentiment('I love it', 'en')).sentiment AS m`);
          expect(await extensionShape(old), version).not.toEqual(made);
          await old.query('ALTER EXTENSION aws_ml UPDATE');
          expect(await extensionShape(old), version).toEqual(made);
          expect((await old.query('SELECT m FROM moods')).rows).toEqual([{ m: 'POSITIVE' }]);
          expect((await old.query("SELECT mood('I hate it') AS m")).rows).toEqual([{ m: 'NEGATIVE' }]);
        } finally {
          await old.end();
        }
      }
    } finally {
      await fresh.end();
    }
  });
});
