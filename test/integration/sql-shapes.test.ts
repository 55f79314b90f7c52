import { pathToFileURL } from 'node:url';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsCli } from '../support/aws-cli.js';
import { XGBOOST_IMAGE } from '../support/edge.js';
import { binaryLogisticFixture } from '../support/endpoints.js';
import { rejection } from '../support/rejection.js';
import { startStack, type TestStack } from '../support/stack.js';

let stack: TestStack;
let db: pg.Client;
const fixture = binaryLogisticFixture();
const features = Array.from({ length: 12 }, (_, i) => `f${i + 1}`);

const { aws } = awsCli(() => stack.pgsage.edge.url);

beforeAll(async () => {
  stack = await startStack();
  db = await stack.connect();
  await db.query('CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE');
  await db.query(`CREATE TABLE reviews (id int, body text)`);
  await db.query(`INSERT INTO reviews VALUES
    (1, 'A wonderful, moving film with brilliant acting.'),
    (2, 'Dull, far too long and the ending is awful.'),
    (3, 'Un film magnifique, je le recommande.'),
    (4, NULL), (5, '  ')`);
});

afterAll(async () => {
  await stack?.stop();
});

describe('detect_sentiment in the shapes users write', () => {
  it('FROM-list form with a confidence filter, field selection, views and materialized views', async () => {
    const joined =
      await db.query(`SELECT r.id, s.sentiment FROM reviews r, aws_comprehend.detect_sentiment(r.body, 'en') s
                                    WHERE s.confidence >= 0.5 ORDER BY r.id`);
    expect(joined.rows.slice(0, 2)).toEqual([
      { id: 1, sentiment: 'POSITIVE' },
      { id: 2, sentiment: 'NEGATIVE' },
    ]);
    const fields = await db.query(
      "SELECT id, (aws_comprehend.detect_sentiment(body, 'en')).sentiment FROM reviews ORDER BY id",
    );
    expect(fields.rows.map((r) => r.sentiment)).toEqual(['POSITIVE', 'NEGATIVE', expect.any(String), null, null]);
    await db.query(
      `CREATE VIEW review_sentiment AS SELECT id, (aws_comprehend.detect_sentiment(body, 'en')).* FROM reviews`,
    );
    await db.query(`CREATE MATERIALIZED VIEW review_sentiment_m AS SELECT * FROM review_sentiment`);
    const view = await db.query('SELECT id, sentiment FROM review_sentiment ORDER BY id');
    const materialized = await db.query('SELECT id, sentiment FROM review_sentiment_m ORDER BY id');
    expect(view.rows).toEqual(fields.rows);
    expect(materialized.rows).toEqual(fields.rows);
  });

  it('is PARALLEL UNSAFE, counted under aws_comprehend, and answers on a direct connection', async () => {
    // PL/pgSQL functions that start commands must keep out of parallel queries (see aws_ml--1.1.sql).
    const unsafe = await db.query(
      "SELECT bool_and(proparallel = 'u') AS unsafe FROM pg_proc WHERE proname IN ('detect_sentiment', 'invoke_endpoint')",
    );
    expect(unsafe.rows[0].unsafe).toBe(true);
    const direct = await stack.direct();
    await direct.query("SET track_functions = 'all'");
    const { rows } = await direct.query("SELECT (aws_comprehend.detect_sentiment('I like it!', 'en')).sentiment");
    expect(rows[0].sentiment).toBe('POSITIVE');
    await direct.query('SELECT pg_stat_force_next_flush()');
    await direct.query('SELECT 1');
    const stats = await direct.query(
      "SELECT calls FROM pg_stat_user_functions WHERE schemaname = 'aws_comprehend' AND funcname = 'detect_sentiment'",
    );
    expect(Number(stats.rows[0]?.calls)).toBeGreaterThanOrEqual(1);
  });

  it('explains bad input with a SQLSTATE', async () => {
    await expect(db.query("SELECT aws_comprehend.detect_sentiment('hola', 'xx')")).rejects.toMatchObject({
      code: '22023',
      message: expect.stringMatching(/en.*es.*fr/),
    });
    await expect(db.query(`SELECT aws_comprehend.detect_sentiment(repeat('good ', 1200), 'en')`)).rejects.toMatchObject(
      {
        code: '22001',
      },
    );
    await expect(db.query("SELECT aws_comprehend.detect_sentiment('fine', NULL)")).rejects.toMatchObject({
      code: '22004',
    });
    const badBatch = { code: '22023', message: 'max_rows_per_batch must be NULL or at least 1, not 0' };
    await expect(db.query("SELECT aws_comprehend.detect_sentiment('fine', 'en', 0)")).rejects.toMatchObject(badBatch);
    const direct = await stack.direct();
    await expect(direct.query("SELECT aws_comprehend.detect_sentiment('fine', 'en', 0)")).rejects.toMatchObject(
      badBatch,
    );
    await expect(
      direct.query("SELECT aws_sagemaker.invoke_endpoint('any', 0, json_build_array(1))"),
    ).rejects.toMatchObject(badBatch);
    // An empty endpoint name is said to be one, per row and batched.
    await db.query('CREATE TEMP TABLE named_nothing AS SELECT g AS x FROM generate_series(1, 3) g');
    for (const sql of [
      "SELECT aws_sagemaker.invoke_endpoint('', NULL, 1, 2)",
      "SELECT aws_sagemaker.invoke_endpoint('', NULL, x, 2) FROM named_nothing",
    ]) {
      await expect(db.query(sql)).rejects.toMatchObject({ code: '22023', message: 'endpoint_name must not be empty' });
    }
    // A name no endpoint can have does not exist, and a long one is not repeated whole (100,000 characters were,
    // twice).
    const long = 'e'.repeat(100_000);
    for (const setting of ['on', 'off']) {
      await db.query(`SET apg_enable_function_migration = ${setting}`);
      for (const [name, shown, detail] of [
        [long, `${'e'.repeat(63)}…`, / \(this one has 100000 characters\)\.$/],
        ['my_model', 'my_model', /^No endpoint can be named so: .* letters, digits and hyphens, .*digit\.$/],
      ] as const) {
        for (const sql of [
          `SELECT aws_sagemaker.invoke_endpoint('${name}', NULL, 1, 2)`,
          `SELECT aws_sagemaker.invoke_endpoint('${name}', NULL, x, 2) FROM named_nothing`,
        ]) {
          const error = await rejection(db.query(sql));
          expect({ setting, code: error.code, message: error.message }).toEqual({
            setting,
            code: '42704',
            message: `SageMaker endpoint "${shown}" does not exist`,
          });
          expect(error.detail).toMatch(detail);
        }
      }
    }
    await db.query('RESET apg_enable_function_migration');
    // A batch count that is not one is said to be ignored.
    const warnings: string[] = [];
    const onNotice = (notice: { severity?: string; message?: string }) => {
      if (notice.severity === 'WARNING') warnings.push(notice.message ?? '');
    };
    db.on('notice', onNotice);
    // (And one over the most a session may keep in flight is taken as that.)
    for (const value of ["'lots'", '100000']) {
      await db.query(`SET aws_ml.max_concurrent_batches = ${value}`);
      const { rows } = await db.query(
        "SELECT (aws_comprehend.detect_sentiment('a fine day ' || x, 'en')).sentiment FROM named_nothing",
      );
      expect(rows).toHaveLength(3);
    }
    await db.query('RESET aws_ml.max_concurrent_batches');
    db.off('notice', onNotice);
    expect(warnings).toEqual([
      'parameter "aws_ml.max_concurrent_batches" requires a positive integer: "lots" is ignored',
      'parameter "aws_ml.max_concurrent_batches" is at most 64: "100000" is taken as 64',
    ]);
  });
});

describe('invoke_endpoint with an endpoint deployed by the AWS CLI', () => {
  it('answers classify_event-style wrappers through the gateway and inside a stored function', async () => {
    const model = pathToFileURL(fixture.model).href;
    const steps = [
      [
        'sagemaker',
        'create-model',
        '--model-name',
        'events-model',
        '--execution-role-arn',
        'arn:aws:iam::000000000000:role/r',
        '--primary-container',
        `Image=${XGBOOST_IMAGE},ModelDataUrl=${model}`,
      ],
      [
        'sagemaker',
        'create-endpoint-config',
        '--endpoint-config-name',
        'events-config',
        '--production-variants',
        'VariantName=AllTraffic,ModelName=events-model,InitialInstanceCount=1,InstanceType=ml.m5.large',
      ],
      ['sagemaker', 'create-endpoint', '--endpoint-name', 'events-ep', '--endpoint-config-name', 'events-config'],
      ['sagemaker', 'wait', 'endpoint-in-service', '--endpoint-name', 'events-ep'],
    ];
    for (const step of steps) {
      const result = await aws(...step);
      expect(result.code, result.stderr).toBe(0);
    }
    await db.query(`CREATE TABLE events (id int, ${features.map((f) => `${f} float8`).join(', ')})`);
    await db.query(
      `INSERT INTO events VALUES ${fixture.rows
        .slice(0, 40)
        .map((r, i) => `(${i + 1}, ${r.map((v) => (v === null ? 'NULL' : v)).join(', ')})`)
        .join(', ')}`,
    );
    await db.query(`CREATE FUNCTION classify_event (${features.map((f) => `IN ${f} float8`).join(', ')}, OUT category INT)
      AS $$ SELECT (aws_sagemaker.invoke_endpoint('events-ep', NULL, ${features.join(', ')})::float8 > 0.5)::int $$
      LANGUAGE SQL PARALLEL SAFE COST 5000`);
    const expected = fixture.predictions.slice(0, 40).map((p) => (p > 0.5 ? 1 : 0));
    const { rows } = await db.query(`SELECT classify_event(${features.join(', ')}) AS c FROM events ORDER BY id`);
    expect(rows.map((r) => r.c)).toEqual(expected);
    await db.query(`CREATE FUNCTION positives() RETURNS bigint LANGUAGE plpgsql AS $$
      BEGIN RETURN (SELECT count(*) FROM events WHERE classify_event(${features.join(', ')}) = 1); END $$`);
    const stored = await (await stack.direct()).query('SELECT positives() AS n');
    expect(Number(stored.rows[0].n)).toBe(expected.filter((c) => c === 1).length);
  });
});
