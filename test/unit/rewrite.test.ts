import { beforeAll, describe, expect, it } from 'vitest';
import { loadParser } from '../../src/sql/parser.js';
import { rewriteStatementText } from '../../src/sql/rewrite.js';

beforeAll(loadParser);

const call = "aws_sagemaker.invoke_endpoint('ep', NULL, a, b)";
const packed = "aws_sagemaker.invoke_endpoint('ep', NULL, pg_catalog.json_build_array(a, b))";

describe('rewriteStatementText', () => {
  it('packs model inputs into json_build_array', () => {
    expect(rewriteStatementText("SELECT aws_sagemaker.invoke_endpoint('ep', NULL, a, b)::INT FROM t")).toBe(
      "SELECT aws_sagemaker.invoke_endpoint('ep', NULL, pg_catalog.json_build_array(a, b))::INT FROM t",
    );
  });

  it('handles nested calls, arrays and casts inside the arguments', () => {
    expect(
      rewriteStatementText(
        "SELECT aws_sagemaker.invoke_endpoint('ep', 10, COALESCE(x, 0.0), ARRAY[1,2][1:2], f(g(y)))",
      ),
    ).toBe(
      "SELECT aws_sagemaker.invoke_endpoint('ep', 10, pg_catalog.json_build_array(COALESCE(x, 0.0), ARRAY[1,2][1:2], f(g(y))))",
    );
  });

  it('rewrites inside dollar-quoted function bodies and keeps the rest byte for byte', () => {
    const sql = `CREATE FUNCTION classify_event (IN arg1 INT, IN arg2 DATE, OUT category INT)
AS $$
    SELECT aws_sagemaker.invoke_endpoint (
        'sagemaker_model_endpoint_name', NULL,
        arg1, arg2                        -- model inputs are separate arguments
        )::INT                            -- cast the output to INT
$$ LANGUAGE SQL PARALLEL SAFE COST 5000;`;
    const out = rewriteStatementText(sql);
    expect(out).toBe(
      sql
        .replace('arg1, arg2  ', 'pg_catalog.json_build_array(arg1, arg2  ')
        .replace('        )::INT', '        ))::INT'),
    );
  });

  it('rewrites single-quoted function bodies of CREATE FUNCTION', () => {
    expect(
      rewriteStatementText(
        "CREATE FUNCTION f(a int) RETURNS varchar AS 'SELECT aws_sagemaker.invoke_endpoint(''e'', NULL, a)' LANGUAGE sql",
      ),
    ).toBe(
      "CREATE FUNCTION f(a int) RETURNS varchar AS 'SELECT aws_sagemaker.invoke_endpoint(''e'', NULL, pg_catalog.json_build_array(a))' LANGUAGE sql",
    );
  });

  it('treats only function and DO bodies as code, statement by statement', () => {
    const data = "SELECT $d$see aws_sagemaker.invoke_endpoint('x', NULL, a, b)$d$";
    expect(rewriteStatementText(data)).toBe(data);
    const ctas = "CREATE TABLE docs AS SELECT 'aws_sagemaker.invoke_endpoint(''x'', NULL, a)'::text AS v";
    expect(rewriteStatementText(ctas)).toBe(ctas);
    const mixed = `${data}; CREATE FUNCTION f(a int) RETURNS varchar LANGUAGE sql AS $$ SELECT aws_sagemaker.invoke_endpoint('e', NULL, a) $$`;
    expect(rewriteStatementText(mixed)).toBe(
      mixed.replace('NULL, a) $$', () => 'NULL, pg_catalog.json_build_array(a)) $$'),
    );
    const block = "DO $$ BEGIN PERFORM aws_sagemaker.invoke_endpoint('e', NULL, 1); END $$";
    expect(rewriteStatementText(block)).toBe(block.replace('NULL, 1)', 'NULL, pg_catalog.json_build_array(1))'));
    const language = "DO LANGUAGE plpgsql $$ BEGIN PERFORM aws_sagemaker.invoke_endpoint('e', NULL, 1); END $$";
    expect(rewriteStatementText(language)).toBe(language.replace('NULL, 1)', 'NULL, pg_catalog.json_build_array(1))'));
    const defaults =
      "CREATE FUNCTION g(a text DEFAULT 'aws_sagemaker.invoke_endpoint(1,2,3)') RETURNS int LANGUAGE sql AS 'SELECT 1'";
    expect(rewriteStatementText(defaults)).toBe(defaults);
  });

  it('leaves ordinary string data and comments alone', () => {
    const sql = "INSERT INTO log VALUES ('aws_sagemaker.invoke_endpoint(''e'', NULL, a)') -- invoke_endpoint(1,2,3)";
    expect(rewriteStatementText(sql)).toBe(sql);
  });

  it('is idempotent for already packed calls, qualified or not', () => {
    for (const sql of [
      "SELECT aws_sagemaker.invoke_endpoint('ep', NULL, pg_catalog.json_build_array(a, b))",
      "SELECT aws_sagemaker.invoke_endpoint('ep', NULL, json_build_array(a, b))",
      "SELECT aws_sagemaker.invoke_endpoint('ep', NULL, pg_catalog . json_build_array ())",
    ]) {
      expect(rewriteStatementText(sql)).toBe(sql);
    }
  });

  it('supports VARIADIC arrays and calls with no model input', () => {
    expect(rewriteStatementText("SELECT aws_sagemaker.invoke_endpoint('ep', NULL, VARIADIC arr)")).toBe(
      "SELECT aws_sagemaker.invoke_endpoint('ep', NULL, pg_catalog.json_build_array(VARIADIC arr))",
    );
    expect(rewriteStatementText("SELECT aws_sagemaker.invoke_endpoint('ep', NULL)")).toBe(
      "SELECT aws_sagemaker.invoke_endpoint('ep', NULL, pg_catalog.json_build_array())",
    );
  });

  it('keeps byte offsets right after non-ASCII text', () => {
    expect(rewriteStatementText("SELECT 'ünïcödé ☃', aws_sagemaker.invoke_endpoint('ép', NULL, 'naïve', 2)")).toBe(
      "SELECT 'ünïcödé ☃', aws_sagemaker.invoke_endpoint('ép', NULL, pg_catalog.json_build_array('naïve', 2))",
    );
  });

  it('maps apg_enable_function_migration onto the gateway setting', () => {
    // (A boolean value as PostgreSQL shows one: `on` or `off`.)
    for (const [given, written] of [
      ['SET apg_enable_function_migration = false', 'SET aws_ml.enable_function_migration = off'],
      ["SET LOCAL apg_enable_function_migration TO 'Y';", 'SET LOCAL aws_ml.enable_function_migration TO on;'],
      ['SET apg_enable_function_migration = "FALSE"', 'SET aws_ml.enable_function_migration = off'],
      [
        'CREATE FUNCTION f() RETURNS int SET apg_enable_function_migration = false AS $$ SELECT 1 $$',
        'CREATE FUNCTION f() RETURNS int SET aws_ml.enable_function_migration = off AS $$ SELECT 1 $$',
      ],
      // Inside a function's or DO block's body too.
      [
        "DO $$ BEGIN PERFORM set_config('apg_enable_function_migration', 'no', false); END $$",
        "DO $$ BEGIN PERFORM set_config('aws_ml.enable_function_migration', 'off', false); END $$",
      ],
    ]) {
      expect(rewriteStatementText(given)).toBe(written);
    }
    for (const kept of ['= DEFAULT', "= 'maybe'", '= 0, 1', "= E'off'"]) {
      expect(rewriteStatementText(`SET apg_enable_function_migration ${kept}`)).toBe(
        `SET aws_ml.enable_function_migration ${kept}`,
      );
    }
    expect(rewriteStatementText('RESET apg_enable_function_migration')).toBe('RESET aws_ml.enable_function_migration');
    // Named as the functions that read and set a setting take it; other text is left alone.
    expect(
      rewriteStatementText(
        "SELECT current_setting('apg_enable_function_migration'), pg_catalog.set_config('APG_enable_function_migration', 'false', false), 'apg_enable_function_migration', lower('apg_enable_function_migration'), set_config('apg_enable_function_migration', 'banana', true)",
      ),
    ).toBe(
      "SELECT current_setting('aws_ml.enable_function_migration'), pg_catalog.set_config('aws_ml.enable_function_migration', 'off', false), 'apg_enable_function_migration', lower('apg_enable_function_migration'), set_config('aws_ml.enable_function_migration', 'banana', true)",
    );
  });

  it('routes casts to non-builtin types through cast_output, leaves scalar casts alone', () => {
    expect(rewriteStatementText("SELECT (aws_sagemaker.invoke_endpoint('e', NULL, a, b))::company_forecasts")).toBe(
      "SELECT aws_sagemaker.cast_output((aws_sagemaker.invoke_endpoint('e', NULL, pg_catalog.json_build_array(a, b))), NULL::company_forecasts)",
    );
    expect(rewriteStatementText("SELECT aws_sagemaker.invoke_endpoint('e', NULL, a)::public.pair FROM t")).toBe(
      "SELECT aws_sagemaker.cast_output(aws_sagemaker.invoke_endpoint('e', NULL, pg_catalog.json_build_array(a)), NULL::public.pair) FROM t",
    );
    expect(
      rewriteStatementText(
        "SELECT aws_sagemaker.invoke_endpoint('e', NULL, a)::INT, aws_sagemaker.invoke_endpoint('e', NULL, a)::float8",
      ),
    ).toBe(
      "SELECT aws_sagemaker.invoke_endpoint('e', NULL, pg_catalog.json_build_array(a))::INT, aws_sagemaker.invoke_endpoint('e', NULL, pg_catalog.json_build_array(a))::float8",
    );
  });

  it('does not touch functions of other schemas with the same name', () => {
    const sql = "SELECT myschema.invoke_endpoint('ep', NULL, a, b)";
    expect(rewriteStatementText(sql)).toBe(sql);
  });

  it('leaves the function named by its signature alone: GRANT, REVOKE, ALTER, DROP, COMMENT', () => {
    const signature = 'aws_sagemaker.invoke_endpoint(varchar, int, json)';
    for (const sql of [
      `GRANT EXECUTE ON FUNCTION ${signature} TO analyst`,
      `REVOKE ALL ON FUNCTION ${signature} FROM PUBLIC`,
      `ALTER FUNCTION ${signature} SET work_mem = '64MB'`,
      `DROP FUNCTION IF EXISTS other(int), ${signature}`,
      `COMMENT ON FUNCTION ${signature} IS 'scores'`,
      `ALTER EXTENSION aws_ml DROP FUNCTION ${signature}`,
      `DO $$ BEGIN REVOKE EXECUTE ON FUNCTION ${signature} FROM PUBLIC; END $$`,
      `CREATE CAST (json AS text) WITH FUNCTION ${signature}`,
    ]) {
      expect(rewriteStatementText(sql), sql).toBe(sql);
    }
    // A call in the same string is still packed; so are calls in ALTER TABLE (a default, a CHECK).
    expect(rewriteStatementText(`REVOKE ALL ON FUNCTION ${signature} FROM PUBLIC; SELECT ${call}`)).toBe(
      `REVOKE ALL ON FUNCTION ${signature} FROM PUBLIC; SELECT ${packed}`,
    );
    expect(rewriteStatementText(`ALTER TABLE t ADD COLUMN s text DEFAULT ${call}`)).toBe(
      `ALTER TABLE t ADD COLUMN s text DEFAULT ${packed}`,
    );
    for (const [sql, expected] of [
      [`SELECT f(x), ${call}`, `SELECT f(x), ${packed}`],
      [`CREATE POLICY p ON t USING (${call} > '0')`, `CREATE POLICY p ON t USING (${packed} > '0')`],
      [`SELECT g(${call})`, `SELECT g(${packed})`],
      [`SELECT id AS function, ${call}`, `SELECT id AS function, ${packed}`],
      [`SELECT t.function, x procedure, ${call}`, `SELECT t.function, x procedure, ${packed}`],
      [`SELECT t.drop function, ${call}`, `SELECT t.drop function, ${packed}`],
      [`SELECT replace function, ${call}`, `SELECT replace function, ${packed}`],
      [
        "SELECT aws_sagemaker /* c */ .invoke_endpoint /* d */ ('ep', NULL, a, b)",
        "SELECT aws_sagemaker /* c */ .invoke_endpoint /* d */ ('ep', NULL, pg_catalog.json_build_array(a, b))",
      ],
      [
        "SELECT myschema./* c */invoke_endpoint('ep', NULL, a)",
        "SELECT myschema./* c */invoke_endpoint('ep', NULL, a)",
      ],
    ]) {
      expect(rewriteStatementText(sql), sql).toBe(expected);
    }
  });
});
