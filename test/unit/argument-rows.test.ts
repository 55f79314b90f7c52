import { describe, expect, it } from 'vitest';
import { ArgumentRowReader } from '../../src/batch/argument-rows.js';
import { DistinctKeyBytes } from '../../src/batch/distinct-key-bytes.js';
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
      keyStart: 0,
      keyEnd: 0,
      batch: 7,
      block: 4294967295,
      offset: 65535,
      xmin: 4000000000,
      file: 16384,
    });
    const empty = reader.fromCopy(copyRow(['en', null, null, '(0,1)', '2', '3']));
    expect(empty).toMatchObject({ target: 'en', key: null, batch: undefined, block: 0, offset: 1 });
  });

  it('leaves a one-column key as bytes when asked, and tells equal inputs by them', () => {
    const reader = new ArgumentRowReader({ batchColumn: false, rowIdentity: true, keyBytes: true });
    const table = new DistinctKeyBytes();
    const texts = ['naïve\tcafé', 'naïve\tcafé', 'back\\slash', '', 'a', 'ab', 'naïve\tcafé', null];
    let nextSlot = 0;
    const slots = texts.map((text) => {
      const payload = copyRow(['en', text, '(1,2)', '3', '4']);
      const row = reader.fromCopy(payload);
      if (text === null) {
        expect(row.key).toBeNull();
        return -1;
      }
      expect(reader.decodeKey(payload)).toBe(text);
      const known = table.find(payload, row.keyStart, row.keyEnd);
      if (known >= 0) return known;
      table.remember(payload, row.keyStart, row.keyEnd, nextSlot);
      return nextSlot++;
    });
    expect(slots).toEqual([0, 0, 1, 2, 3, 4, 0, -1]);
  });

  it('keeps telling keys apart as its table and buffer grow', () => {
    const table = new DistinctKeyBytes();
    const key = (i: number) => Buffer.from(`x${'é'.repeat(i % 7)}${i}`);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 30_000; i++) {
        const bytes = key(i);
        const found = table.find(bytes, 0, bytes.length);
        if (round === 0) {
          expect(found).toBe(-1);
          table.remember(bytes, 0, bytes.length, i);
        } else {
          expect(found).toBe(i);
        }
      }
    }
  });

  it('recognises repeats that come while its hash table moves to a larger one, and inputs of any length', () => {
    const table = new DistinctKeyBytes();
    const key = (n: number) => {
      // A few inputs larger than its chunks of memory, and the empty one.
      if (n % 5000 === 1) return Buffer.alloc(n === 1 ? 5 * 1024 * 1024 : 70_000, n % 251);
      return Buffer.from(n === 7 ? '' : `[${n}, ${n * 3}, ${'é'.repeat(n % 11)}]`);
    };
    const slotOf = new Map<number, number>();
    let state = 12345;
    for (let i = 0; i < 60_000; i++) {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0; // repeats spread all along, not only of recent inputs
      const n = (state >>> 12) % 20_000;
      const bytes = key(n);
      const found = table.find(bytes, 0, bytes.length);
      const known = slotOf.get(n);
      if (known !== undefined) expect(found).toBe(known);
      else {
        expect(found).toBe(-1);
        table.remember(bytes, 0, bytes.length, 3 * slotOf.size + 1000);
        slotOf.set(n, 3 * slotOf.size + 1000);
      }
    }
    expect(slotOf.size).toBeGreaterThan(18_000);
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
      keyStart: 0,
      keyEnd: 0,
      batch: undefined,
      block: 12,
      offset: 3,
      xmin: 45,
      file: 67,
    });
  });
});
