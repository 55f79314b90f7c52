/**
 * The storage of the sets of distinct inputs, made so that nothing grows in
 * one long step: a million-row statement would otherwise hold the gateway's
 * event loop for tens of milliseconds each time an array doubles or a table
 * is rehashed whole.
 */

/** Entries per block (a power of two). */
export const BLOCK_SHIFT = 13;
export const BLOCK_ROWS = 1 << BLOCK_SHIFT;
export const BLOCK_MASK = BLOCK_ROWS - 1;

/** Old buckets moved to the new table per entry added while the table grows. */
const MOVES_PER_ADD = 8;

/**
 * An open-addressing hash table with linear probing over entries numbered
 * 0, 1, 2… in the order they are added; the caller keeps the entries and
 * tells equal ones apart among the entries of the same hash.
 *
 * A table half full is replaced by one twice its size, which the next adds
 * fill from the old one a few buckets at a time, long before it is half full
 * in turn; both are probed meanwhile.
 */
export class HashIndex {
  count = 0;
  /** Two words per bucket: entry + 1 (0 is empty), then the entry's hash, so moving needs no other array. */
  private table: Int32Array;
  private mask: number;
  /** While the table grows: the previous table, whose buckets from `moved` on are not in `table` yet. */
  private old: Int32Array | undefined;
  private oldMask = 0;
  private moved = 0;
  private hash = 0;
  private bucket = 0;
  private probingOld = false;
  /** The empty bucket of `table` where the entry `first` and `next` missed goes. */
  private free = 0;

  /** `entries` (a power of two) fit before the table first grows. */
  constructor(entries: number) {
    this.table = new Int32Array(entries * 4);
    this.mask = entries * 2 - 1;
  }

  /** The first entry kept with `hash`, or -1; `next` gives the others, and a miss is then `add`ed. */
  first(hash: number): number {
    this.hash = hash;
    this.bucket = hash & this.mask;
    this.probingOld = false;
    return this.next();
  }

  next(): number {
    const hash = this.hash;
    if (!this.probingOld) {
      const { table, mask } = this;
      for (let b = this.bucket; ; b = (b + 1) & mask) {
        const entry = table[b * 2];
        if (entry === 0) {
          this.free = b;
          break;
        }
        if (table[b * 2 + 1] === hash) {
          this.bucket = (b + 1) & mask;
          return entry - 1;
        }
      }
      if (this.old === undefined) return -1;
      this.probingOld = true;
      this.bucket = hash & this.oldMask;
    }
    const { old, oldMask } = this;
    for (let b = this.bucket; ; b = (b + 1) & oldMask) {
      const entry = old![b * 2];
      if (entry === 0) return -1;
      if (old![b * 2 + 1] === hash) {
        this.bucket = (b + 1) & oldMask;
        return entry - 1;
      }
    }
  }

  /** Keeps entry `count` under the hash that `first` and `next` just missed. */
  add(): void {
    this.table[this.free * 2] = ++this.count;
    this.table[this.free * 2 + 1] = this.hash;
    if (this.old) this.moveBuckets(MOVES_PER_ADD);
    if (this.count * 4 > this.table.length) this.grow();
  }

  private grow(): void {
    if (this.old) this.moveBuckets(this.oldMask + 1 - this.moved);
    this.old = this.table;
    this.oldMask = this.mask;
    this.moved = 0;
    this.table = new Int32Array(this.table.length * 2);
    this.mask = this.mask * 2 + 1;
  }

  private moveBuckets(count: number): void {
    const { table, mask } = this;
    const old = this.old!;
    const end = Math.min(this.oldMask + 1, this.moved + count);
    for (let from = this.moved; from < end; from++) {
      const entry = old[from * 2];
      if (entry === 0) continue;
      const hash = old[from * 2 + 1];
      let b = hash & mask;
      while (table[b * 2] !== 0) b = (b + 1) & mask;
      table[b * 2] = entry;
      table[b * 2 + 1] = hash;
    }
    this.moved = end;
    if (end === this.oldMask + 1) this.old = undefined;
  }
}

/**
 * `width` int32 fields per entry, entries numbered 0, 1, 2… and kept in
 * blocks: the first block doubles (small copies) until it holds BLOCK_ROWS
 * entries, then each block added is new and nothing is copied.
 */
export class Int32Rows {
  private readonly blocks: Int32Array[];

  constructor(
    private readonly width: number,
    initialRows: number,
  ) {
    this.blocks = [new Int32Array(initialRows * width)];
  }

  /** Makes room for entry `row`, the one after the last entry given room. */
  reserve(row: number): void {
    const block = row >>> BLOCK_SHIFT;
    if (block === this.blocks.length) this.blocks.push(new Int32Array(BLOCK_ROWS * this.width));
    else if (block === 0 && row * this.width >= this.blocks[0].length) {
      const first = new Int32Array(Math.min(this.blocks[0].length * 2, BLOCK_ROWS * this.width));
      first.set(this.blocks[0]);
      this.blocks[0] = first;
    }
  }

  get(row: number, field: number): number {
    return this.blocks[row >>> BLOCK_SHIFT][(row & BLOCK_MASK) * this.width + field];
  }

  set(row: number, field: number, value: number): void {
    this.blocks[row >>> BLOCK_SHIFT][(row & BLOCK_MASK) * this.width + field] = value;
  }
}
