/**
 * murmur3's 32-bit finaliser: spreads the weak low bits of an FNV-1a hash before
 * it is masked to a table index. The shipped sentiment and language weights were
 * learned with features hashed through it, so it must not change.
 */
export function murmur3Finalize(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
