import { describe, expect, it } from 'vitest';
import { formatPythonFloat } from '../../src/models/xgboost/python-float.js';

describe('formatPythonFloat matches Python repr(float)', () => {
  const cases: Array<[number, string]> = [
    [0.5, '0.5'],
    [1, '1.0'],
    [2, '2.0'],
    [-3, '-3.0'],
    [0, '0.0'],
    [-0, '-0.0'],
    [0.0001, '0.0001'],
    [0.00001, '1e-05'],
    [0.000015, '1.5e-05'],
    [1.2345e-7, '1.2345e-07'],
    [123456789.5, '123456789.5'],
    [1e15, '1000000000000000.0'],
    [1e16, '1e+16'],
    [1.5e16, '1.5e+16'],
    [1e100, '1e+100'],
    [5e-324, '5e-324'],
    [Math.fround(0.1), '0.10000000149011612'],
    [Math.fround(0.8762183785438538), '0.8762183785438538'],
    [Number.NaN, 'nan'],
    [Infinity, 'inf'],
    [-Infinity, '-inf'],
  ];
  for (const [value, expected] of cases) {
    it(`${expected}`, () => expect(formatPythonFloat(value)).toBe(expected));
  }
});
