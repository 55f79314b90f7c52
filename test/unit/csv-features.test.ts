import { describe, expect, it } from 'vitest';
import { parseCsvFeatures } from '../../src/models/csv-features.js';
import { ModelInputError } from '../../src/models/types.js';

const rowsOf = (body: string | Buffer, cols?: number) => {
  const m = parseCsvFeatures(body, cols);
  return Array.from({ length: m.rows }, (_, r) => Array.from(m.data.subarray(r * m.cols, (r + 1) * m.cols)));
};

function errorOf(fn: () => unknown): ModelInputError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ModelInputError);
    return error as ModelInputError;
  }
  throw new Error('expected a ModelInputError');
}

describe('parseCsvFeatures', () => {
  it('reads rows and columns, with \\n or \\r\\n and an optional trailing newline', () => {
    expect(rowsOf('1,2,3\n4,5,6')).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(rowsOf('1,2,3\r\n4,5,6\r\n')).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const m = parseCsvFeatures(Buffer.from('1.5,-2\n'));
    expect(m.rows).toBe(1);
    expect(m.cols).toBe(2);
  });

  it('takes empty fields as missing (NaN), including first, last and whole-row ones', () => {
    expect(rowsOf(',2,\n,,\n4,,6')).toEqual([
      [Number.NaN, 2, Number.NaN],
      [Number.NaN, Number.NaN, Number.NaN],
      [4, Number.NaN, 6],
    ]);
    expect(rowsOf('1,2,')).toEqual([[1, 2, Number.NaN]]);
  });

  it('unquotes RFC 4180 fields', () => {
    expect(rowsOf('"1.5",2,""\n" 3 ","4",5')).toEqual([
      [1.5, 2, Number.NaN],
      [3, 4, 5],
    ]);
  });

  it('parses numbers exactly as a correctly rounded decimal conversion would', () => {
    const texts = [
      '0.1',
      '-0.3',
      '123456.789',
      '1e-7',
      '2.5E+10',
      '1.7976931348623157e308',
      '0.000123',
      '.5',
      '5.',
      '123456789012345678',
      '0.30000000000000004',
      '+7',
      '3.14159265358979323846',
      '-0',
    ];
    const m = parseCsvFeatures(texts.join(','));
    texts.forEach((t, i) => {
      expect(Object.is(m.data[i], Number(t)), t).toBe(true);
    });
  });

  it('accepts the special values Python float() accepts', () => {
    const [row] = rowsOf('nan,NaN,inf,-Infinity, 7 ');
    expect(row.slice(0, 2).every(Number.isNaN)).toBe(true);
    expect(row.slice(2)).toEqual([Infinity, -Infinity, 7]);
  });

  it('names the row (1-based) and column of a non-numeric field', () => {
    const error = errorOf(() => parseCsvFeatures('1,2,3\n4,abc,6\n'));
    expect(error.message).toMatch(/row 2, column 2/);
    expect(error.message).toContain('abc');
    expect(error.row).toBe(1);
    for (const bad of ['0x10', '1.2.3', '-', '1e', '1,2 3', '"a"', '"1" x']) {
      expect(() => parseCsvFeatures(bad), bad).toThrow(ModelInputError);
    }
  });

  it('checks the column count against the first row or the expected count', () => {
    expect(errorOf(() => parseCsvFeatures('1,2\n3\n')).message).toMatch(/row 2 has 1 columns, expected 2/);
    expect(errorOf(() => parseCsvFeatures('1,2,3', 4)).message).toMatch(/row 1 has 3 columns, expected 4/);
    expect(parseCsvFeatures('1,2,3,4', 4).cols).toBe(4);
  });

  it('ignores blank lines and whitespace around the whole body, as the containers strip() it', () => {
    expect(rowsOf('\n1,2\n3,4\n\n\n')).toEqual([
      [1, 2],
      [3, 4],
    ]);
    const empty = parseCsvFeatures('', 3);
    expect(empty.rows).toBe(0);
    expect(empty.cols).toBe(3);
    expect(parseCsvFeatures('\n').rows).toBe(0);
  });

  it('reads a large body with many columns', () => {
    const rows = 2000;
    const cols = 30;
    const lines = Array.from({ length: rows }, (_, r) =>
      Array.from({ length: cols }, (_, c) => ((r * cols + c) % 97) / 8).join(','),
    );
    const m = parseCsvFeatures(Buffer.from(lines.join('\n')));
    expect(m.rows).toBe(rows);
    expect(m.cols).toBe(cols);
    expect(m.data[rows * cols - 1]).toBe(((rows * cols - 1) % 97) / 8);
  });
});
