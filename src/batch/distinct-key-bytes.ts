import { copyBytes } from './bytes.js';
import { HashIndex, Int32Rows } from './open-addressing.js';

/** Small: a statement may call many targets, each with its own set. */
const INITIAL_ENTRIES = 1024;
const FIRST_CHUNK_BYTES = 64 * 1024;
/**
 * The inputs' bytes go in chunks, each new one twice the size of the last up
 * to this one; a full chunk stays as it is, so no bytes are copied again.
 */
const CHUNK_BYTES = 4 * 1024 * 1024;

/** Entry fields in `entries`. */
const CHUNK = 0;
const START = 1;
const LENGTH = 2;
const SLOT = 3;

/**
 * Inputs told apart by the bytes of their COPY text, with no string per row:
 * a Map keyed on strings costs a million-row statement about a second of the
 * gateway's event loop, most of it hashing and growing the map. The bytes of
 * each new input are copied into chunks of memory and found again through an
 * open-addressing hash table. The COPY text of a value is one to one with
 * the value, so equal bytes mean equal inputs.
 */
export class DistinctKeyBytes {
  private readonly chunks: Buffer[] = [Buffer.allocUnsafe(FIRST_CHUNK_BYTES)];
  private used = 0;
  private readonly entries = new Int32Rows(4, INITIAL_ENTRIES);
  private readonly index = new HashIndex(INITIAL_ENTRIES);

  /** The slot of an input seen before, or -1; a miss is then `remember`ed with its new slot. */
  find(bytes: Buffer, start: number, end: number): number {
    const length = end - start;
    const { entries, index } = this;
    for (let i = index.first(hashBytes(bytes, start, end)); i >= 0; i = index.next()) {
      if (entries.get(i, LENGTH) !== length) continue;
      const at = entries.get(i, START);
      const chunk = this.chunks[entries.get(i, CHUNK)];
      if (bytes.compare(chunk, at, at + length, start, end) === 0) return entries.get(i, SLOT);
    }
    return -1;
  }

  /** Keeps the input `find` just missed, with its slot. */
  remember(bytes: Buffer, start: number, end: number, slot: number): void {
    const length = end - start;
    let chunk = this.chunks[this.chunks.length - 1];
    if (this.used + length > chunk.length) {
      chunk = Buffer.allocUnsafe(Math.max(Math.min(chunk.length * 2, CHUNK_BYTES), length));
      this.chunks.push(chunk);
      this.used = 0;
    }
    copyBytes(bytes, start, end, chunk, this.used);
    const { entries, index } = this;
    const i = index.count;
    entries.reserve(i);
    entries.set(i, CHUNK, this.chunks.length - 1);
    entries.set(i, START, this.used);
    entries.set(i, LENGTH, length);
    entries.set(i, SLOT, slot);
    this.used += length;
    index.add();
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
