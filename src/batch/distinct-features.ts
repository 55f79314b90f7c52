import type { FeatureMatrix } from '../models/types.js';
import { BLOCK_MASK, BLOCK_ROWS, BLOCK_SHIFT, HashIndex, Int32Rows } from './open-addressing.js';

/** Where full batches of distinct rows go, and where their answers will be. */
export interface FeatureBatchSink {
  reserveSlot(): number;
  addFeatureRows(features: FeatureMatrix, slots: number[]): void;
}

/** Small: a statement may call many endpoints, each with its own set. */
const INITIAL_ROWS = 64;

/**
 * The distinct rows of model inputs of one call target, held as numbers in
 * blocks of one array each and found again through an open-addressing hash
 * table over their bits: no string or object per row, which is what a
 * million-row statement spends most of its gateway time on otherwise.
 *
 * A row is written in place at `next` (the row after the last distinct one),
 * then `commit` either keeps it (a new input: it gets a slot and joins the
 * pending batch) or answers the slot of the equal row seen before.
 *
 * Nothing grows in one long step: values go in new blocks, like slots and
 * the hash table (open-addressing.ts).
 */
export class DistinctFeatureRows {
  /** The block the row at `next` is written to, at `rowStart()`. */
  values: Float64Array;
  next = 0;
  private readonly blocks: Float64Array[] = [];
  /** The same blocks as 32-bit words (what rows are hashed and compared by). */
  private readonly blockWords: Int32Array[] = [];
  private readonly slots = new Int32Rows(1, INITIAL_ROWS);
  private readonly index = new HashIndex(INITIAL_ROWS);
  private batchStart = 0;

  constructor(
    readonly cols: number,
    private readonly batchSize: number,
    private readonly sink: FeatureBatchSink,
  ) {
    this.values = new Float64Array(INITIAL_ROWS * Math.max(1, cols));
    this.blocks.push(this.values);
    this.blockWords.push(new Int32Array(this.values.buffer));
  }

  /** The offset in `values` where the next row's values go (room is made for them: read `values` after). */
  rowStart(): number {
    const { next, cols } = this;
    const block = next >>> BLOCK_SHIFT;
    const within = next & BLOCK_MASK;
    if (block === this.blocks.length) this.addBlock(new Float64Array(BLOCK_ROWS * Math.max(1, cols)));
    else if ((within + 1) * cols > this.values.length) this.growFirstBlock();
    this.slots.reserve(next);
    return within * cols;
  }

  /** The slot of the row just written at `rowStart()`: its own if new, else the slot of its equal. */
  commit(): number {
    const { cols, next } = this;
    const width = cols * 2;
    const words = this.blockWords[next >>> BLOCK_SHIFT];
    const first = (next & BLOCK_MASK) * width;
    const hash = hashWords(words, first, first + width);
    const { index } = this;
    for (let row = index.first(hash); row >= 0; row = index.next()) {
      if (this.sameRow(row, words, first, width)) return this.slots.get(row, 0);
    }
    index.add();
    const slot = this.sink.reserveSlot();
    this.slots.set(next, 0, slot);
    this.next += 1;
    if (this.next - this.batchStart >= this.batchSize) this.flush();
    return slot;
  }

  /** Sends the distinct rows not yet sent as one batch. */
  flush(): void {
    const { batchStart, next, cols } = this;
    if (next === batchStart) return;
    // A copy: the kept rows are still needed to recognise repeats.
    const data = new Float64Array((next - batchStart) * cols);
    for (let row = batchStart; row < next; ) {
      const within = row & BLOCK_MASK;
      const count = Math.min(next - row, BLOCK_ROWS - within);
      data.set(
        this.blocks[row >>> BLOCK_SHIFT].subarray(within * cols, (within + count) * cols),
        (row - batchStart) * cols,
      );
      row += count;
    }
    this.batchStart = next;
    this.sink.addFeatureRows(
      { data, rows: next - batchStart, cols },
      Array.from({ length: next - batchStart }, (_, i) => this.slots.get(batchStart + i, 0)),
    );
  }

  private sameRow(row: number, words: Int32Array, first: number, width: number): boolean {
    const other = this.blockWords[row >>> BLOCK_SHIFT];
    const at = (row & BLOCK_MASK) * width;
    for (let i = 0; i < width; i++) if (other[at + i] !== words[first + i]) return false;
    return true;
  }

  private addBlock(values: Float64Array): void {
    this.blocks.push(values);
    this.blockWords.push(new Int32Array(values.buffer));
    this.values = values;
  }

  /** The first block doubles (small copies) until it holds BLOCK_ROWS rows. */
  private growFirstBlock(): void {
    const values = new Float64Array(Math.min(this.values.length * 2, BLOCK_ROWS * Math.max(1, this.cols)));
    values.set(this.values);
    this.blocks[0] = values;
    this.blockWords[0] = new Int32Array(values.buffer);
    this.values = values;
  }
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
