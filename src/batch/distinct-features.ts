import type { FeatureMatrix } from '../models/types.js';
import { bucketTable } from './open-addressing.js';

/** Where full batches of distinct rows go, and where their answers will be. */
export interface FeatureBatchSink {
  reserveSlot(): number;
  addFeatureRows(features: FeatureMatrix, slots: number[]): void;
}

/** Small: a statement may call many endpoints, each with its own set. */
const INITIAL_ROWS = 64;

/**
 * The distinct rows of model inputs of one call target, held as numbers in one
 * growing array and found again through an open-addressing hash table over
 * their bits: no string or object per row, which is what a million-row
 * statement spends most of its gateway time on otherwise.
 *
 * A row is written in place at `next` (the row after the last distinct one),
 * then `commit` either keeps it (a new input: it gets a slot and joins the
 * pending batch) or answers the slot of the equal row seen before.
 */
export class DistinctFeatureRows {
  /** Distinct rows, `cols` values each; the row at `next` is the one being read. */
  values: Float64Array;
  next = 0;
  private words: Int32Array;
  private slots: Int32Array;
  private hashes: Int32Array;
  /** Distinct row index + 1 per bucket; 0 is empty. */
  private table: Int32Array;
  private mask: number;
  private batchStart = 0;

  constructor(
    readonly cols: number,
    private readonly batchSize: number,
    private readonly sink: FeatureBatchSink,
  ) {
    this.values = new Float64Array(INITIAL_ROWS * Math.max(1, cols));
    this.words = new Int32Array(this.values.buffer);
    this.slots = new Int32Array(INITIAL_ROWS);
    this.hashes = new Int32Array(INITIAL_ROWS);
    this.table = new Int32Array(INITIAL_ROWS * 2);
    this.mask = this.table.length - 1;
  }

  /** The offset in `values` where the next row's values go (room is made for them). */
  rowStart(): number {
    if ((this.next + 1) * this.cols > this.values.length) this.grow();
    return this.next * this.cols;
  }

  /** The slot of the row just written at `rowStart()`: its own if new, else the slot of its equal. */
  commit(): number {
    const { words, cols } = this;
    const first = this.next * cols * 2;
    const last = first + cols * 2;
    const hash = hashWords(words, first, last);
    const { table, hashes, mask } = this;
    for (let bucket = hash & mask; ; bucket = (bucket + 1) & mask) {
      const entry = table[bucket];
      if (entry === 0) {
        table[bucket] = this.next + 1;
        break;
      }
      const row = entry - 1;
      if (hashes[row] === hash && sameWords(words, row * cols * 2, first, cols * 2)) return this.slots[row];
    }
    const slot = this.sink.reserveSlot();
    this.slots[this.next] = slot;
    this.hashes[this.next] = hash;
    this.next += 1;
    if (this.next * 2 > this.table.length) this.rehash();
    if (this.next - this.batchStart >= this.batchSize) this.flush();
    return slot;
  }

  /** Sends the distinct rows not yet sent as one batch. */
  flush(): void {
    const { batchStart, next, cols } = this;
    if (next === batchStart) return;
    // A copy: the kept rows are still needed to recognise repeats.
    const data = this.values.slice(batchStart * cols, next * cols);
    this.batchStart = next;
    this.sink.addFeatureRows(
      { data, rows: next - batchStart, cols },
      Array.from(this.slots.subarray(batchStart, next)),
    );
  }

  private grow(): void {
    const values = new Float64Array(this.values.length * 2);
    values.set(this.values);
    this.values = values;
    this.words = new Int32Array(values.buffer);
    const rows = values.length / Math.max(1, this.cols);
    const slots = new Int32Array(rows);
    slots.set(this.slots);
    this.slots = slots;
    const hashes = new Int32Array(rows);
    hashes.set(this.hashes);
    this.hashes = hashes;
  }

  private rehash(): void {
    this.table = bucketTable(this.hashes, this.next, this.table.length * 2);
    this.mask = this.table.length - 1;
  }
}

function sameWords(words: Int32Array, a: number, b: number, count: number): boolean {
  for (let i = 0; i < count; i++) if (words[a + i] !== words[b + i]) return false;
  return true;
}

/** MurmurHash3's 32-bit mixing over the row's words (high bits reach the table's low-bit buckets). */
function hashWords(words: Int32Array, start: number, end: number): number {
  let h = 0x2f0b3c5d;
  for (let i = start; i < end; i++) {
    let k = Math.imul(words[i], 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) & 0x7fffffff;
}
