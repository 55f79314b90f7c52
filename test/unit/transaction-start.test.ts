import { beforeAll, describe, expect, it } from 'vitest';
import { readsTransactionStart } from '../../src/batch/pure-functions.js';
import { loadParser, parse } from '../../src/sql/parser.js';

beforeAll(async () => {
  await loadParser();
});

const reads = (sql: string) => readsTransactionStart(parse(sql)[0].stmt);

describe('readsTransactionStart', () => {
  it('finds what reads the transaction start', () => {
    for (const sql of [
      'SELECT now()',
      'SELECT pg_catalog.now()',
      'SELECT transaction_timestamp()',
      'SELECT CURRENT_TIMESTAMP',
      'SELECT CURRENT_TIMESTAMP(3)',
      'SELECT x FROM t WHERE d = CURRENT_DATE',
      'SELECT LOCALTIME, 1',
      'SELECT LOCALTIMESTAMP',
      "SELECT f('now'::timestamptz)",
      "SELECT f('now'::text::timestamptz)",
      "SELECT date 'today'",
      "SELECT timestamp with time zone 'now'",
      'SELECT age(born) FROM people',
      'UPDATE t SET p = f(x) WHERE seen > now() - interval $$1 day$$',
    ]) {
      expect(reads(sql), sql).toBe(true);
    }
  });

  it('leaves alone what does not', () => {
    for (const sql of [
      'SELECT 1',
      'SELECT current_user, session_user, current_schema',
      'SELECT clock_timestamp()',
      'SELECT statement_timestamp()',
      'SELECT my.now()',
      'SELECT age(a, b) FROM t',
      "SELECT '2020-01-01'::date",
      "SELECT 'now'::text",
      'SELECT now FROM t',
    ]) {
      expect(reads(sql), sql).toBe(false);
    }
  });
});
