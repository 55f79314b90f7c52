/**
 * The gradient/hessian histogram kernel, shared by the training thread and its
 * helper threads. A node's histogram holds, for every feature, one (Σgrad, Σhess)
 * pair per bin plus one for missing values (the `bins` slot), interleaved in a
 * Float64Array (XGBoost also sums in double: GradientPairPrecise).
 */

/** Shared, read-only view of the binned training matrix. */
export interface BinnedMatrix {
  readonly bins: Uint16Array;
  readonly rows: number;
  readonly cols: number;
  /** Start of feature f's slots in a histogram (f's bins + 1 missing slot). */
  readonly slotOffsets: Int32Array;
  /** Slots per histogram (Σ (bins + 1)). */
  readonly slots: number;
}

/**
 * Adds the rows `rowIndex[begin..end)` into `hist` (starting at `histOffset`, already
 * zeroed by the caller). Rows with zero gradient and hessian (left out by subsample)
 * are skipped: they change no sum.
 */
export function accumulateHistogram(
  matrix: BinnedMatrix,
  grad: Float32Array,
  hess: Float32Array,
  rowIndex: Int32Array,
  begin: number,
  end: number,
  hist: Float64Array,
  histOffset: number,
): void {
  const { bins, cols, slotOffsets } = matrix;
  for (let i = begin; i < end; i++) {
    const r = rowIndex[i];
    const g = grad[r];
    const h = hess[r];
    if (g === 0 && h === 0) continue;
    const base = r * cols;
    for (let f = 0; f < cols; f++) {
      const slot = histOffset + ((slotOffsets[f] + bins[base + f]) << 1);
      hist[slot] += g;
      hist[slot + 1] += h;
    }
  }
}

/** Histogram layout for a binned matrix: each feature's bins and its missing slot. */
export function slotLayout(binCounts: ArrayLike<number>): { slotOffsets: Int32Array; slots: number } {
  const slotOffsets = new Int32Array(binCounts.length);
  let slots = 0;
  for (let f = 0; f < binCounts.length; f++) {
    slotOffsets[f] = slots;
    slots += binCounts[f] + 1;
  }
  return { slotOffsets, slots };
}
