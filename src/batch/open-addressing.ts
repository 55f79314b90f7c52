/**
 * The bucket table of an open-addressing hash set with linear probing: entry
 * index + 1 per bucket, 0 for empty. `size` is a power of two, at least twice
 * the entries, so probes stay short.
 */
export function bucketTable(hashes: Int32Array, count: number, size: number): Int32Array<ArrayBuffer> {
  const table = new Int32Array(size);
  const mask = size - 1;
  for (let i = 0; i < count; i++) {
    let bucket = hashes[i] & mask;
    while (table[bucket] !== 0) bucket = (bucket + 1) & mask;
    table[bucket] = i + 1;
  }
  return table;
}
