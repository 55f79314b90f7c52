import { copyBytes } from './bytes.js';
import { bucketTable } from './open-addressing.js';

/**
 * Inputs told apart by the bytes of their COPY text, with no string per row:
 * a Map keyed on strings costs a million-row statement about a second of the
 * gateway's event loop, most of it hashing and growing the map. The bytes of
 * each new input are copied into one growing buffer and found again through
 * an open-addressing hash table. The COPY text of a value is one to one with
 * the value, so equal bytes mean equal inputs.
 */
export class DistinctKeyBytes {
  private arena = Buffer.allocUnsafe(64 * 1024);
  private used = 0;
  private starts = new Int32Array(1024);
  private lengths = new Int32Array(1024);
  private hashes = new Int32Array(1024);
  private slots = new Int32Array(1024);
  private count = 0;
  /** Entry index + 1 per bucket; 0 is empty. */
  private table = new Int32Array(2048);
  private mask = 2047;
  private pendingBucket = -1;
  private pendingHash = 0;

  /** The slot of an input seen before, or -1; a miss is then `remember`ed with its new slot. */
  find(bytes: Buffer, start: number, end: number): number {
    const hash = hashBytes(bytes, start, end);
    const length = end - start;
    const { table, mask } = this;
    let bucket = hash & mask;
    for (;;) {
      const entry = table[bucket];
      if (entry === 0) break;
      const i = entry - 1;
      if (
        this.hashes[i] === hash &&
        this.lengths[i] === length &&
        bytes.compare(this.arena, this.starts[i], this.starts[i] + length, start, end) === 0
      ) {
        return this.slots[i];
      }
      bucket = (bucket + 1) & mask;
    }
    this.pendingBucket = bucket;
    this.pendingHash = hash;
    return -1;
  }

  /** Keeps the input `find` just missed, with its slot. */
  remember(bytes: Buffer, start: number, end: number, slot: number): void {
    const length = end - start;
    if (this.used + length > this.arena.length) {
      const arena = Buffer.allocUnsafe(Math.max(this.arena.length * 2, this.used + length));
      this.arena.copy(arena, 0, 0, this.used);
      this.arena = arena;
    }
    if (this.count === this.slots.length) this.growEntries();
    const i = this.count++;
    copyBytes(bytes, start, end, this.arena, this.used);
    this.starts[i] = this.used;
    this.lengths[i] = length;
    this.hashes[i] = this.pendingHash;
    this.slots[i] = slot;
    this.used += length;
    this.table[this.pendingBucket] = i + 1;
    if (this.count * 2 > this.table.length) this.rehash();
  }

  private growEntries(): void {
    const grow = (from: Int32Array) => {
      const to = new Int32Array(from.length * 2);
      to.set(from);
      return to;
    };
    this.starts = grow(this.starts);
    this.lengths = grow(this.lengths);
    this.hashes = grow(this.hashes);
    this.slots = grow(this.slots);
  }

  private rehash(): void {
    this.table = bucketTable(this.hashes, this.count, this.table.length * 2);
    this.mask = this.table.length - 1;
  }
}

/** FNV-1a over the bytes, then MurmurHash3's finalizer so that every byte reaches the low bits. */
function hashBytes(bytes: Buffer, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) & 0x7fffffff;
}
