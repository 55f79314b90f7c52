import { describe, expect, it } from 'vitest';
import { ArgumentRowReader } from '../../src/batch/argument-rows.js';
import { csvFieldConverters } from '../../src/ml/model-input.js';

const copyRow = (fields: (string | null)[]) =>
  Buffer.from(
    `${fields.map((f) => (f === null ? '\\N' : f.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n'))).join('\t')}\n`,
  );

describe('ArgumentRowReader', () => {
  it('reads target, text key, batch size and the row of a sentiment call', () => {
    const reader = new ArgumentRowReader({ batchColumn: true, rowIdentity: true });
    const row = reader.fromCopy(
      copyRow(['en', 'naïve café ☃\twith a tab\\and a backslash', '7', '(4294967295,65535)', '4000000000', '16384']),
    );
    expect(row).toEqual({
      target: 'en',
      key: 'naïve café ☃\twith a tab\\and a backslash',
      batch: 7,
      block: 4294967295,
      offset: 65535,
      xmin: 4000000000,
      file: 16384,
    });
    const empty = reader.fromCopy(copyRow(['en', null, null, '(0,1)', '2', '3']));
    expect(empty).toMatchObject({ target: 'en', key: null, batch: undefined, block: 0, offset: 1 });
  });

  it('turns numeric model inputs into the CSV line, NULL as an empty field', () => {
    const reader = new ArgumentRowReader({
      inputs: csvFieldConverters([701, 23, 1700]),
      numericInputs: true,
      batchColumn: false,
      rowIdentity: true,
    });
    const row = reader.fromCopy(copyRow(['xgb', '1.5', null, '-2e-07', '(1,2)', '3', '4']));
    expect(row).toMatchObject({ target: 'xgb', key: '1.5,,-2e-07', block: 1, offset: 2, xmin: 3, file: 4 });
  });

  it('converts each input on its own when they are not all numbers', () => {
    const reader = new ArgumentRowReader({
      inputs: csvFieldConverters([16, 25, 23]),
      batchColumn: false,
      rowIdentity: false,
    });
    expect(reader.fromCopy(copyRow(['xgb', 't', 'a,"b"', null])).key).toBe('true,"a,""b""",');
    expect(reader.fromValues(['xgb', 'f', 'plain', '3']).key).toBe('false,plain,3');
  });

  it('reads the same layout from extended-protocol values', () => {
    const reader = new ArgumentRowReader({ batchColumn: true, rowIdentity: true });
    expect(reader.fromValues(['en', 'text', null, '(12,3)', '45', '67'])).toEqual({
      target: 'en',
      key: 'text',
      batch: undefined,
      block: 12,
      offset: 3,
      xmin: 45,
      file: 67,
    });
  });
});
