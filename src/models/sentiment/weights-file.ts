/**
 * The on-disk form of the bundled linear models: hashed feature tables quantised to int8.
 *
 *   bytes 0..3   "PGSW"
 *   bytes 4..7   uint32 LE: length of the JSON header that follows
 *   header       JSON: { meta, heads: [{ name, bits, classes, scale, biases }] }
 *   tables       per head, in header order: 2^bits × classes int8 weights, row-major
 *                (the classes of one feature sit together, so scoring reads one cache line)
 *
 * A weight is `int8 × scale`. int8 keeps a 2^20-entry table at 1 MB and costs < 0.3 points of
 * accuracy here; JSON for the small header keeps the format self-describing.
 */
const MAGIC = 'PGSW';

export interface LinearHead {
  name: string;
  /** log2 of the number of hash buckets. */
  bits: number;
  /** Number of output columns: 1 for a logistic head, K for a K-way softmax. */
  classes: number;
  scale: number;
  biases: number[];
  weights: Int8Array;
}

export interface WeightsFile<Meta> {
  meta: Meta;
  heads: Map<string, LinearHead>;
}

interface HeadHeader {
  name: string;
  bits: number;
  classes: number;
  scale: number;
  biases: number[];
}

export function encodeWeightsFile(meta: unknown, heads: LinearHead[]): Uint8Array {
  const header: { meta: unknown; heads: HeadHeader[] } = {
    meta,
    heads: heads.map(({ name, bits, classes, scale, biases }) => ({ name, bits, classes, scale, biases })),
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const tableBytes = heads.reduce((sum, h) => sum + h.weights.length, 0);
  const out = new Uint8Array(8 + json.length + tableBytes);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(4, json.length, true);
  out.set(json, 8);
  let offset = 8 + json.length;
  for (const head of heads) {
    if (head.weights.length !== (1 << head.bits) * head.classes) throw new Error(`head ${head.name}: wrong table size`);
    out.set(new Uint8Array(head.weights.buffer, head.weights.byteOffset, head.weights.length), offset);
    offset += head.weights.length;
  }
  return out;
}

export function decodeWeightsFile<Meta>(bytes: Uint8Array, source = 'weights file'): WeightsFile<Meta> {
  if (new TextDecoder().decode(bytes.subarray(0, 4)) !== MAGIC) throw new Error(`${source}: not a pgsage weights file`);
  const jsonLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + jsonLength))) as {
    meta: Meta;
    heads: HeadHeader[];
  };
  const heads = new Map<string, LinearHead>();
  let offset = 8 + jsonLength;
  for (const h of header.heads) {
    const size = (1 << h.bits) * h.classes;
    if (offset + size > bytes.length) throw new Error(`${source}: truncated in head ${h.name}`);
    // A view, not a copy: loading stays a single read of the file.
    const weights = new Int8Array(bytes.buffer, bytes.byteOffset + offset, size);
    heads.set(h.name, { ...h, weights });
    offset += size;
  }
  return { meta: header.meta, heads };
}

/**
 * Symmetric int8 quantisation. The scale comes from a high quantile of |w| rather than the
 * maximum: a handful of extreme weights would otherwise squash every other weight towards zero.
 */
export function quantize(weights: Float32Array, quantile = 0.9999): { scale: number; weights: Int8Array } {
  const magnitudes = Float32Array.from(weights, Math.abs).sort();
  const limit = magnitudes[Math.min(magnitudes.length - 1, Math.floor(quantile * magnitudes.length))] || 1;
  const scale = limit / 127;
  const out = new Int8Array(weights.length);
  for (let i = 0; i < weights.length; i++) {
    out[i] = Math.max(-127, Math.min(127, Math.round(weights[i] / scale)));
  }
  return { scale, weights: out };
}
