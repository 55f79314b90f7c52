import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { copyableQuery, parseCopyOptions, quoteLiteral } from '../../src/export/copy-options.js';
import { loadParser } from '../../src/sql/parser.js';
import { authorizedStore } from '../../src/storage/authorized-store.js';
import { LocalObjectStore, ObjectNotFoundError, ObjectStoreError, SplitUpload } from '../../src/storage/index.js';
import { partKey } from '../../src/storage/split-upload.js';
import { GatedStore } from '../support/gated-store.js';

let root: string;
let store: LocalObjectStore;

beforeAll(async () => {
  await loadParser();
});

beforeEach(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'pgsage-storage-'));
  store = new LocalObjectStore(root, false);
  await store.createBucket('data');
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

/** Every file under the store root, partial ones included. */
function files(): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)))
    .sort();
}

describe('COPY options of query_export_to_s3', () => {
  it('maps known options to COPY syntax with values quoted by pgsage', () => {
    expect(parseCopyOptions(null)).toEqual({ clause: '', format: 'text' });
    expect(parseCopyOptions('  ')).toEqual({ clause: '', format: 'text' });
    expect(parseCopyOptions("format csv, header true, delimiter $$;$$, encoding 'UTF8'")).toEqual({
      clause: " WITH (FORMAT csv, HEADER true, DELIMITER ';', ENCODING 'UTF8')",
      format: 'csv',
    });
    expect(parseCopyOptions('FORMAT CSV, HEADER, FORCE_QUOTE *').clause).toBe(
      ' WITH (FORMAT csv, HEADER true, FORCE_QUOTE *)',
    );
    expect(parseCopyOptions('format csv, force_quote (a, "Mixed Case")').clause).toBe(
      ' WITH (FORMAT csv, FORCE_QUOTE ("a", "Mixed Case"))',
    );
    expect(parseCopyOptions("null 'it''s', escape E'\\\\'").clause).toBe(" WITH (NULL 'it''s', ESCAPE E'\\\\')");
    expect(parseCopyOptions('format binary').format).toBe('binary');
  });

  it('takes COPY’s older option syntax', () => {
    expect(parseCopyOptions("CSV HEADER DELIMITER ','").clause).toBe(" WITH (FORMAT csv, HEADER true, DELIMITER ',')");
  });

  it('rejects unknown options, bad values and anything that is not an option list with 22023', () => {
    for (const text of [
      'format xml',
      'freeze true',
      'force_null (a)',
      'header maybe',
      'format csv) TO STDOUT; DROP TABLE t; --',
      "format csv) TO PROGRAM 'rm -rf /' WITH (format csv",
      'delimiter',
      'force_quote 1',
    ]) {
      let error: unknown;
      try {
        parseCopyOptions(text);
      } catch (e) {
        error = e;
      }
      expect(error, text).toMatchObject({ sqlstate: '22023' });
    }
  });

  it('quotes literals the way quote_literal does', () => {
    expect(quoteLiteral("a'b")).toBe("'a''b'");
    expect(quoteLiteral('a\\b')).toBe("E'a\\\\b'");
  });

  it('accepts one copyable statement and returns just its text', () => {
    expect(copyableQuery('  SELECT 1 ;  ')).toBe('SELECT 1');
    expect(copyableQuery('SELECT 1 -- trailing comment')).toBe('SELECT 1 -- trailing comment');
    expect(copyableQuery("SELECT 'é' AS x;")).toBe("SELECT 'é' AS x");
    expect(copyableQuery('VALUES (1)')).toBe('VALUES (1)');
    expect(copyableQuery('DELETE FROM t RETURNING *')).toBe('DELETE FROM t RETURNING *');
    for (const bad of [
      'SELECT 1; SELECT 2',
      'SELECT 1) TO STDOUT; COPY (SELECT 1',
      'CREATE TABLE t ()',
      '',
      'SELEC 1',
    ]) {
      expect(() => copyableQuery(bad), bad).toThrow();
      try {
        copyableQuery(bad);
      } catch (error) {
        expect((error as { sqlstate: string }).sqlstate).toBe('42601');
      }
    }
  });
});

describe('LocalObjectStore', () => {
  it('writes, lists, reads and deletes objects; buckets must exist', async () => {
    await store.put('data', 'a/b.txt', Buffer.from('hello'));
    await store.put('data', 'a/c.txt', Buffer.from('hi'));
    expect(await store.list('data', 'a/')).toEqual([
      { key: 'a/b.txt', size: 5 },
      { key: 'a/c.txt', size: 2 },
    ]);
    expect((await store.get('data', 'a/b.txt')).toString()).toBe('hello');
    await store.delete('data', 'a/b.txt');
    await store.delete('data', 'a/b.txt');
    expect(await store.exists('data', 'a/b.txt')).toBe(false);
    await expect(store.get('data', 'a/b.txt')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(store.put('missing', 'x', Buffer.from('x'))).rejects.toBeInstanceOf(ObjectNotFoundError);
    expect(await store.listBuckets()).toEqual(['data']);
  });

  it('leaves nothing behind when a stream body fails', async () => {
    await store.put('data', 'kept.txt', Buffer.from('old'));
    const body = new PassThrough();
    const put = store.put('data', 'kept.txt', body);
    body.write('new data that never completes');
    body.destroy(new Error('source failed'));
    await expect(put).rejects.toThrow('source failed');
    expect(files()).toEqual([path.join('data', 'kept.txt')]);
    expect((await store.get('data', 'kept.txt')).toString()).toBe('old');
  });

  it('refuses keys outside the bucket and KMS encryption', async () => {
    await expect(store.put('data', '../escape.txt', Buffer.from('x'))).rejects.toBeInstanceOf(ObjectStoreError);
    await expect(store.put('data', 'k.txt', Buffer.from('x'), { kmsKeyId: 'alias/k' })).rejects.toMatchObject({
      reason: 'unsupported',
    });
    expect(files()).toEqual([]);
  });
});

/** 100 bytes. */
const record = (i: number) => Buffer.from(`${String(i).padStart(6, '0')},${'x'.repeat(92)}\n`);

describe('SplitUpload', () => {
  it('splits records into parts of at most partSizeBytes and names them like Aurora', async () => {
    const upload = new SplitUpload(store, 'data', 'out.csv', { partSizeBytes: 1000 });
    for (let i = 0; i < 25; i++) upload.write(record(i));
    const result = await upload.finish();
    expect(result).toEqual({ files: 3, bytes: 2500, keys: ['out.csv', 'out.csv_part2', 'out.csv_part3'] });
    expect((await store.get('data', 'out.csv')).length).toBe(1000);
    expect((await store.get('data', 'out.csv_part3')).toString()).toBe(
      Buffer.concat([...Array(5)].map((_, i) => record(20 + i))).toString(),
    );
    expect(partKey('p', 1)).toBe('p');
    expect(partKey('p', 7)).toBe('p_part7');
  });

  it('keeps a record larger than a part whole, and writes one empty object for an empty export', async () => {
    const big = new SplitUpload(store, 'data', 'big', { partSizeBytes: 10 });
    big.write(Buffer.from('0123456789abcdef\n'));
    big.write(Buffer.from('x\n'));
    expect(await big.finish()).toMatchObject({ files: 2, bytes: 19 });
    const empty = new SplitUpload(store, 'data', 'empty', { partSizeBytes: 10 });
    expect(await empty.finish()).toEqual({ files: 1, bytes: 0, keys: ['empty'] });
    expect((await store.get('data', 'empty')).length).toBe(0);
  });

  it('removes stale later parts of an earlier, larger export to the same key', async () => {
    const first = new SplitUpload(store, 'data', 'k', { partSizeBytes: 100 });
    for (let i = 0; i < 4; i++) first.write(record(i));
    await first.finish();
    await store.put('data', 'k_part9', Buffer.from('not part of the series'));
    const second = new SplitUpload(store, 'data', 'k', { partSizeBytes: 100 });
    second.write(record(9));
    await second.finish();
    expect((await store.list('data')).map((o) => o.key)).toEqual(['k', 'k_part9']);
  });

  it('needs no read access: a role that may write, list and delete replaces a larger export', async () => {
    const first = new SplitUpload(store, 'data', 'w/k', { partSizeBytes: 100 });
    for (let i = 0; i < 3; i++) first.write(record(i));
    await first.finish();
    const refused: string[] = [];
    const writeOnly = authorizedStore(store, (action, _bucket, key) => {
      if (action === 's3:GetObject') {
        refused.push(`${action} ${key}`);
        throw new Error(`${action} refused on ${key}`);
      }
    });
    const second = new SplitUpload(writeOnly, 'data', 'w/k', { partSizeBytes: 100 });
    second.write(record(9));
    expect(await second.finish()).toEqual({ files: 1, bytes: 100, keys: ['w/k'] });
    expect(refused).toEqual([]);
    expect((await store.list('data')).map((o) => o.key)).toEqual(['w/k']);
  });

  it('lists only keys with the prefix, in folders too', async () => {
    for (const key of ['a/b', 'a/b_part2', 'a/bc/d', 'ab', 'z/a/b']) await store.put('data', key, Buffer.from('x'));
    expect((await store.list('data', 'a/b_part')).map((o) => o.key)).toEqual(['a/b_part2']);
    expect((await store.list('data', 'a/b')).map((o) => o.key)).toEqual(['a/b', 'a/b_part2', 'a/bc/d']);
    expect((await store.list('data', 'a')).map((o) => o.key)).toEqual(['a/b', 'a/b_part2', 'a/bc/d', 'ab']);
    expect((await store.list('data')).length).toBe(5);
  });

  it('removes the parts it completed when aborted', async () => {
    const upload = new SplitUpload(store, 'data', 'aborted', { partSizeBytes: 300 });
    for (let i = 0; i < 7; i++) upload.write(record(i));
    await upload.abort(new Error('COPY failed'));
    expect(files()).toEqual([]);
  });

  it('asks the writer to wait while the store is behind, and says when to go on', async () => {
    const gated = new GatedStore(store);
    const upload = new SplitUpload(gated, 'data', 'slow', { partSizeBytes: 1 << 30, highWaterMark: 64 * 1024 });
    let drains = 0;
    upload.on('drain', () => {
      drains += 1;
    });
    let accepted = 0;
    let wait = false;
    while (!wait && accepted < 5000) {
      wait = !upload.write(record(accepted));
      accepted += 1;
    }
    expect(wait).toBe(true);
    // Bounded: a high-water mark and one batch, not everything.
    expect(accepted * 100).toBeLessThan(3 * 64 * 1024);
    expect(drains).toBe(0);
    const drained = new Promise<void>((resolve) => upload.once('drain', resolve));
    gated.open();
    await drained;
    for (let i = accepted; i < 5000; i++) upload.write(record(i));
    const result = await upload.finish();
    expect(result.bytes).toBe(500_000);
    const content = await store.get('data', 'slow');
    expect(content.length).toBe(500_000);
    expect(content.subarray(0, 100).equals(record(0))).toBe(true);
    expect(content.subarray(499_900).equals(record(4999))).toBe(true);
  });

  it('reports a failed object once and refuses further writes', async () => {
    const upload = new SplitUpload(store, 'nope', 'x', { partSizeBytes: 100 });
    const failed = new Promise<Error>((resolve) => upload.once('failed', resolve));
    upload.write(record(0));
    expect(await failed).toBeInstanceOf(ObjectNotFoundError);
    expect(() => upload.write(record(1))).toThrow(ObjectNotFoundError);
    await expect(upload.finish()).rejects.toBeInstanceOf(ObjectNotFoundError);
  });
});
