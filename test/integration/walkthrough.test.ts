/**
 * The SQL of AWS's guide "Using Machine Learning (ML) with Aurora PostgreSQL"
 * (../shared/seed), run unchanged through the gateway, in its order.
 * Where the guide itself cannot run as printed, the test says why.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaryLogisticFixture, deployEndpoint } from '../support/endpoints.js';
import { startStack, type TestStack } from '../support/stack.js';

let stack: TestStack;
let db: pg.Client;
const explainText = (rows: Record<string, string>[]) => rows.map((r) => r['QUERY PLAN']).join('\n');

beforeAll(async () => {
  stack = await startStack();
  db = await stack.connect();
});

afterAll(async () => {
  await stack?.stop();
});

describe("AWS's Aurora ML guide, unchanged", () => {
  it('installs aws_ml and answers the verification query', async () => {
    await db.query('CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE;');
    const { rows } = await db.query("SELECT sentiment FROM aws_comprehend.detect_sentiment(null, 'I like it!', 'en');");
    expect(rows).toEqual([{ sentiment: 'POSITIVE' }]);
  });

  it('averages sentiment with a confidence filter (batch mode)', async () => {
    await db.query('CREATE TABLE myTable (id serial, document text)');
    await db.query(`INSERT INTO myTable (document) VALUES
      ('I love this product, it works perfectly and I would buy it again.'),
      ('Terrible experience. The device broke after two days and support never answered.'),
      ('Absolutely wonderful service, friendly staff and fast delivery.'),
      ('This is the worst purchase I have ever made, a complete waste of money.'),
      ('The package arrived on Tuesday.'),
      (NULL)`);
    const { rows } = await db.query(`SELECT AVG(CASE s.sentiment 
    WHEN 'POSITIVE' then 1 
    WHEN 'NEGATIVE' then -1 
    ELSE 0 END) as avg_sentiment, COUNT(*) AS total
FROM myTable, aws_comprehend.detect_sentiment (myTable.document, 'en') s
WHERE s.confidence >= 0.80;`);
    expect(Number(rows[0].total)).toBeGreaterThanOrEqual(2);
    expect(Number(rows[0].total)).toBeLessThanOrEqual(5);
    const explain =
      await db.query(`EXPLAIN ANALYZE SELECT AVG(CASE s.sentiment WHEN 'POSITIVE' then 1 WHEN 'NEGATIVE' then -1 ELSE 0 END)
      FROM myTable, aws_comprehend.detect_sentiment (myTable.document, 'en') s WHERE s.confidence >= 0.80`);
    expect(explainText(explain.rows)).toMatch(
      /Batch Processing: num batches=1 avg\/min\/max batch size=5\.000\/5\.000\/5\.000/,
    );
  });

  it('materializes French sentiment with UPDATE', async () => {
    // The guide's WHERE clause names clinician_notes.french_nodes (sic); a generated column of that
    // name lets the statement run exactly as printed.
    await db.query(`CREATE TABLE clinician_notes (id serial, french_notes text,
      french_nodes text GENERATED ALWAYS AS (french_notes) STORED, sentiment varchar, confidence real)`);
    await db.query(`INSERT INTO clinician_notes (french_notes) VALUES
      ('Le patient se sent beaucoup mieux, excellente évolution, très content du traitement.'),
      ('Douleur terrible, le patient est très mécontent et la situation est mauvaise.'),
      ('   '), (NULL)`);
    await db.query(`UPDATE clinician_notes
SET sentiment = (aws_comprehend.detect_sentiment (french_notes, 'fr')).sentiment,
    confidence = (aws_comprehend.detect_sentiment (french_notes, 'fr')).confidence
WHERE
    clinician_notes.french_notes IS NOT NULL AND
    LENGTH(TRIM(clinician_notes.french_nodes)) > 0 AND
    clinician_notes.sentiment IS NULL;`);
    const { rows } = await db.query('SELECT id, sentiment, confidence FROM clinician_notes ORDER BY id');
    expect(rows[0].sentiment).toBe('POSITIVE');
    expect(rows[1].sentiment).toBe('NEGATIVE');
    expect(rows[0].confidence).toBeGreaterThan(0.5);
    expect(rows[2].sentiment).toBeNull();
    expect(rows[3].sentiment).toBeNull();
  });

  it('creates the user-defined functions of the SageMaker section as printed', async () => {
    for (const sql of [
      `CREATE FUNCTION classify_event (IN arg1 INT, IN arg2 DATE, OUT category INT)
AS $$
    SELECT aws_sagemaker.invoke_endpoint (
        'sagemaker_model_endpoint_name', NULL,
        arg1, arg2                        -- model inputs are separate arguments
        )::INT                            -- cast the output to INT
$$ LANGUAGE SQL PARALLEL SAFE COST 5000;`,
      `CREATE FUNCTION regression_model (params REAL[], OUT estimate REAL)
AS $$
    SELECT aws_sagemaker.invoke_endpoint (
        'sagemaker_model_endpoint_name', NULL,
        params                            -- model input parameters as an array
        )::REAL                           -- cast output to REAL
$$ LANGUAGE SQL PARALLEL SAFE COST 5000;`,
      `CREATE FUNCTION classify_event (
    IN event_type INT, IN event_day DATE, IN amount REAL, -- model inputs
    max_rows_per_batch INT DEFAULT NULL,  -- optional batch size limit
    OUT category INT)                     -- model output
AS $$
    SELECT aws_sagemaker.invoke_endpoint (
        'sagemaker_model_endpoint_name', max_rows_per_batch,
        event_type, event_day, COALESCE(amount, 0.0)
        )::INT              -- casts output to type INT
$$ LANGUAGE SQL PARALLEL SAFE COST 5000;`,
      `CREATE TYPE company_forecasts AS ( 
    six_month_estimated_return real,
    one_year_bankruptcy_probability float);`,
      `CREATE FUNCTION analyze_company (
    IN free_cash_flow NUMERIC(18, 6),
    IN debt NUMERIC(18,6),
    IN max_rows_per_batch INT DEFAULT NULL,
    OUT prediction company_forecasts) 
AS $$
    SELECT (aws_sagemaker.invoke_endpoint(
              'endpt_name', max_rows_per_batch,
              free_cash_flow, debt))::company_forecasts;                                                                                                                  
$$ LANGUAGE SQL PARALLEL SAFE COST 5000;`,
    ]) {
      await db.query(sql);
    }
    const { rows } = await db.query("SELECT proname FROM pg_proc WHERE prosrc LIKE '%invoke_endpoint%' ORDER BY 1");
    const names = rows.map((r) => r.proname);
    for (const name of ['analyze_company', 'classify_event', 'regression_model']) expect(names).toContain(name);
    expect(names.filter((n) => n === 'classify_event')).toHaveLength(2);
  });

  it('calls a model through a wrapper, in batch mode and with migration off, and monitors it', async () => {
    // The guide's endpoint names are placeholders SageMaker would refuse (underscores); a deployable
    // name and a wrapper written the same way stand in for them.
    const fixture = binaryLogisticFixture();
    await deployEndpoint(stack.pgsage.edge.url, 'regression-model', fixture.model);
    await db.query(`CREATE FUNCTION estimate (params REAL[], OUT estimate REAL)
AS $$
    SELECT aws_sagemaker.invoke_endpoint (
        'regression-model', NULL,
        params                            -- model input parameters as an array
        )::REAL                           -- cast output to REAL
$$ LANGUAGE SQL PARALLEL SAFE COST 5000;`);
    await db.query(`CREATE TABLE ts_r (id int, ${fixture.rows[0].map((_, i) => `f${i + 1} real`).join(', ')})`);
    await db.query(
      `INSERT INTO ts_r VALUES ${fixture.rows
        .slice(0, 50)
        .map((r, i) => `(${i + 1}, ${r.map((v) => (v === null ? 'NULL' : v)).join(', ')})`)
        .join(', ')}`,
    );
    const columns = fixture.rows[0].map((_, i) => `f${i + 1}`);
    const wrapped = `estimate(ARRAY[${columns.join(', ')}])`;
    const verbose = await db.query(`EXPLAIN (VERBOSE, COSTS false) SELECT ${wrapped} FROM ts_r`);
    expect(explainText(verbose.rows)).toMatch(/ML Function: estimate\(ARRAY\[/);
    const batched = await db.query(`SELECT id, ${wrapped} AS estimate FROM ts_r ORDER BY id`);
    await db.query("SET track_functions = 'all';");
    await db.query('SELECT pg_stat_reset();');
    await db.query('SET apg_enable_function_migration = false;');
    const perRow = await db.query(`SELECT id, ${wrapped} AS estimate FROM ts_r ORDER BY id`);
    await db.query('RESET apg_enable_function_migration');
    expect(batched.rows).toEqual(perRow.rows);
    for (const row of batched.rows) expect(row.estimate).toBeCloseTo(fixture.predictions[row.id - 1], 5);
    // A backend hands its function statistics over when it goes idle (PostgreSQL 15+).
    await db.query('SELECT pg_stat_force_next_flush()');
    await db.query('SELECT 1');
    const stats = await db.query("SELECT * FROM pg_stat_user_functions WHERE schemaname LIKE 'aws_%';");
    expect(stats.rows.find((r) => r.funcname === 'invoke_endpoint')?.calls).toBe('50');
  });
});
