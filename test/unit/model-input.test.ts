import { describe, expect, it } from 'vitest';
import { csvFieldConverters, modelInputToCsv } from '../../src/ml/model-input.js';
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

describe('modelInputToCsv on rows of plain values', () => {
  it('gives the same line as the general scanner for numbers, NULLs and booleans', () => {
    expect(modelInputToCsv('[1.5, null, -2e-07, true, false, 0]')).toBe('1.5,,-2e-07,true,false,0');
    expect(modelInputToCsv('[null]')).toBe('');
    expect(modelInputToCsv('[null, null]')).toBe(',');
    expect(modelInputToCsv('[]')).toBe('');
    expect(modelInputToCsv('[ 7 ,8 ]')).toBe('7,8');
  });

  it('still refuses what is not JSON', () => {
    expect(() => modelInputToCsv('[1, nope]')).toThrowError(SqlError);
    expect(() => modelInputToCsv('[1,, 2]')).toThrowError(SqlError);
  });
});

describe('csvFieldConverters', () => {
  it('writes each column as the JSON array would have: numbers as is, booleans as words, text quoted when needed', () => {
    const converters = csvFieldConverters([23, 701, 1700, 16, 25, 1043])!;
    const line = ['1', 'NaN', '123456789.000000000001', 't', 'a,"b"', null].map((v, i) => converters[i](v)).join(',');
    expect(line).toBe(modelInputToCsv('[1, "NaN", 123456789.000000000001, true, "a,\\"b\\"", null]'));
  });

  it('declines types whose JSON form is not their text output', () => {
    expect(csvFieldConverters([23, 1082 /* date */])).toBeUndefined();
    expect(csvFieldConverters([1007 /* int4[] */])).toBeUndefined();
  });
});
