import { describe, expect, it } from 'vitest';
import { BinaryArgumentReader, type BinaryArgumentRow, binaryReadable } from '../../src/batch/binary-arguments.js';
import { DistinctFeatureRows } from '../../src/batch/distinct-features.js';
import type { FeatureMatrix } from '../../src/models/types.js';

/** A value of binary COPY: its type decides the bytes. */
type Field = { type: 'text'; value: string } | { type: 20 | 21 | 23 | 701; value: number | bigint } | null;

/** PostgreSQL's binary COPY format, written by hand: header, tuples, trailer. */
function binaryCopy(rows: { fields: Field[]; ctid: [number, number]; xmin: number; file: number }[]): Buffer {
  const parts: Buffer[] = [Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)];
  for (const row of rows) {
    const count = Buffer.alloc(2);
    count.writeInt16BE(row.fields.length + 3);
    parts.push(count);
    for (const field of row.fields) parts.push(encode(field));
    const tid = Buffer.alloc(10);
    tid.writeInt32BE(6);
    tid.writeUInt32BE(row.ctid[0], 4);
    tid.writeUInt16BE(row.ctid[1], 8);
    const ids = Buffer.alloc(16);
    ids.writeInt32BE(4);
    ids.writeUInt32BE(row.xmin, 4);
    ids.writeInt32BE(4, 8);
    ids.writeUInt32BE(row.file, 12);
    parts.push(tid, ids);
  }
  parts.push(Buffer.from([0xff, 0xff]));
  return Buffer.concat(parts);
}

function encode(field: Field): Buffer {
  if (field === null) return Buffer.from([0xff, 0xff, 0xff, 0xff]);
  const sizes = { 701: 8, 20: 8, 21: 2, 23: 4 } as const;
  const body = field.type === 'text' ? Buffer.from(field.value, 'utf8') : Buffer.alloc(sizes[field.type]);
  if (field.type === 701) body.writeDoubleBE(Number(field.value));
  else if (field.type === 20) body.writeBigInt64BE(BigInt(field.value));
  else if (field.type === 21) body.writeInt16BE(Number(field.value));
  else if (field.type !== 'text') body.writeInt32BE(Number(field.value));
  const length = Buffer.alloc(4);
  length.writeInt32BE(body.length);
  return Buffer.concat([length, body]);
}

interface ReadRow extends BinaryArgumentRow {
  inputs: number[];
}

function readAll(chunks: Buffer[], inputTypes: number[]): ReadRow[] {
  const out: ReadRow[] = [];
  const values = new Float64Array(inputTypes.length);
  const reader = new BinaryArgumentReader(inputTypes, {
    place: () => ({ values, start: 0 }),
    row: (row) => out.push({ ...row, inputs: Array.from(values) }),
  });
  for (const chunk of chunks) reader.feed(chunk);
  reader.finish();
  return out;
}

describe('BinaryArgumentReader', () => {
  const types = [701, 20, 21, 23];
  const data = binaryCopy([
    {
      fields: [
        { type: 'text', value: 'xgb' },
        { type: 701, value: -0.1 },
        { type: 20, value: 9007199254740993n },
        { type: 21, value: -32768 },
        { type: 23, value: 2147483647 },
      ],
      ctid: [4294967295, 65535],
      xmin: 4000000000,
      file: 16384,
    },
    {
      fields: [{ type: 'text', value: 'naïve' }, null, { type: 20, value: -9223372036854775808n }, null, null],
      ctid: [0, 1],
      xmin: 3,
      file: 16384,
    },
    {
      fields: [null, { type: 701, value: Number.POSITIVE_INFINITY }, { type: 20, value: -1n }, null, null],
      ctid: [7, 2],
      xmin: 9,
      file: 16384,
    },
  ]);
  const expected = [
    {
      target: 'xgb',
      inputs: [-0.1, Number(9007199254740993n), -32768, 2147483647],
      block: 4294967295,
      offset: 65535,
      xmin: 4000000000,
    },
    { target: 'naïve', inputs: [Number.NaN, Number(-9223372036854775808n), Number.NaN, Number.NaN] },
    { target: null, inputs: [Number.POSITIVE_INFINITY, -1, Number.NaN, Number.NaN], block: 7 },
  ];

  it('decodes each type, NULL as NaN, and the row identity', () => {
    const rows = readAll([data], types);
    expect(rows).toHaveLength(3);
    for (const [i, row] of rows.entries()) expect(row).toMatchObject(expected[i]);
    expect(rows[0].file).toBe(16384);
  });

  it('reads rows that straddle payloads, split at every byte', () => {
    const whole = readAll([data], types);
    for (let split = 1; split < data.length; split++) {
      expect(readAll([data.subarray(0, split), data.subarray(split)], types)).toEqual(whole);
    }
    expect(
      readAll(
        [...data].map((byte) => Buffer.from([byte])),
        types,
      ),
    ).toEqual(whole);
  });

  it('fails clearly on data that ends early or has the wrong shape', () => {
    expect(() => readAll([data.subarray(0, data.length - 2)], types)).toThrow(/ended early/);
    expect(() => readAll([data], [701, 20, 21])).toThrow(/has 8 columns, expected 7/);
    expect(() => readAll([Buffer.from('not binary copy data at all')], types)).toThrow(/signature/);
  });

  it('takes text targets and two or more int2/int4/int8/float8 inputs, float8 only where it prints exactly', () => {
    expect(binaryReadable(25, [701, 20, 21, 23], true)).toBe(true);
    expect(binaryReadable(1043, [701, 701], true)).toBe(true);
    expect(binaryReadable(25, [701, 20], false)).toBe(false); // extra_float_digits < 1 rounds float8's text
    expect(binaryReadable(25, [23, 20], false)).toBe(true);
    expect(binaryReadable(25, [701, 700], true)).toBe(false); // float4 prints differently from its double
    expect(binaryReadable(25, [1700, 23], true)).toBe(false);
    expect(binaryReadable(19, [701, 701], true)).toBe(false);
    expect(binaryReadable(25, [701], true)).toBe(false); // a lone NULL input is an empty CSV line
  });
});

describe('DistinctFeatureRows', () => {
  function collect(cols: number, batchSize: number) {
    const batches: { features: FeatureMatrix; slots: number[] }[] = [];
    let slots = 0;
    const set = new DistinctFeatureRows(cols, batchSize, {
      reserveSlot: () => slots++,
      addFeatureRows: (features, batchSlots) => batches.push({ features, slots: batchSlots }),
    });
    const add = (row: number[]) => {
      const start = set.rowStart();
      row.forEach((v, i) => {
        set.values[start + i] = v;
      });
      return set.commit();
    };
    return { set, add, batches };
  }

  it('gives a repeated row the slot of its first occurrence, and tells -0 from 0', () => {
    const { set, add, batches } = collect(2, 100);
    expect([add([1, 2]), add([2, 1]), add([1, 2]), add([Number.NaN, 0]), add([Number.NaN, 0]), add([-0, 0])]).toEqual([
      0, 1, 0, 2, 2, 3,
    ]);
    expect(add([0, 0])).toBe(4);
    set.flush();
    expect(batches).toHaveLength(1);
    expect(Array.from(batches[0].features.data)).toEqual([1, 2, 2, 1, Number.NaN, 0, -0, 0, 0, 0]);
    expect(batches[0].slots).toEqual([0, 1, 2, 3, 4]);
  });

  it('sends full batches as they fill and keeps recognising rows after growing', () => {
    const { set, add, batches } = collect(3, 1000);
    const slotOf = new Map<number, number>();
    for (let i = 0; i < 50_000; i++) {
      const key = (i * 7919) % 20_000; // 20,000 distinct rows, each seen 2 or 3 times
      const slot = add([key, key / 3, -key]);
      if (slotOf.has(key)) expect(slot).toBe(slotOf.get(key));
      else slotOf.set(key, slot);
    }
    set.flush();
    expect(slotOf.size).toBe(20_000);
    expect(batches.map((b) => b.features.rows)).toEqual(Array(20).fill(1000));
    const rows = batches.flatMap((b) => Array.from({ length: b.features.rows }, (_, r) => b.features.data[r * 3]));
    expect(new Set(rows).size).toBe(20_000);
    expect(batches.flatMap((b) => b.slots)).toEqual(Array.from({ length: 20_000 }, (_, i) => i));
  });

  it('recognises repeats that come while its blocks and hash table grow, and batches rows across blocks', () => {
    const cols = 12;
    const { set, add, batches } = collect(cols, 3000);
    const slotOf = new Map<number, number>();
    let state = 12345;
    for (let i = 0; i < 80_000; i++) {
      state = (state * 1103515245 + 12345) % 2147483648; // repeats spread all along, not only after the new rows
      const key = state % 30_000;
      const slot = add(Array.from({ length: cols }, (_, c) => key * 100 + c));
      if (slotOf.has(key)) expect(slot).toBe(slotOf.get(key));
      else slotOf.set(key, slot);
    }
    set.flush();
    const keys = batches.flatMap((b) =>
      Array.from({ length: b.features.rows }, (_, r) => b.features.data[r * cols] / 100),
    );
    expect(keys.length).toBe(slotOf.size);
    expect(new Set(keys).size).toBe(slotOf.size);
    // Every row's values arrive whole and in order, also where a batch spans two blocks.
    for (const batch of batches) {
      for (let r = 0; r < batch.features.rows; r++) {
        const key = batch.features.data[r * cols] / 100;
        expect(slotOf.get(key)).toBe(batch.slots[r]);
        for (let c = 1; c < cols; c++) expect(batch.features.data[r * cols + c]).toBe(key * 100 + c);
      }
    }
  });
});
