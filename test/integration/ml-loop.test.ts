/**
 * The whole loop Aurora ML users run, locally: export a table with
 * aws_s3.query_export_to_s3, train XGBoost as a SageMaker training job
 * (`pgsage train`), deploy the model (`pgsage endpoint deploy`, as printed),
 * and predict from SQL through a wrapper function in batch mode.
 */
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerEndpointCommands } from '../../src/cli/endpoint.js';
import { registerTrainCommands } from '../../src/cli/train.js';
import { LocalObjectStore } from '../../src/storage/local-store.js';
import { startStack, type TestStack } from '../support/stack.js';

let stack: TestStack;

beforeAll(async () => {
  stack = await startStack();
});

afterAll(async () => {
  await stack?.stop();
});

async function pgsage(...args: string[]): Promise<string> {
  let printed = '';
  const output = { out: (text: string) => (printed += text), progress: () => {} };
  const program = new Command().name('pgsage').exitOverride();
  registerTrainCommands(program, output);
  registerEndpointCommands(program, output);
  await program.parseAsync([...args, '--services-url', stack.pgsage.edge.url], { from: 'user' });
  return printed;
}

describe('export, train, deploy, predict', () => {
  it('runs end to end from SQL', async () => {
    const db = await stack.connect();
    await db.query('CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE');
    await db.query('CREATE EXTENSION IF NOT EXISTS aws_s3 CASCADE');
    // Churn when tenure is short and the bill high, with some noise.
    await db.query(`CREATE TABLE customers AS
      SELECT g AS id, (g * 7919 % 60)::int AS tenure, (20 + (g * 104729 % 100))::real AS monthly,
             ((g * 7919 % 60) < 12 AND (20 + (g * 104729 % 100)) > 60 OR g % 53 = 0)::int AS churned
        FROM generate_series(1, 3000) g`);
    await new LocalObjectStore(`${stack.pgsage.config.dataDir}/s3`).createBucket('sagemaker-data');
    const exported = await db.query(`SELECT * FROM aws_s3.query_export_to_s3(
        'SELECT churned, tenure, monthly FROM customers',
        aws_commons.create_s3_uri('sagemaker-data', 'churn/train/data.csv', 'us-east-1'),
        options := 'format csv')`);
    expect(Number(exported.rows[0].rows_uploaded)).toBe(3000);

    const trained = await pgsage(
      'train',
      '--algorithm',
      'xgboost',
      '--train',
      's3://sagemaker-data/churn/train',
      '--output',
      's3://sagemaker-data/models',
      '--hp',
      'num_round=30',
      '--hp',
      'max_depth=4',
      '--hp',
      'objective=binary:logistic',
      '--name',
      'churn-loop',
    );
    const deploy = /Deploy: {2}pgsage (endpoint deploy .*)\n/.exec(trained)?.[1];
    expect(deploy).toBeDefined();
    await pgsage(...(deploy as string).split(' '));

    await db.query(`CREATE FUNCTION churn_score(tenure INT, monthly REAL, max_rows_per_batch INT DEFAULT NULL,
                                                OUT score REAL)
      AS $$ SELECT aws_sagemaker.invoke_endpoint('churn-loop', max_rows_per_batch, tenure, monthly)::REAL $$
      LANGUAGE SQL PARALLEL SAFE COST 5000`);
    const { rows } = await db.query(`SELECT avg(((churn_score(tenure, monthly) > 0.5)::int = churned)::int) AS accuracy
                                       FROM customers`);
    expect(Number(rows[0].accuracy)).toBeGreaterThan(0.95);
    const explain = await db.query('EXPLAIN ANALYZE SELECT churn_score(tenure, monthly) FROM customers');
    expect(explain.rows.map((r) => r['QUERY PLAN']).join('\n')).toMatch(/Batch Processing: num batches=1 /);
  });
});
