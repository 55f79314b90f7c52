import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3ObjectStore } from '../../src/storage/index.js';
import { run } from '../support/processes.js';
import { type S3Server, s3rverCredentials, startS3Server } from '../support/s3-server.js';
import { startStack, type TestStack } from '../support/stack.js';

/** Large enough that a 10 MB export needs two objects, the first one written with a multipart upload. */
const PART_SIZE = 9 * 1024 * 1024;

let s3: S3Server;
let stack: TestStack;
let db: pg.Client;
let client: S3Client;

beforeAll(async () => {
  s3 = await startS3Server();
  const admin = new S3ObjectStore({ region: 'us-east-1', endpoint: s3.endpoint, credentials: s3rverCredentials() });
  await admin.createBucket('lake');
  admin.close();
  client = new S3Client({
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: s3rverCredentials(),
  });
  stack = await startStack({
    storage: {
      kind: 's3',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      ...s3rverCredentials(),
      partSizeBytes: PART_SIZE,
    },
  });
  db = await stack.connect();
  await db.query('CREATE EXTENSION aws_s3 CASCADE');
});

afterAll(async () => {
  client?.destroy();
  await stack?.stop();
  await s3?.dispose();
});

async function body(key: string): Promise<Buffer> {
  const out = await client.send(new GetObjectCommand({ Bucket: 'lake', Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

async function keys(prefix: string): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: 'lake', Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

async function copyOutput(query: string, options = ''): Promise<Buffer> {
  const result = await run('psql', [stack.directUrl(), '-X', '-q', '-c', `COPY (${query}) TO STDOUT ${options}`]);
  expect(result.stderr).toBe('');
  return Buffer.from(result.stdout, 'utf8');
}

async function errorOf(sql: string): Promise<{ code?: string; message: string }> {
  try {
    await db.query(sql);
  } catch (error) {
    return error as { code?: string; message: string };
  }
  throw new Error(`expected ${sql} to fail`);
}

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('aws_s3.query_export_to_s3 to an S3-compatible store (s3rver)', () => {
  it('writes the export as an S3 object the AWS SDK reads back', async () => {
    const query = "SELECT g AS id, 'name ' || g AS name FROM generate_series(1, 50) g";
    const { rows } = await db.query(
      `SELECT * FROM aws_s3.query_export_to_s3('${query.replace(/'/g, "''")}', aws_commons.create_s3_uri('lake', 'small/names.csv', 'us-east-1'), 'format csv, header true')`,
    );
    const expected = await copyOutput(query, 'WITH (FORMAT csv, HEADER true)');
    expect((await body('small/names.csv')).equals(expected)).toBe(true);
    expect(rows).toEqual([{ rows_uploaded: '50', files_uploaded: '1', bytes_uploaded: String(expected.length) }]);
    const head = await client.send(new HeadObjectCommand({ Bucket: 'lake', Key: 'small/names.csv' }));
    expect(head.ContentType).toBe('text/csv');
  });

  it('streams a large export with multipart uploads and splits it at storage.partSizeBytes', async () => {
    const query = 'SELECT g, md5(g::text) FROM generate_series(1, 260000) g';
    const { rows } = await db.query(
      `SELECT * FROM aws_s3.query_export_to_s3('${query}', 'lake', 'big/hashes.txt', 'us-east-1')`,
    );
    const expected = await copyOutput(query);
    expect(expected.length).toBeGreaterThan(PART_SIZE);
    expect(rows).toEqual([{ rows_uploaded: '260000', files_uploaded: '2', bytes_uploaded: String(expected.length) }]);
    expect(await keys('big/')).toEqual(['big/hashes.txt', 'big/hashes.txt_part2']);
    const first = await body('big/hashes.txt');
    const second = await body('big/hashes.txt_part2');
    expect(first.length).toBeLessThanOrEqual(PART_SIZE);
    expect(first[first.length - 1]).toBe(0x0a);
    expect(sha(Buffer.concat([first, second]))).toBe(sha(expected));
    // The first object went up in two parts of a multipart upload, the second in one PUT.
    const uploads = s3.requests.filter((r) => r.includes('/lake/big/'));
    expect(uploads.filter((r) => /^POST \/lake\/big\/hashes\.txt\?uploads/.test(r))).toHaveLength(1);
    expect(uploads.filter((r) => /^PUT \/lake\/big\/hashes\.txt\?.*partNumber=/.test(r))).toHaveLength(2);
    expect(uploads.filter((r) => /^PUT \/lake\/big\/hashes\.txt_part2(\?|$)/.test(r))).toHaveLength(1);
  });

  it('leaves no object when the query fails after parts were uploaded', async () => {
    const query = 'SELECT g, md5(g::text), 1 / (g - 250000) FROM generate_series(1, 260000) g';
    const error = await errorOf(`SELECT * FROM aws_s3.query_export_to_s3('${query}', 'lake', 'failed/half.txt')`);
    expect(error.code).toBe('22012');
    expect(await keys('failed/')).toEqual([]);
  });

  it('aborts the multipart upload of a stream that fails, leaving no object', async () => {
    const store = new S3ObjectStore({ region: 'us-east-1', endpoint: s3.endpoint, credentials: s3rverCredentials() });
    try {
      const source = new PassThrough();
      const put = store.put('lake', 'aborted/data.bin', source);
      source.write(Buffer.alloc(9 * 1024 * 1024, 1));
      await s3.waitForRequest(/^PUT \/lake\/aborted\/data\.bin\?.*partNumber=1/);
      source.destroy(new Error('the source failed'));
      await expect(put).rejects.toThrow('the source failed');
      expect(s3.requests.filter((r) => /^DELETE \/lake\/aborted\/data\.bin\?uploadId=/.test(r))).toHaveLength(1);
      expect(s3.requests.filter((r) => /^POST \/lake\/aborted\/data\.bin\?uploadId=/.test(r))).toHaveLength(0);
      expect(await keys('aborted/')).toEqual([]);
    } finally {
      store.close();
    }
  });

  it('keeps idle timeouts from ending the session while a slow store finishes the upload', async () => {
    // PostgreSQL waits while the object is written: 600 ms, twice the timeouts. (Each is set and reset in the
    // Query that exports, so the client's own gaps are not timed.)
    s3.writeLatencyMs = 600;
    try {
      const exported = (sql: string) => `${sql}; SELECT rows_uploaded FROM aws_s3.query_export_to_s3(
        'SELECT g FROM generate_series(1, 10) g', 'lake', 'idle/${sql.length}.txt')`;
      type Results = pg.QueryResult[];
      let results = (await db.query(
        `${exported("SET idle_session_timeout = '300ms'")}; RESET idle_session_timeout`,
      )) as unknown as Results;
      expect(results[1].rows).toEqual([{ rows_uploaded: '10' }]);
      await db.query('BEGIN');
      results = (await db.query(
        `${exported("SET LOCAL idle_in_transaction_session_timeout = '300ms'")}; SHOW idle_in_transaction_session_timeout;
         SET LOCAL idle_in_transaction_session_timeout = 0`,
      )) as unknown as Results;
      expect(results[1].rows).toEqual([{ rows_uploaded: '10' }]);
      expect(results[2].rows).toEqual([{ idle_in_transaction_session_timeout: '300ms' }]);
      await db.query('COMMIT');
    } finally {
      s3.writeLatencyMs = 0;
    }
  });

  it('reports a bucket the store does not have', async () => {
    const error = await errorOf("SELECT * FROM aws_s3.query_export_to_s3('SELECT 1', 'no-such-bucket', 'x.txt')");
    expect(error.code).toBe('42704');
    expect(error.message).toBe('bucket "no-such-bucket" does not exist');
  });

  it('fails clearly, and writes nothing, when the store cannot be reached', async () => {
    await s3.stop();
    try {
      const error = await errorOf("SELECT * FROM aws_s3.query_export_to_s3('SELECT 1', 'lake', 'down/one.txt')");
      expect(error.code).toBe('58030');
      expect(error.message).toContain(`could not reach the object store at ${s3.endpoint}`);
      // The session is still usable.
      expect((await db.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    } finally {
      await s3.start();
    }
    expect(await keys('down/')).toEqual([]);
  });
});
