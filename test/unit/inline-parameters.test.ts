import { beforeAll, describe, expect, it } from 'vitest';
import { inlineParameters, readsTheSameLater } from '../../src/sql/inline-parameters.js';
import { loadParser } from '../../src/sql/parser.js';

beforeAll(loadParser);

const text = (...values: (string | null)[]) => values.map((v) => (v === null ? null : Buffer.from(v)));

describe('inlineParameters', () => {
  it('writes each text value as a typed literal, leaving $n inside literals and comments alone', () => {
    const sql = "SELECT 'costs $1', $1 + $10, $2 /* $2 */ FROM t WHERE c = 'é' AND d = $2";
    const values = text('41', "it's a \\ backslash", ...Array(7).fill('0'), '1');
    const typeNames = ['integer', 'text', ...Array(7).fill('integer'), 'bigint'];
    expect(inlineParameters(sql, { values, formats: [], typeNames })).toBe(
      "SELECT 'costs $1', (E'41'::integer) + (E'1'::bigint), (E'it''s a \\\\ backslash'::text) /* $2 */ FROM t WHERE c = 'é' AND d = (E'it''s a \\\\ backslash'::text)",
    );
  });

  it('writes NULL with its type and keeps non-ASCII text whole', () => {
    expect(
      inlineParameters('SELECT $1, $2', { values: text(null, 'naïve ☃'), formats: [0], typeNames: ['date', 'text'] }),
    ).toBe("SELECT (NULL::date), (E'naïve ☃'::text)");
  });

  it('gives up on a binary value, a missing value or SQL that does not lex', () => {
    const values = text('1', '2');
    const typeNames = ['integer', 'integer'];
    expect(inlineParameters('SELECT $1, $2', { values, formats: [0, 1], typeNames })).toBeUndefined();
    expect(inlineParameters('SELECT $1', { values, formats: [1], typeNames })).toBeUndefined();
    expect(inlineParameters('SELECT $3', { values, formats: [], typeNames })).toBeUndefined();
    expect(inlineParameters("SELECT $1, 'open", { values, formats: [], typeNames })).toBeUndefined();
    for (const bad of [Buffer.from('a\u0000b'), Buffer.from([0x61, 0xff])]) {
      expect(inlineParameters('SELECT $1', { values: [bad], formats: [], typeNames })).toBeUndefined();
    }
    // Only the parameters used matter.
    expect(inlineParameters('SELECT $1', { values, formats: [0, 1], typeNames })).toBe("SELECT (E'1'::integer)");
  });
});

describe('readsTheSameLater', () => {
  it('is false only for date and time text naming a moment relative to now', () => {
    const check = (value: string, typeName: string, formats: number[] = []) =>
      readsTheSameLater({ values: text(value), formats, typeNames: [typeName] });
    expect(check('now', 'timestamp with time zone')).toBe(false);
    expect(check('Today', 'date')).toBe(false);
    expect(check('{tomorrow}', 'timestamp without time zone[]')).toBe(false);
    expect(check('[yesterday,)', 'tstzrange')).toBe(false);
    expect(check('2026-11-27 10:00', 'timestamp with time zone')).toBe(true);
    expect(check('I know now', 'text')).toBe(true);
    expect(check('now', 'timestamp with time zone', [1])).toBe(true);
  });
});
