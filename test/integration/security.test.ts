/**
 * Access control from SQL, end to end (gateway, bridge, edge, real PostgreSQL):
 * service roles checked before any call leaves the gateway, in batch mode and
 * per row; the same-region rule; signed calls from the gateway when the edge
 * checks signatures; and PostgreSQL privileges for several tenants in one
 * database (Aurora's multi-tenant recipe).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ConfigInput } from '../../src/config/index.js';
import { BridgeServer } from '../../src/gateway/bridge.js';
import { silentLogger } from '../../src/util/log.js';
import { sdkConfig } from '../support/edge.js';
import { binaryLogisticFixture, deployEndpoint } from '../support/endpoints.js';
import {
  createLoginRole,
  dropLoginRoles,
  type EdgeTap,
  type LoginRole,
  rejection,
  standInComprehend,
  standInSentiment,
  tapEdge,
} from '../support/security.js';
import { startStack, type TestStack } from '../support/stack.js';

const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const SAGEMAKER_ROLE = `arn:aws:iam::${ACCOUNT}:role/AllowAuroraSageMakerRole`;
const COMPREHEND_ROLE = `arn:aws:iam::${ACCOUNT}:role/AllowAuroraComprehendRole`;
const endpointArn = (name: string, region = REGION) => `arn:aws:sagemaker:${region}:${ACCOUNT}:endpoint/${name}`;

const fixture = binaryLogisticFixture();
const features = Array.from({ length: 12 }, (_, i) => `f${i + 1}`);
const featureList = features.join(', ');
const call = (endpoint: string) => `aws_sagemaker.invoke_endpoint('${endpoint}', NULL, ${featureList})`;

const lockedDown: ConfigInput['iam'] = {
  roles: [
    {
      arn: SAGEMAKER_ROLE,
      policy: {
        Version: '2012-10-17',
        Statement: [
          { Sid: 'ChurnModels', Effect: 'Allow', Action: 'sagemaker:InvokeEndpoint', Resource: endpointArn('churn-*') },
          { Sid: 'NotTheBeta', Effect: 'Deny', Action: 'sagemaker:*', Resource: endpointArn('churn-beta') },
        ],
      },
    },
    {
      arn: COMPREHEND_ROLE,
      policy: {
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'AllowAuroraToInvokeComprehendDetectSentiment',
            Effect: 'Allow',
            Action: ['comprehend:DetectSentiment', 'comprehend:BatchDetectSentiment'],
            Resource: '*',
          },
        ],
      },
    },
  ],
  defaultRoles: { aws_default_sagemaker_role: SAGEMAKER_ROLE, aws_default_comprehend_role: COMPREHEND_ROLE },
};

async function setUpData(db: pg.Client): Promise<void> {
  await db.query('CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE');
  await db.query(`CREATE TABLE events (id int PRIMARY KEY, ${features.map((f) => `${f} float8`).join(', ')})`);
  const values = fixture.rows
    .slice(0, 40)
    .map((row, i) => `(${i + 1}, ${row.map((v) => (v === null ? 'NULL' : v)).join(', ')})`);
  await db.query(`INSERT INTO events VALUES ${values.join(', ')}`);
  await db.query(`CREATE TABLE reviews (id int PRIMARY KEY, body text)`);
  await db.query(`INSERT INTO reviews VALUES (1, 'great product'), (2, 'bad service'), (3, 'fine, I guess')`);
}

/** Runs a statement in batch mode and, with function migration off, per row. */
async function bothModes<T>(db: pg.Client, run: () => Promise<T>): Promise<{ batch: T; perRow: T }> {
  const batch = await run();
  await db.query('SET apg_enable_function_migration = false');
  try {
    return { batch, perRow: await run() };
  } finally {
    await db.query('RESET apg_enable_function_migration');
  }
}

describe('service roles, checked before a call leaves the gateway', () => {
  let stack: TestStack;
  let db: pg.Client;
  let tap: EdgeTap;

  beforeAll(async () => {
    stack = await startStack({ region: REGION, accountId: ACCOUNT, iam: lockedDown });
    for (const name of ['churn-xgb', 'churn-beta', 'fraud-xgb']) {
      await deployEndpoint(stack.pgsage.edge.url, name, fixture.model);
    }
    standInComprehend(stack.pgsage.edge);
    tap = tapEdge(stack.pgsage.edge);
    db = await stack.connect();
    await setUpData(db);
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('lets through what the attached role allows, in batch mode and per row', async () => {
    tap.clear();
    const { batch, perRow } = await bothModes(db, () =>
      db.query(`SELECT id, ${call('churn-xgb')}::float8 AS p FROM events ORDER BY id`),
    );
    for (const result of [batch, perRow]) {
      expect(result.rows).toHaveLength(40);
      for (const row of result.rows) expect(row.p).toBeCloseTo(fixture.predictions[row.id - 1], 5);
    }
    expect(tap.invocations('churn-xgb').length).toBe(1 + 40);
    const sentiment = await bothModes(db, () =>
      db.query(
        `SELECT r.id, s.sentiment FROM reviews r, aws_comprehend.detect_sentiment(r.body, 'en') s ORDER BY r.id`,
      ),
    );
    expect(sentiment.batch.rows.map((r) => r.sentiment)).toEqual(['POSITIVE', 'NEGATIVE', 'POSITIVE']);
    expect(sentiment.perRow.rows).toEqual(sentiment.batch.rows);
  });

  it('refuses what no statement allows with 42501 naming action and resource, making no call', async () => {
    tap.clear();
    const { batch, perRow } = await bothModes(db, () =>
      rejection(db.query(`SELECT id, ${call('fraud-xgb')}::float8 FROM events`)),
    );
    for (const error of [batch, perRow]) {
      expect(error.code).toBe('42501');
      expect(error.message).toContain(
        `${SAGEMAKER_ROLE} is not authorized to perform: sagemaker:InvokeEndpoint on resource: ${endpointArn('fraud-xgb')} because no identity-based policy allows the sagemaker:InvokeEndpoint action`,
      );
      expect(error.detail).toContain('aws_default_sagemaker_role');
    }
    expect(tap.invocations('fraud-xgb')).toEqual([]);
    // A refused call inside a transaction aborts it like any failed statement.
    await db.query('BEGIN');
    await expect(db.query(`SELECT ${call('fraud-xgb')} FROM events LIMIT 1`)).rejects.toMatchObject({ code: '42501' });
    await expect(db.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
    await db.query('ROLLBACK');
  });

  it('lets an explicit Deny win over the wildcard Allow', async () => {
    tap.clear();
    const { batch, perRow } = await bothModes(db, () =>
      rejection(db.query(`SELECT ${call('churn-beta')} FROM events WHERE id = 1`)),
    );
    for (const error of [batch, perRow]) {
      expect(error.code).toBe('42501');
      expect(error.message).toMatch(
        /on resource: arn:aws:sagemaker:us-east-1:123456789012:endpoint\/churn-beta with an explicit deny/,
      );
      expect(error.detail).toContain('Sid "NotTheBeta"');
    }
    expect(tap.invocations('churn-beta')).toEqual([]);
  });

  it('refuses endpoints of another region, even by ARN, and accepts its own region by ARN', async () => {
    tap.clear();
    const elsewhere = endpointArn('churn-xgb', 'eu-west-1');
    const { batch, perRow } = await bothModes(db, () =>
      rejection(db.query(`SELECT ${call(elsewhere)} FROM events WHERE id = 1`)),
    );
    for (const error of [batch, perRow]) {
      expect(error.code).toBe('22023');
      expect(error.message).toContain(
        `SageMaker endpoint ${elsewhere} is in region eu-west-1; this cluster can only invoke endpoints in its own region us-east-1`,
      );
    }
    const own = await db.query(`SELECT ${call(endpointArn('churn-xgb'))}::float8 AS p FROM events WHERE id = 1`);
    expect(own.rows[0].p).toBeCloseTo(fixture.predictions[0], 5);
    expect(tap.requests.map((r) => r.operation)).toEqual(['InvokeEndpoint churn-xgb']);
  });
});

describe('a service without a role', () => {
  let stack: TestStack;
  let db: pg.Client;

  beforeAll(async () => {
    stack = await startStack({
      region: REGION,
      accountId: ACCOUNT,
      iam: { roles: lockedDown.roles, defaultRoles: { aws_default_sagemaker_role: SAGEMAKER_ROLE } },
    });
    standInComprehend(stack.pgsage.edge);
    db = await stack.connect();
    await setUpData(db);
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('is unavailable from SQL, with a message that tells the admin what to set', async () => {
    const { batch, perRow } = await bothModes(db, () =>
      rejection(db.query(`SELECT (aws_comprehend.detect_sentiment(body, 'en')).sentiment FROM reviews`)),
    );
    for (const error of [batch, perRow]) {
      expect(error.code).toBe('42501');
      expect(error.message).toContain(
        'aws_comprehend.detect_sentiment is unavailable: no IAM role is attached for Amazon Comprehend (aws_default_comprehend_role)',
      );
      expect(error.hint).toMatch(/set iam\.defaultRoles\.aws_default_comprehend_role/);
    }
  });
});

describe('an edge that checks signatures', () => {
  const KEY = { accessKeyId: 'AKPGSECURITYTEST1', secretAccessKey: 'security-test-secret-0123456789' };
  let stack: TestStack;
  let db: pg.Client;
  let tap: EdgeTap;
  let scratch: string;

  beforeAll(async () => {
    stack = await startStack({
      region: REGION,
      accountId: ACCOUNT,
      iam: { credentials: [{ ...KEY, principal: `arn:aws:iam::${ACCOUNT}:user/deployer` }] },
    });
    scratch = mkdtempSync(path.join(tmpdir(), 'pgsage-sec-aws-'));
    db = await stack.connect();
    await setUpData(db);
  });

  afterAll(async () => {
    await stack?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  function aws(keys: { accessKeyId: string; secretAccessKey: string } | undefined, ...args: string[]) {
    return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        'aws',
        [...args, '--endpoint-url', stack.pgsage.edge.url, '--region', REGION, '--output', 'json'],
        {
          env: {
            PATH: process.env.PATH,
            HOME: scratch,
            ...(keys ? { AWS_ACCESS_KEY_ID: keys.accessKeyId, AWS_SECRET_ACCESS_KEY: keys.secretAccessKey } : {}),
            AWS_CONFIG_FILE: path.join(scratch, 'no-config'),
            AWS_SHARED_CREDENTIALS_FILE: path.join(scratch, 'no-credentials'),
            AWS_PAGER: '',
            AWS_MAX_ATTEMPTS: '1',
            AWS_EC2_METADATA_DISABLED: 'true',
          },
          timeout: 60_000,
        },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });
  }

  it('serves the AWS SDK and CLI with a configured key and refuses others', async () => {
    // deployEndpoint signs with 'test' credentials, which this edge does not know.
    await expect(deployEndpoint(stack.pgsage.edge.url, 'churn-xgb', fixture.model)).rejects.toMatchObject({
      name: 'InvalidClientTokenId',
    });
    const listed = await aws(KEY, 'sagemaker', 'list-endpoints');
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout).Endpoints).toEqual([]);
    const wrong = await aws({ ...KEY, secretAccessKey: 'not-the-right-secret-value' }, 'sagemaker', 'list-endpoints');
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/SignatureDoesNotMatch/);
    const unsigned = await aws(undefined, 'sagemaker', 'list-endpoints', '--no-sign-request');
    expect(unsigned.stderr).toMatch(/MissingAuthenticationToken/);
  });

  it('still serves SQL: the gateway signs its own calls with its internal key', async () => {
    await deployEndpoint(
      { ...sdkConfig(stack.pgsage.edge), region: REGION, credentials: KEY },
      'churn-xgb',
      fixture.model,
    );
    tap = tapEdge(stack.pgsage.edge);
    const { batch, perRow } = await bothModes(db, () =>
      db.query(`SELECT id, ${call('churn-xgb')}::float8 AS p FROM events WHERE id <= 3 ORDER BY id`),
    );
    expect(batch.rows).toEqual(perRow.rows);
    expect(batch.rows[0].p).toBeCloseTo(fixture.predictions[0], 5);
    expect(new Set(tap.requests.map((r) => r.principal))).toEqual(
      new Set([`arn:aws:iam::${ACCOUNT}:user/pgsage-gateway`]),
    );
  });
});

// ---------------------------------------------------------------- PostgreSQL privileges

describe('several tenants in one database', () => {
  let stack: TestStack;
  let admin: pg.Client;
  let tap: EdgeTap;
  const roles: LoginRole[] = [];
  let analyst: LoginRole; // may call Comprehend, not SageMaker
  let scorer: LoginRole; // may call only its own wrapper function
  let outsider: LoginRole; // may call nothing

  beforeAll(async () => {
    stack = await startStack({ region: REGION, accountId: ACCOUNT });
    await deployEndpoint(stack.pgsage.edge.url, 'churn-xgb', fixture.model);
    standInComprehend(stack.pgsage.edge);
    tap = tapEdge(stack.pgsage.edge);
    admin = await stack.connect();
    await setUpData(admin);
    analyst = await createLoginRole(admin, 'sec_analyst', stack.database);
    scorer = await createLoginRole(admin, 'sec_scorer', stack.database);
    outsider = await createLoginRole(admin, 'sec_outsider', stack.database);
    roles.push(analyst, scorer, outsider);
    // Aurora's recipe: USAGE on the service schemas decides which tenant reaches which service.
    await admin.query(`
      REVOKE USAGE ON SCHEMA aws_comprehend, aws_sagemaker FROM PUBLIC;
      GRANT USAGE ON SCHEMA aws_comprehend TO ${analyst.name};
      GRANT EXECUTE ON FUNCTION aws_comprehend.detect_sentiment(varchar, varchar, int) TO ${analyst.name};
      GRANT SELECT ON reviews TO ${analyst.name}, ${outsider.name};
      GRANT SELECT ON events TO ${scorer.name}, ${outsider.name};
      CREATE SCHEMA scoring;
      CREATE FUNCTION scoring.churn_probability(${features.map((f) => `${f} float8`).join(', ')},
                                                max_rows_per_batch int DEFAULT NULL, OUT p float8)
        AS $$ SELECT aws_sagemaker.invoke_endpoint('churn-xgb', max_rows_per_batch, ${featureList})::float8 $$
        LANGUAGE SQL PARALLEL SAFE COST 5000 SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
      REVOKE ALL ON FUNCTION scoring.churn_probability FROM PUBLIC;
      GRANT USAGE ON SCHEMA scoring TO ${scorer.name};
      GRANT EXECUTE ON FUNCTION scoring.churn_probability TO ${scorer.name};`);
  });

  afterAll(async () => {
    await stack?.stop();
    const server = inject('postgres');
    const cleanup = new pg.Client({ ...server, database: 'postgres' });
    await cleanup.connect();
    await dropLoginRoles(cleanup, roles);
    await cleanup.end();
  });

  const as = (role: LoginRole) => role.connect(stack.pgsage.gateway.port, stack.database);

  it('lets the analyst call Comprehend but not SageMaker', async () => {
    const db = await as(analyst);
    const sentiment = await bothModes(db, () =>
      db.query(
        `SELECT r.id, s.sentiment FROM reviews r, aws_comprehend.detect_sentiment(r.body, 'en') s ORDER BY r.id`,
      ),
    );
    expect(sentiment.batch.rows.map((r) => r.sentiment)).toEqual(['POSITIVE', 'NEGATIVE', 'POSITIVE']);
    expect(sentiment.perRow.rows).toEqual(sentiment.batch.rows);
    await admin.query(`GRANT SELECT ON events TO ${analyst.name}`);
    const { batch, perRow } = await bothModes(db, () =>
      rejection(db.query(`SELECT ${call('churn-xgb')} FROM events WHERE id = 1`)),
    );
    for (const error of [batch, perRow]) {
      expect(error.code).toBe('42501');
      expect(error.message).toBe('permission denied for schema aws_sagemaker');
    }
  });

  it('lets the scorer call its wrapper function, and not invoke_endpoint directly', async () => {
    const db = await as(scorer);
    const { batch, perRow } = await bothModes(db, () =>
      db.query(`SELECT id, scoring.churn_probability(${featureList}) AS p FROM events ORDER BY id`),
    );
    expect(batch.rows).toHaveLength(40);
    for (const row of batch.rows) expect(row.p).toBeCloseTo(fixture.predictions[row.id - 1], 5);
    expect(perRow.rows).toEqual(batch.rows);
    const direct = await bothModes(db, () =>
      rejection(db.query(`SELECT ${call('churn-xgb')} FROM events WHERE id = 1`)),
    );
    for (const error of [direct.batch, direct.perRow]) {
      expect(error.code).toBe('42501');
      expect(error.message).toBe('permission denied for schema aws_sagemaker');
    }
    // The wrapper does not lend its rights to the Comprehend functions either.
    await expect(db.query(`SELECT aws_comprehend.detect_sentiment('x', 'en')`)).rejects.toMatchObject({
      code: '42501',
      message: 'permission denied for schema aws_comprehend',
    });
  });

  it('gives a tenant without grants nothing, through any path', async () => {
    const db = await as(outsider);
    for (const sql of [
      `SELECT scoring.churn_probability(${featureList}) FROM events WHERE id = 1`,
      `SELECT aws_comprehend.detect_sentiment(body, 'en') FROM reviews`,
      `SELECT aws_sagemaker.invoke_endpoint('churn-xgb', NULL, json_build_array(1))`,
      `SELECT aws_ml.bridge_call('{"op":"sagemaker.invoke_endpoint","endpoint":"churn-xgb","input":"[1]"}')`,
      `SELECT aws_ml.bridge_conninfo()`,
      'SELECT * FROM aws_ml.bridge_settings',
      `SELECT pg_read_file('pgsage_bridge.conninfo')`,
    ]) {
      const error = await rejection(db.query(sql));
      expect(error.code, sql).toBe('42501');
    }
  });

  it('cannot read the bridge secret nor use the bridge without it', async () => {
    const db = await as(outsider);
    const error = await rejection(
      db.query(
        `SELECT dblink_connect('x', 'host=127.0.0.1 port=${stack.pgsage.bridge.port} user=aws_ml_bridge dbname=aws_ml_bridge password=guess')`,
      ),
    );
    // Either dblink is not granted to the tenant or the bridge refuses the password.
    expect(['42501', '42883', '08001', '28P01']).toContain(error.code);
    const bridge = new pg.Client({
      host: '127.0.0.1',
      port: stack.pgsage.bridge.port,
      user: 'aws_ml_bridge',
      database: 'aws_ml_bridge',
      password: outsider.password,
    });
    bridge.on('error', () => {});
    await expect(bridge.connect()).rejects.toMatchObject({ code: '28P01' });
  });

  it("keeps each session's batch results to itself", async () => {
    const analystDb = await as(analyst);
    const secret = 'the analyst wrote this, nobody else may see it';
    await admin.query(`INSERT INTO reviews VALUES (10, $1)`, [secret]);
    const mine = await analystDb.query(
      `SELECT s.sentiment FROM reviews r, aws_comprehend.detect_sentiment(r.body, 'en') s WHERE r.id = 10`,
    );
    expect(mine.rows).toEqual([{ sentiment: standInSentiment(secret).sentiment }]);
    const schema = (await analystDb.query('SELECT n.nspname FROM pg_namespace n WHERE n.oid = pg_my_temp_schema()'))
      .rows[0].nspname as string;
    // A one-table query stores its answers per row of reviews (ctid, xmin); a query over two keeps the inputs.
    const stored = await analystDb.query('SELECT out_text FROM pg_temp.aws_ml_row_results');
    expect(stored.rows).toEqual([{ out_text: standInSentiment(secret).sentiment }]);
    await analystDb.query(
      `SELECT s.sentiment FROM reviews r, (SELECT 10 AS id) k, aws_comprehend.detect_sentiment(r.body, 'en') s WHERE r.id = k.id`,
    );
    const keyed = await analystDb.query('SELECT key FROM pg_temp.aws_ml_results');
    expect(keyed.rows.map((r) => r.key)).toContain(secret);

    // Another user, another session: the results tables of the analyst's session are out of reach.
    const other = await as(outsider);
    for (const table of ['aws_ml_results', 'aws_ml_row_results']) {
      const direct = await rejection(other.query(`SELECT * FROM ${schema}.${table}`));
      expect(['42501', '0A000']).toContain(direct.code);
    }
    // Its own session's table holds nothing of the analyst's, even with the settings forged.
    await other.query('SELECT aws_ml.begin_batch(1, true)');
    expect((await other.query('SELECT count(*)::int AS n FROM pg_temp.aws_ml_results')).rows[0].n).toBe(0);
    const analystPid = (await analystDb.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    await other.query(`SELECT set_config('aws_ml.batch_results', '${analystPid}:1', false)`);
    await admin.query(`GRANT USAGE ON SCHEMA aws_comprehend TO ${outsider.name};
      GRANT EXECUTE ON FUNCTION aws_comprehend.detect_sentiment(varchar, varchar, int) TO ${outsider.name}`);
    tap.clear();
    await other.query('SET apg_enable_function_migration = false');
    const answer = await other.query(`SELECT (aws_comprehend.detect_sentiment($1, 'en')).sentiment AS s`, [secret]);
    expect(answer.rows[0].s).toBe(standInSentiment(secret).sentiment);
    // The answer came from the service (per row), not from the analyst's stored results.
    expect(tap.sentimentTexts()).toEqual([secret]);
    await admin.query(`REVOKE EXECUTE ON FUNCTION aws_comprehend.detect_sentiment(varchar, varchar, int) FROM ${outsider.name};
      REVOKE USAGE ON SCHEMA aws_comprehend FROM ${outsider.name}`);
  });

  it('reads only answers the gateway vouched for, never ones a session stores itself', async () => {
    // A session may load rows into its own results table and point the settings at them (the gateway loads its
    // answers as the session's role). Before aws_ml 1.4 its calls then read them, and so did the calls inside
    // another role's SECURITY DEFINER functions it ran (a function approving only POSITIVE documents approved a
    // negative one). (The test plays the gateway's part with the bridge secret.)
    const doc = 'a bad review the approver must refuse';
    const churnInput = `json_build_array(${features.map(() => '0.5').join(', ')})`;
    await admin.query(`
      CREATE FUNCTION sec_approve(doc text) RETURNS boolean
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
        AS $$ BEGIN RETURN (aws_comprehend.detect_sentiment(doc, 'en')).sentiment = 'POSITIVE'; END $$;
      CREATE FUNCTION sec_approve_sql(doc text) RETURNS boolean
        LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
        AS $$ SELECT (aws_comprehend.detect_sentiment(NULL, doc, 'en')).sentiment = 'POSITIVE' $$;
      CREATE FUNCTION sec_churn() RETURNS text
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
        AS $$ BEGIN RETURN aws_sagemaker.invoke_endpoint('churn-xgb', NULL, ${churnInput}); END $$;
      GRANT EXECUTE ON FUNCTION sec_approve(text), sec_approve_sql(text), sec_churn() TO ${analyst.name};
      GRANT EXECUTE ON FUNCTION aws_comprehend.detect_sentiment(varchar, varchar, varchar, int) TO ${analyst.name};
      GRANT USAGE ON SCHEMA aws_sagemaker TO ${analyst.name};
      GRANT EXECUTE ON FUNCTION aws_sagemaker.invoke_endpoint(varchar, int, json) TO ${analyst.name}`);
    // (Straight to PostgreSQL: the gateway would set its own statement number before each ML statement.)
    const db = await analyst.connect(inject('postgres').port, stack.database);
    const secret = readFileSync(path.join(stack.pgsage.config.dataDir, 'bridge-secret'), 'utf8').trim();
    const proof = (statement: number, xid: string, key = secret) =>
      createHash('sha256').update(`${key}:vouch:${statement}:${xid}`).digest('hex');
    const mine = `SELECT (aws_comprehend.detect_sentiment($1, 'en')).sentiment AS three,
                         (aws_comprehend.detect_sentiment(NULL, $1, 'en')).sentiment AS aurora_form,
                         aws_sagemaker.invoke_endpoint('churn-xgb', NULL, ${churnInput}) AS churn`;
    const theirs = 'SELECT sec_approve($1) AS pl, sec_approve_sql($1) AS sql, sec_churn() AS churn';
    /** Plants answers in a transaction of its own, vouched for with the proof `vouch` makes of its ID. */
    const plant = async (vouch?: (xid: string) => string) => {
      await db.query('BEGIN');
      await db.query('SELECT aws_ml.begin_batch(1, true)');
      await db.query(
        `INSERT INTO pg_temp.aws_ml_results VALUES (1, 'sentiment', 'en', $1, 'POSITIVE', 0.99),
                                                    (1, 'endpoint', 'churn-xgb', ${churnInput}::text, 'planted', NULL)`,
        [doc],
      );
      const xid = (await db.query('SELECT aws_ml.load_xid() AS xid')).rows[0].xid as string;
      const vouched = vouch
        ? (await db.query(`SELECT aws_ml.trust_batch(1, '${vouch(xid)}') AS ok`)).rows[0].ok
        : undefined;
      await db.query('COMMIT');
      return { vouched, xid };
    };
    tap.clear();
    // Planted, not vouched for: the service answers, the session's own calls too.
    await plant();
    expect((await db.query(mine, [doc])).rows).toEqual([
      { three: 'NEGATIVE', aurora_form: 'NEGATIVE', churn: expect.stringMatching(/^[0-9.e-]+$/) },
    ]);
    expect(tap.sentimentTexts()).toEqual([doc, doc]);
    // (Nor by the row that load_xid writes to give a transaction its ID, whatever statement number is current.)
    await db.query(`BEGIN; SELECT aws_ml.begin_batch(0, true); SELECT aws_ml.load_xid();
      INSERT INTO pg_temp.aws_ml_results VALUES (0, 'sentiment', 'en', '${doc}', 'POSITIVE', 0.99); COMMIT`);
    expect((await db.query(mine, [doc])).rows[0].three).toBe('NEGATIVE');
    // A proof made without the bridge's secret is refused.
    expect((await plant((xid) => proof(1, xid, 'guess'))).vouched).toBe(false);
    expect((await db.query(mine, [doc])).rows[0].three).toBe('NEGATIVE');
    // With the secret (as only the gateway has it), the rows are vouched for and read by the statement's calls,
    // also when PostgreSQL adds the portal's parameters to the call stack (log_parameter_max_length_on_error)...
    const { vouched, xid } = await plant((id) => proof(1, id));
    expect(vouched).toBe(true);
    tap.clear();
    for (const parameters of ['0', '-1']) {
      await db.query(`SET log_parameter_max_length_on_error = ${parameters}`);
      const own = await db.query(mine, [doc]);
      expect(own.rows, parameters).toEqual([{ three: 'POSITIVE', aurora_form: 'POSITIVE', churn: 'planted' }]);
    }
    expect(tap.sentimentTexts()).toEqual([]);
    // ...and by a SQL function's (a wrapper PostgreSQL did not inline), never by PL/pgSQL's, which the gateway
    // does not see and which could run after the answers' statement...
    const approved = await db.query(theirs, [doc]);
    expect(approved.rows[0]).toMatchObject({ pl: false, sql: true });
    expect(approved.rows[0].churn).toMatch(/^[0-9.e-]+$/);
    expect(tap.sentimentTexts()).toEqual([doc]);
    expect(tap.invocations('churn-xgb')).toHaveLength(1);
    // ...and a proof (it shows in pg_stat_activity and, for a failed load, in the log) vouches for its own
    // transaction only: in another, or after DISCARD TEMP, it is refused.
    expect((await plant(() => proof(1, xid))).vouched).toBe(false);
    await db.query('DISCARD TEMP');
    expect((await plant(() => proof(1, xid))).vouched).toBe(false);
    expect((await db.query(mine, [doc])).rows[0].three).toBe('NEGATIVE');
    await db.end();
    await admin.query(`REVOKE EXECUTE ON FUNCTION aws_sagemaker.invoke_endpoint(varchar, int, json) FROM ${analyst.name};
      REVOKE USAGE ON SCHEMA aws_sagemaker FROM ${analyst.name}`);
  });

  it("takes answers only from pgsage's bridge, and lets no session use the bridge's connection itself", async () => {
    // dblink's functions are PUBLIC's: a session can name a connection of its own aws_ml_bridge, leading to a bridge
    // that answers what it likes (and hears every input), or send requests over the one the functions opened.
    const heard: string[] = [];
    const fake = new BridgeServer({
      host: '127.0.0.1',
      port: 0,
      secret: 'attacker-chosen-secret',
      handle: async (request) => {
        heard.push(JSON.stringify(request));
        return { sentiment: 'POSITIVE', confidence: 0.99, output: '42' };
      },
      logger: silentLogger,
    });
    await fake.listen();
    const db = await as(analyst);
    try {
      await db.query('SET apg_enable_function_migration = false');
      const doc = 'a bad review the bridge must not decide';
      // aws_ml takes dblink's functions from PUBLIC...
      const refused = await rejection(db.query(`SELECT dblink_connect('aws_ml_bridge', $1)`, [fake.conninfo()]));
      expect(refused.code).toBe('42501');
      // ...and a role an administrator grants them to gets no say over the answers either.
      await admin.query(`GRANT EXECUTE ON FUNCTION dblink_connect(text, text), dblink(text, text) TO ${analyst.name}`);
      await db.query(`SELECT dblink_connect('aws_ml_bridge', $1)`, [fake.conninfo()]);
      tap.clear();
      const answer = await db.query(`SELECT (aws_comprehend.detect_sentiment($1, 'en')).sentiment AS s`, [doc]);
      expect(answer.rows[0].s).toBe('NEGATIVE');
      expect(tap.sentimentTexts()).toEqual([doc]);
      // The functions' own connection is open now: a request the session sends on it is refused.
      const raw = await db.query(`SELECT r FROM dblink('aws_ml_bridge', '{"op":"statistics"}') AS t(r text)`);
      expect(JSON.parse(raw.rows[0].r)).toMatchObject({ error: { code: '28000' } });
    } finally {
      await db.end();
      await fake.close();
      await admin.query(
        `REVOKE EXECUTE ON FUNCTION dblink_connect(text, text), dblink(text, text) FROM ${analyst.name}`,
      );
    }
  });

  it('sends per-row inputs to the services as written, whatever the database encoding', async () => {
    // dblink sends text in the database's encoding, which the bridge reads as UTF-8: a LATIN1 database's
    // 'café' reached the service mangled (aws_ml 1.3), and the signing of aws_ml 1.4 refused it.
    const doc = 'a great café, truly';
    await admin.query("CREATE DATABASE sec_latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
    // (Made through the gateway, which tells the new database where the bridge listens.)
    const creator = await stack.connect('sec_latin1');
    await creator.query('CREATE EXTENSION aws_ml CASCADE');
    await creator.end();
    const latin1 = await stack.direct('sec_latin1');
    try {
      tap.clear();
      const { rows } = await latin1.query(`SELECT (aws_comprehend.detect_sentiment($1, 'en')).confidence AS c`, [doc]);
      expect(tap.sentimentTexts()).toEqual([doc]);
      expect(rows[0].c).toBeCloseTo(standInSentiment(doc).confidence, 5);
    } finally {
      await latin1.end();
      await admin.query('DROP DATABASE sec_latin1');
    }
  });

  it('exposes no gateway internals to ordinary users', async () => {
    const db = await as(outsider);
    const functions = await db.query(`
      SELECT n.nspname || '.' || p.proname AS f, p.prosecdef AS definer
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname IN ('aws_ml', 'aws_comprehend', 'aws_sagemaker')
         AND has_function_privilege(p.oid, 'EXECUTE') ORDER BY 1`);
    // With the owner's rights: only what the gateway needs on the user's own session (its results table).
    expect(functions.rows.filter((r) => r.definer).map((r) => r.f)).toEqual([
      'aws_ml.analyze_batch',
      'aws_ml.begin_batch',
      'aws_ml.index_batch',
      'aws_ml.load_xid',
      'aws_ml.trust_batch',
    ]);
    // With the caller's own rights, nothing that reaches a service or the bridge.
    expect(functions.rows.filter((r) => !r.definer).map((r) => r.f)).not.toContainEqual(
      expect.stringMatching(/bridge|invoke_endpoint|detect_sentiment/),
    );
    const relations = await db.query(`
      SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'aws_ml' AND c.relkind IN ('r', 'v', 'm', 'f', 'p')
         AND has_table_privilege(c.oid, 'SELECT')`);
    expect(relations.rows).toEqual([]);
    // Gateway statistics are for the aws_ml role (and superusers) only.
    await expect(db.query('SELECT * FROM aws_ml.batch_statistics')).rejects.toMatchObject({ code: '42501' });
    await expect(admin.query('SELECT * FROM aws_ml.batch_statistics')).resolves.toBeDefined();
  });

  // Batch mode checks EXECUTE and USAGE along the call chain before calling anything.
  it("does not let one tenant's search_path write the catalog other sessions' statements are rewritten with", async () => {
    // The catalog of wrapper functions is read on whichever session needs it first and shared by all: read under
    // that session's search_path, a `format_type` of the tenant's own came before pg_catalog's, and its text went
    // into the argument queries of the next session that called a wrapper, running the tenant's code as that
    // session's role.
    await admin.query(`
      CREATE SCHEMA sec_shadow AUTHORIZATION ${outsider.name};
      CREATE TABLE sec_pwned (who text);
      GRANT INSERT ON sec_pwned TO PUBLIC;
      CREATE FUNCTION sec_mood(doc text) RETURNS text
        AS $$ SELECT (aws_comprehend.detect_sentiment(doc, 'en')).sentiment $$ LANGUAGE SQL;`);
    const tenant = await as(outsider);
    await tenant.query(`
      CREATE FUNCTION sec_shadow.evil() RETURNS text LANGUAGE plpgsql
        AS $$BEGIN INSERT INTO public.sec_pwned VALUES (current_user); RETURN ''; END$$;
      CREATE FUNCTION sec_shadow.format_type(oid, integer) RETURNS text LANGUAGE sql STABLE
        AS $$ SELECT CASE WHEN $1 = 25 THEN 'text || sec_shadow.evil()' ELSE pg_catalog.format_type($1, $2) END $$;`);
    await tenant.query('SET search_path = sec_shadow, pg_catalog');
    // (After function DDL, the next statement that mentions an ML function has the catalog read again, here.)
    await tenant.query(`CREATE FUNCTION sec_shadow.noop() RETURNS int LANGUAGE sql AS 'SELECT 1'`);
    await tenant.query(`SELECT aws_comprehend.detect_sentiment('x', 'en')`).catch(() => undefined);
    const moods = await bothModes(admin, async () =>
      (await admin.query('SELECT id, sec_mood(body) AS mood FROM reviews ORDER BY id')).rows.map((r) => r.mood),
    );
    expect(moods.batch).toEqual(moods.perRow);
    expect((await admin.query('SELECT count(*)::int AS n FROM sec_pwned')).rows[0].n).toBe(0);
    await tenant.end();
  });

  it("does not let one tenant's operators change what the shared catalog says writes", async () => {
    // A `=` of the tenant's own for "char", put before pg_catalog's, answered false to `provolatile = 'v'` in the
    // catalog read: no function of the database looked VOLATILE, so other sessions' statements calling a function
    // that writes were batched, and the function ran again in their argument queries.
    await admin.query(`
      CREATE SCHEMA sec_shadow2 AUTHORIZATION ${outsider.name};
      CREATE TABLE sec_writes (n int);
      CREATE FUNCTION sec_logged(doc text) RETURNS text LANGUAGE plpgsql
        AS $$ BEGIN INSERT INTO sec_writes VALUES (1); RETURN doc; END $$;`);
    const tenant = await as(outsider);
    await tenant.query(`
      CREATE FUNCTION sec_shadow2.never("char", "char") RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT false';
      CREATE OPERATOR sec_shadow2.= (LEFTARG = "char", RIGHTARG = "char", FUNCTION = sec_shadow2.never)`);
    await tenant.query('SET search_path = sec_shadow2, pg_catalog');
    // (After function DDL, the next statement that mentions an ML function has the catalog read again, here.)
    await tenant.query(`CREATE FUNCTION sec_shadow2.noop() RETURNS int LANGUAGE sql AS 'SELECT 1'`);
    await tenant.query(`SELECT aws_comprehend.detect_sentiment('x', 'en')`).catch(() => undefined);
    const logged = await admin.query(
      `SELECT (aws_comprehend.detect_sentiment(sec_logged(body), 'en')).sentiment FROM reviews WHERE id <= 3`,
    );
    expect(logged.rows).toHaveLength(3);
    // Per row, as PostgreSQL runs it: once per row.
    expect((await admin.query('SELECT count(*)::int AS n FROM sec_writes')).rows[0].n).toBe(3);
    await tenant.end();
  });

  it('calls no service for a statement that reads or writes a column the caller may not', async () => {
    await admin.query(`CREATE TABLE sec_columns (id int, doc text, secret text);
      INSERT INTO sec_columns VALUES (1, 'a fine day', 'hidden'), (2, 'a bad day', 'hidden too');
      GRANT SELECT (id, doc) ON sec_columns TO ${analyst.name}`);
    const db = await as(analyst);
    tap.clear();
    const refused = await rejection(
      db.query(`SELECT secret, (aws_comprehend.detect_sentiment(doc, 'en')).sentiment FROM sec_columns`),
    );
    expect(refused).toMatchObject({ code: '42501', message: 'permission denied for table sec_columns' });
    expect(tap.sentimentTexts()).toEqual([]);
    // The columns it may read are scored as before.
    const allowed = await db.query(
      `SELECT id, (aws_comprehend.detect_sentiment(doc, 'en')).sentiment FROM sec_columns ORDER BY id`,
    );
    expect(allowed.rows.map((r) => r.sentiment)).toEqual(['POSITIVE', 'NEGATIVE']);
    // An UPDATE that writes a column the caller may not write, likewise.
    tap.clear();
    const update = await rejection(
      db.query(`UPDATE sec_columns SET secret = (aws_comprehend.detect_sentiment(doc, 'en')).sentiment`),
    );
    expect(update).toMatchObject({ code: '42501', message: 'permission denied for table sec_columns' });
    expect(tap.sentimentTexts()).toEqual([]);
    // Sent with the extended protocol, bound with a parameter: likewise.
    const extended = await rejection(
      db.query({
        text: `SELECT secret, (aws_comprehend.detect_sentiment(doc, 'en')).sentiment FROM sec_columns WHERE id >= $1`,
        values: [0],
      }),
    );
    const extendedUpdate = await rejection(
      db.query({
        text: `UPDATE sec_columns SET secret = (aws_comprehend.detect_sentiment(doc, $1)).sentiment WHERE id >= 0`,
        values: ['en'],
      }),
    );
    expect([extended, extendedUpdate]).toMatchObject([
      { code: '42501', message: 'permission denied for table sec_columns' },
      { code: '42501', message: 'permission denied for table sec_columns' },
    ]);
    expect(tap.sentimentTexts()).toEqual([]);
    const extendedAllowed = await db.query({
      text: `SELECT id, (aws_comprehend.detect_sentiment(doc, 'en')).sentiment FROM sec_columns WHERE id >= $1 ORDER BY id`,
      values: [0],
    });
    expect(extendedAllowed.rows.map((r) => r.sentiment)).toEqual(['POSITIVE', 'NEGATIVE']);
    expect(tap.sentimentTexts().length).toBeGreaterThan(0);
    // Statements that make a table of what they read, and cursors over it, likewise, on either protocol.
    await admin.query(`GRANT CREATE ON SCHEMA public TO ${analyst.name}`);
    tap.clear();
    const reading = `secret, (aws_comprehend.detect_sentiment(doc, 'en')).sentiment`;
    const making = [
      `CREATE TEMP TABLE sec_made AS SELECT ${reading} FROM sec_columns`,
      `SELECT ${reading} INTO TEMP sec_into FROM sec_columns`,
      `CREATE MATERIALIZED VIEW sec_mv AS SELECT ${reading} FROM sec_columns`,
      `DECLARE sec_cursor CURSOR FOR SELECT ${reading} FROM sec_columns`,
      `EXPLAIN ANALYZE SELECT ${reading} FROM sec_columns`,
    ];
    for (const text of making) {
      // (A materialized view's query takes no parameters.)
      for (const values of text.includes('MATERIALIZED') ? [undefined] : [undefined, [0]]) {
        const sql = values ? `${text} WHERE id >= $1` : text;
        await db.query('BEGIN');
        expect(await rejection(db.query({ text: sql, values })), sql).toMatchObject({ code: '42501' });
        await db.query('ROLLBACK');
        expect(tap.sentimentTexts(), sql).toEqual([]);
      }
    }
    // (COPY takes no parameters.)
    const copied = await rejection(db.query(`COPY (SELECT ${reading} FROM sec_columns) TO STDOUT`));
    expect(copied).toMatchObject({ code: '42501' });
    // To a server file or program, which takes a role the caller has not.
    for (const to of [`'/tmp/sec_copy.csv'`, `PROGRAM 'cat > /dev/null'`]) {
      const sql = `COPY (SELECT id, (aws_comprehend.detect_sentiment(doc, 'en')).sentiment FROM sec_columns) TO ${to}`;
      expect(await rejection(db.query(sql)), sql).toMatchObject({ code: '42501' });
    }
    expect(tap.sentimentTexts()).toEqual([]);
    // With that role, a column it may not read still stops it (on either protocol: with a name, the role's check
    // passed and took the place of the column's).
    await admin.query(`GRANT pg_write_server_files TO ${analyst.name}`);
    for (const name of [undefined, 'sec_copy_file']) {
      const text = `COPY (SELECT ${reading} FROM sec_columns) TO '/tmp/sec_copy_denied.csv'`;
      expect(await rejection(db.query({ name, text })), text).toMatchObject({ code: '42501' });
    }
    await admin.query(`REVOKE pg_write_server_files FROM ${analyst.name}`);
    expect(tap.sentimentTexts()).toEqual([]);
    // A materialized view someone else owns, refreshed: PostgreSQL refuses it only as it runs it.
    await admin.query(`CREATE MATERIALIZED VIEW sec_mv_owned AS SELECT id, ${reading} FROM sec_columns`);
    tap.clear();
    for (const name of [undefined, 'sec_refresh']) {
      const refresh = await rejection(db.query({ name, text: 'REFRESH MATERIALIZED VIEW sec_mv_owned' }));
      expect(refresh).toMatchObject({ code: '42501', message: 'permission denied for materialized view sec_mv_owned' });
    }
    expect(tap.sentimentTexts()).toEqual([]);
    // Its owner refreshes it as before.
    await admin.query('REFRESH MATERIALIZED VIEW sec_mv_owned');
    expect(tap.sentimentTexts().length).toBeGreaterThan(0);
    await db.end();
  });

  it('calls no service for a statement PostgreSQL refuses only as it runs it', async () => {
    await admin.query(`CREATE TABLE sec_run (id int, doc text);
      INSERT INTO sec_run VALUES (1, 'a fine day'), (2, 'a bad day');
      CREATE TABLE sec_sink (id int);
      GRANT SELECT ON sec_run, sec_sink TO ${analyst.name};
      CREATE SCHEMA sec_a AUTHORIZATION ${analyst.name};
      CREATE SCHEMA sec_z AUTHORIZATION ${analyst.name}`);
    const db = await as(analyst);
    const sentiment = (text: string) => `(aws_comprehend.detect_sentiment(${text}, 'en')).sentiment`;
    let named = 0;
    const refusals = async (statements: string[], code: string, extended = true) => {
      tap.clear();
      for (const text of statements)
        for (const name of extended ? [undefined, `sec_refused_${named++}`] : [undefined])
          expect(await rejection(db.query({ name, text })), text).toMatchObject({ code });
      expect(tap.sentimentTexts()).toEqual([]);
    };
    // A cursor declared outside a block.
    await refusals([`DECLARE sec_out CURSOR FOR SELECT ${sentiment('doc')} FROM sec_run`], '25P01');
    // In one Query string (PostgreSQL's implicit block) it runs, as the string's statements do.
    const fetched = await db.query(`DECLARE sec_in CURSOR FOR SELECT ${sentiment('doc')} FROM sec_run ORDER BY id;
      FETCH ALL FROM sec_in`);
    expect((fetched as unknown as pg.QueryResult[])[1].rows.map((r) => r.sentiment)).toEqual(['POSITIVE', 'NEGATIVE']);
    // A second cursor of one name, and more column names than the query has.
    await db.query(`BEGIN; DECLARE sec_twice CURSOR FOR SELECT 1`);
    await refusals([`DECLARE sec_twice CURSOR FOR SELECT ${sentiment('doc')} FROM sec_run`], '42P03', false);
    await db.query('ROLLBACK');
    await refusals(
      [
        `CREATE TEMP TABLE sec_names (a, b) AS SELECT ${sentiment('doc')} FROM sec_run`,
        `CREATE TEMP TABLE sec_names (a, b) AS SELECT ${sentiment('doc')} FROM sec_run UNION SELECT 'x'`,
      ],
      '42601',
    );
    // COPY of a query that writes where the caller may not.
    await refusals(
      [
        `COPY (INSERT INTO sec_sink SELECT id FROM sec_run WHERE ${sentiment('doc')} = 'POSITIVE' RETURNING id) TO STDOUT`,
      ],
      '42501',
      false,
    );
    // EXPLAIN options PostgreSQL refuses together.
    await refusals([`EXPLAIN (ANALYZE, GENERIC_PLAN) SELECT ${sentiment('doc')} FROM sec_run`], '22023', false);
    // A materialized view its owner took MAINTAIN back from (PostgreSQL 17 and later ask for MAINTAIN only).
    await db.query(`CREATE MATERIALIZED VIEW sec_a.mv_kept AS SELECT ${sentiment('doc')} FROM sec_run`);
    await db.query(`REVOKE MAINTAIN ON sec_a.mv_kept FROM ${analyst.name}`);
    await refusals(['REFRESH MATERIALIZED VIEW sec_a.mv_kept'], '42501');
    // Two views of one name: what is scored is the one the search path finds.
    await db.query(`CREATE MATERIALIZED VIEW sec_a.mv_twin AS SELECT ${sentiment(`doc || ' A'`)} FROM sec_run;
      CREATE MATERIALIZED VIEW sec_z.mv_twin AS SELECT ${sentiment(`doc || ' Z'`)} FROM sec_run`);
    for (const [first, second] of [
      ['sec_a', 'sec_z'],
      ['sec_z', 'sec_a'],
    ]) {
      tap.clear();
      await db.query(`SET search_path = ${first}, ${second}, public`);
      await db.query('REFRESH MATERIALIZED VIEW mv_twin');
      const mark = first === 'sec_a' ? ' A' : ' Z';
      expect(new Set(tap.sentimentTexts().map((t) => t.slice(-2))), first).toEqual(new Set([mark]));
    }
    await db.end();
  });

  it("makes its own checks with PostgreSQL's functions and operators, whatever the session's search_path finds", async () => {
    // A role that may call no ML function, with functions and operators of its own that say yes, found first.
    // (Its materialized view made for it: it may not name the function's schema itself.)
    await admin.query(`CREATE SCHEMA sec_own AUTHORIZATION ${outsider.name};
      CREATE TABLE sec_own.docs AS SELECT 'a fine day ' || g AS doc FROM generate_series(1, 5) g;
      CREATE MATERIALIZED VIEW sec_own.moods AS SELECT (aws_comprehend.detect_sentiment(doc, 'en')).sentiment
        FROM sec_own.docs WITH NO DATA;
      ALTER TABLE sec_own.docs OWNER TO ${outsider.name};
      ALTER MATERIALIZED VIEW sec_own.moods OWNER TO ${outsider.name}`);
    const db = await as(outsider);
    await db.query(`CREATE FUNCTION sec_own.has_function_privilege(name, oid, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
      CREATE FUNCTION sec_own.has_schema_privilege(name, oid, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
      SET search_path = sec_own, pg_catalog`);
    tap.clear();
    const refused = await rejection(db.query('REFRESH MATERIALIZED VIEW sec_own.moods'));
    expect(refused).toMatchObject({ code: '42501' });
    expect(tap.sentimentTexts()).toEqual([]);
    // An operator of its own that says two OIDs are equal: a view it may not refresh is not scored either.
    await db.query(`CREATE FUNCTION sec_own.yes(oid, oid) RETURNS boolean LANGUAGE sql AS 'SELECT true';
      CREATE OPERATOR sec_own.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = sec_own.yes)`);
    await rejection(db.query('REFRESH MATERIALIZED VIEW public.sec_mv_owned'));
    expect(tap.sentimentTexts()).toEqual([]);
    await db.end();
  });

  it('calls no service for a statement the caller may not run, and leaves no answers behind', async () => {
    const db = await as(outsider);
    tap.clear();
    await expect(db.query(`SELECT id, ${call('churn-xgb')} FROM events ORDER BY id LIMIT 3`)).rejects.toMatchObject({
      code: '42501',
    });
    const leaked = await db.query('SELECT out_text FROM pg_temp.aws_ml_results').catch(() => ({ rows: [] }));
    expect({ calls: tap.invocations('churn-xgb').length, leaked: leaked.rows.length }).toEqual({ calls: 0, leaked: 0 });
  });
});
