import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalObjectStore } from '../../src/storage/local-store.js';
import { startStack, type TestStack } from '../support/stack.js';

/** Exports are checked against the role attached as aws_default_s3_role before anything is written. */
let stack: TestStack;
const role = 'arn:aws:iam::123456789012:role/Exports';

beforeAll(async () => {
  stack = await startStack({
    accountId: '123456789012',
    iam: {
      roles: [
        {
          arn: role,
          policy: {
            Version: '2012-10-17',
            Statement: [
              {
                Effect: 'Allow',
                Action: 's3:*',
                Resource: ['arn:aws:s3:::sagemaker-data', 'arn:aws:s3:::sagemaker-data/*'],
              },
              { Effect: 'Deny', Action: 's3:PutObject', Resource: 'arn:aws:s3:::sagemaker-data/private/*' },
              {
                Effect: 'Deny',
                Action: ['s3:GetObject', 's3:DeleteObject'],
                Resource: 'arn:aws:s3:::sagemaker-data/write-only/*',
              },
            ],
          },
        },
      ],
      defaultRoles: { aws_default_s3_role: role },
    },
  });
  await new LocalObjectStore(`${stack.pgsage.config.dataDir}/s3`).createBucket('sagemaker-data');
});

afterAll(async () => {
  await stack?.stop();
});

describe('exports and the S3 role', () => {
  it('allows what the policy allows and refuses, naming action and resource, what it denies', async () => {
    const db = await stack.connect();
    await db.query('CREATE EXTENSION IF NOT EXISTS aws_s3 CASCADE');
    const allowed = await db.query(
      "SELECT rows_uploaded FROM aws_s3.query_export_to_s3('SELECT 1 AS x', aws_commons.create_s3_uri('sagemaker-data', 'public/one.csv', 'us-east-1'), options := 'format csv')",
    );
    expect(Number(allowed.rows[0].rows_uploaded)).toBe(1);
    const denied = await db
      .query(
        "SELECT * FROM aws_s3.query_export_to_s3('SELECT 1 AS x', aws_commons.create_s3_uri('sagemaker-data', 'private/one.csv', 'us-east-1'))",
      )
      .catch((e) => e);
    expect(denied).toMatchObject({ code: '42501' });
    expect(denied.message).toContain('s3:PutObject');
    expect(denied.message).toContain('arn:aws:s3:::sagemaker-data/private/one.csv');
    const store = new LocalObjectStore(`${stack.pgsage.config.dataDir}/s3`);
    expect(await store.exists('sagemaker-data', 'private/one.csv')).toBe(false);
    await expect(
      db.query(
        "SELECT * FROM aws_s3.query_export_to_s3('SELECT 1', aws_commons.create_s3_uri('other-bucket', 'x.csv', 'us-east-1'))",
      ),
    ).rejects.toMatchObject({ code: '42501' });
  });

  it('exports with a role that may write and list but not read or delete', async () => {
    const db = await stack.connect();
    await db.query('CREATE EXTENSION IF NOT EXISTS aws_s3 CASCADE');
    const { rows } = await db.query(
      "SELECT * FROM aws_s3.query_export_to_s3('select 1', aws_commons.create_s3_uri('sagemaker-data', 'write-only/c.txt', 'us-east-1'))",
    );
    expect(rows[0]).toMatchObject({ rows_uploaded: '1', files_uploaded: '1', bytes_uploaded: '2' });
    const store = new LocalObjectStore(`${stack.pgsage.config.dataDir}/s3`);
    expect((await store.get('sagemaker-data', 'write-only/c.txt')).toString()).toBe('1\n');
  });
});
