import type { FeatureMatrix } from '../models/types.js';

/** Where full batches of distinct rows go, and where their answers will be. */
export interface FeatureBatchSink {
  reserveSlot(): number;
  addFeatureRows(features: FeatureMatrix, slots: number[]): void;
}

/** Small: a statement may call many endpoints, each with its own set. */
const INITIAL_ROWS = 64;

/**
 * Rows per block of values (a power of two). Past its first block the set
 * grows a block at a time: doubling one array would copy every row kept so
 * far (100 MB at a million rows of 12 inputs) in one go, holding the event
 * loop for tens of milliseconds.
 */
const BLOCK_SHIFT = 13;
const BLOCK_ROWS = 1 << BLOCK_SHIFT;
const BLOCK_MASK = BLOCK_ROWS - 1;

/** Rows moved from the old bucket table to the new one per row committed while the table grows. */
const MOVES_PER_COMMIT = 4;

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
 * Nothing grows in one long step: values go in new blocks, and a full bucket
 * table is replaced by one twice its size that the next rows' commits fill
 * from the old one a few rows at a time (both are probed meanwhile).
 */
export class DistinctFeatureRows {
  /** The block the row at `next` is written to, at `rowStart()`. */
  values: Float64Array;
  next = 0;
  private readonly blocks: Float64Array[] = [];
  /** The same blocks as 32-bit words (what rows are hashed and compared by). */
  private readonly blockWords: Int32Array[] = [];
  private slots: Int32Array;
  private hashes: Int32Array;
  /** Distinct row index + 1 per bucket; 0 is empty. */
  private table: Int32Array;
  private mask: number;
  /** While the table grows: the previous table, which alone holds rows [moved, oldCount). */
  private old: Int32Array | undefined;
  private oldMask = 0;
  private moved = 0;
  private oldCount = 0;
  private batchStart = 0;

  constructor(
    readonly cols: number,
    private readonly batchSize: number,
    private readonly sink: FeatureBatchSink,
  ) {
    this.values = new Float64Array(INITIAL_ROWS * Math.max(1, cols));
    this.blocks.push(this.values);
    this.blockWords.push(new Int32Array(this.values.buffer));
    this.slots = new Int32Array(INITIAL_ROWS);
    this.hashes = new Int32Array(INITIAL_ROWS);
    this.table = new Int32Array(INITIAL_ROWS * 2);
    this.mask = this.table.length - 1;
  }

  /** The offset in `values` where the next row's values go (room is made for them: read `values` after). */
  rowStart(): number {
    const { next, cols } = this;
    const block = next >>> BLOCK_SHIFT;
    const within = next & BLOCK_MASK;
    if (block === this.blocks.length) this.addBlock(new Float64Array(BLOCK_ROWS * Math.max(1, cols)));
    else if ((within + 1) * cols > this.values.length) this.growFirstBlock();
    if (next >= this.slots.length) this.growIndex();
    return within * cols;
  }

  /** The slot of the row just written at `rowStart()`: its own if new, else the slot of its equal. */
  commit(): number {
    const { cols, next } = this;
    const width = cols * 2;
    const words = this.blockWords[next >>> BLOCK_SHIFT];
    const first = (next & BLOCK_MASK) * width;
    const hash = hashWords(words, first, first + width);
    const { table, hashes, mask } = this;
    let bucket = hash & mask;
    for (; ; bucket = (bucket + 1) & mask) {
      const entry = table[bucket];
      if (entry === 0) break;
      const row = entry - 1;
      if (hashes[row] === hash && this.sameRow(row, words, first, width)) return this.slots[row];
    }
    const old = this.old;
    if (old) {
      // Rows not moved yet are only in the old table.
      const oldMask = this.oldMask;
      for (let b = hash & oldMask; ; b = (b + 1) & oldMask) {
        const entry = old[b];
        if (entry === 0) break;
        const row = entry - 1;
        if (hashes[row] === hash && this.sameRow(row, words, first, width)) return this.slots[row];
      }
    }
    table[bucket] = next + 1;
    const slot = this.sink.reserveSlot();
    this.slots[next] = slot;
    this.hashes[next] = hash;
    this.next += 1;
    if (this.old) this.moveRows(MOVES_PER_COMMIT);
    if (this.next * 2 > this.table.length) this.growTable();
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
      Array.from(this.slots.subarray(batchStart, next)),
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

  /** Slots and hashes: four bytes a row each, cheap to copy. */
  private growIndex(): void {
    const slots = new Int32Array(this.slots.length * 2);
    slots.set(this.slots);
    this.slots = slots;
    const hashes = new Int32Array(this.hashes.length * 2);
    hashes.set(this.hashes);
    this.hashes = hashes;
  }

  /**
   * A table twice the size replaces the full one; rows move to it a few per
   * commit, long before it is half full in turn.
   */
  private growTable(): void {
    if (this.old) this.moveRows(this.oldCount - this.moved);
    this.old = this.table;
    this.oldMask = this.mask;
    this.oldCount = this.next;
    this.moved = 0;
    this.table = new Int32Array(this.table.length * 2);
    this.mask = this.table.length - 1;
  }

  private moveRows(count: number): void {
    const { table, mask, hashes } = this;
    const end = Math.min(this.oldCount, this.moved + count);
    for (let row = this.moved; row < end; row++) {
      let bucket = hashes[row] & mask;
      while (table[bucket] !== 0) bucket = (bucket + 1) & mask;
      table[bucket] = row + 1;
    }
    this.moved = end;
    if (end === this.oldCount) this.old = undefined;
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
