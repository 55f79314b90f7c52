import { beforeAll, describe, expect, it } from 'vitest';
import { deparse, deparsesFaithfully } from '../../src/sql/ast.js';
import { loadParser, parse } from '../../src/sql/parser.js';

beforeAll(loadParser);

/** The expression of `SELECT <sql>` written back by the gateway's deparser, and whether it reads back the same. */
function roundTrip(sql: string): { written: string; faithful: boolean } {
  const [statement] = parse(`SELECT ${sql}`);
  return { written: deparse(statement.stmt).replace(/^SELECT\s+/, ''), faithful: deparsesFaithfully(statement.stmt) };
}

describe('the deparser writes types as PostgreSQL prints them in view and function bodies', () => {
  it('keeps "bit" and "char" apart from the keywords BIT and CHAR, which mean bit(1) and character(1)', () => {
    for (const [sql, written] of [
      [`'101'::"bit"`, `CAST('101' AS "bit")`],
      [`'101'::pg_catalog."bit"`, `CAST('101' AS pg_catalog."bit")`],
      [`'{101}'::"bit"[]`, `CAST('{101}' AS "bit"[])`],
      [`'a'::pg_catalog."char"`, `CAST('a' AS pg_catalog."char")`],
      [`'{a}'::"char"[]`, `CAST('{a}' AS "char"[])`],
      [`'{{a}}'::"char"[][]`, `CAST('{{a}}' AS "char"[][])`],
    ]) {
      expect(roundTrip(sql), sql).toEqual({ written, faithful: true });
    }
  });

  it('leaves the keyword forms and other types as they were', () => {
    for (const sql of [`'1'::bit`, `'1'::bit(3)`, `'a'::char(2)[]`, `'a'::text[]`, `'1'::varbit`, `X'1F'::int`]) {
      expect(roundTrip(sql).faithful, sql).toBe(true);
    }
  });
});
