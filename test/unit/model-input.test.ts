import { describe, expect, it } from 'vitest';
import { modelInputToCsv } from '../../src/ml/model-input.js';
import { SqlError } from '../../src/util/errors.js';

describe('modelInputToCsv', () => {
  it('writes values in argument order with NULL as an empty field', () => {
    expect(modelInputToCsv('[1, "2020-01-02", null, 3.5]')).toBe('1,2020-01-02,,3.5');
  });

  it('keeps every digit of numeric values', () => {
    expect(modelInputToCsv('[123456789012345678901234567890.000000000001]')).toBe(
      '123456789012345678901234567890.000000000001',
    );
  });

  it('flattens one-dimensional arrays in place, NULL elements included', () => {
    expect(modelInputToCsv('[0, [1.5, null, 2], 3]')).toBe('0,1.5,,2,3');
    expect(modelInputToCsv('[[]]')).toBe('');
  });

  it('refuses multi-dimensional arrays with a clear error', () => {
    expect(() => modelInputToCsv('[[[1, 2], [3, 4]]]')).toThrowError(/multi-dimensional/);
    expect(() => modelInputToCsv('[[[1]]]')).toThrowError(expect.objectContaining({ sqlstate: '22023' }));
  });

  it('quotes text per RFC 4180 only when needed', () => {
    expect(modelInputToCsv('["plain", "a,b", "say \\"hi\\"", "line\\nbreak", "tab\\tok"]')).toBe(
      'plain,"a,b","say ""hi""","line\nbreak",tab\tok',
    );
  });

  it('decodes unicode escapes and keeps non-ASCII text', () => {
    expect(modelInputToCsv('["caf\\u00e9", "日本"]')).toBe('café,日本');
  });

  it('refuses composite values', () => {
    expect(() => modelInputToCsv('[{"a": 1}]')).toThrowError(SqlError);
  });
});
