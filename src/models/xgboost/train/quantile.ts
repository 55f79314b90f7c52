/**
 * Histogram cuts, as XGBoost's `tree_method=hist` makes them (common/quantile.h,
 * HistogramCuts): per feature, a weighted quantile summary of the non-missing
 * values is pruned to `max_bin + 1` entries (WQSummary::SetPrune), its minimum
 * is dropped, and a sentinel above the maximum closes the last bin. A value's
 * bin is the first cut strictly greater than it (SearchBin: upper_bound).
 *
 * The sketch (sketch.ts) is XGBoost's own, fed in row order, so the cuts are the
 * real library's for the same data. All arithmetic on values is float32, as in XGBoost.
 */

import { QuantileSketch, Summary } from './sketch.js';

const f32 = Math.fround;
/** WQSketch::kFactor: the sketch keeps 8 entries per bin it will be cut into. */
const SKETCH_FACTOR = 8;

export interface HistogramCuts {
  readonly numFeatures: number;
  /** cutPtr[f]..cutPtr[f+1]: feature f's cut values in `values`. */
  readonly cutPtr: Int32Array;
  /** Upper bound of each bin (float32). */
  readonly values: Float32Array;
  /** Per feature: below every value (the split point of "everything non-missing goes right"). */
  readonly minValues: Float32Array;
}

export function binsOf(cuts: HistogramCuts, feature: number): number {
  return cuts.cutPtr[feature + 1] - cuts.cutPtr[feature];
}

/** Cuts for every column of a row-major float32 matrix; NaN is missing and takes no part. */
export function computeCuts(data: Float32Array, rows: number, cols: number, maxBin: number): HistogramCuts {
  if (!Number.isInteger(maxBin) || maxBin < 2) throw new RangeError('max_bin must be an integer of at least 2');
  const cutPtr = new Int32Array(cols + 1);
  const minValues = new Float32Array(cols);
  const perFeature: number[][] = [];
  const column = new Float32Array(rows);
  for (let f = 0; f < cols; f++) {
    let n = 0;
    for (let r = 0; r < rows; r++) {
      const x = data[r * cols + f];
      if (!Number.isNaN(x)) column[n++] = x;
    }
    const cutsOfFeature = featureCuts(column.subarray(0, n), maxBin, minValues, f);
    perFeature.push(cutsOfFeature);
    cutPtr[f + 1] = cutPtr[f] + cutsOfFeature.length;
  }
  const values = new Float32Array(cutPtr[cols]);
  perFeature.forEach((list, f) => {
    values.set(list, cutPtr[f]);
  });
  return { numFeatures: cols, cutPtr, values, minValues };
}

/** One feature's cut values from its non-missing values in row order. */
function featureCuts(column: Float32Array, maxBin: number, minValues: Float32Array, f: number): number[] {
  if (column.length === 0) {
    // XGBoost's empty column: min value 1e-5 and a single sentinel cut above it.
    const mval = f32(1e-5);
    minValues[f] = mval;
    return [f32(mval + f32(Math.abs(mval) + f32(1e-5)))];
  }
  const n = column.length;
  const sketchBins = Math.max(Math.min(maxBin, n), 1);
  const sketch = new QuantileSketch(n, 1 / (sketchBins * SKETCH_FACTOR));
  for (let i = 0; i < n; i++) sketch.push(column[i]);
  // Two prunes, as XGBoost's SketchContainer: to max_bin·8 entries (AllReduce), then to max_bin + 1 (MakeCuts).
  const intermediateSize = Math.min(n, maxBin * SKETCH_FACTOR);
  const intermediate = new Summary(intermediateSize);
  intermediate.setPrune(sketch.summary(), intermediateSize);
  const final = new Summary(maxBin + 1);
  final.setPrune(intermediate, Math.min(intermediateSize, maxBin) + 1);

  const mval = final.value[0];
  minValues[f] = f32(mval - f32(Math.abs(mval) + f32(1e-5)));
  const cuts: number[] = [];
  const required = Math.min(final.size, maxBin);
  for (let i = 1; i < required; i++) {
    const cpt = final.value[i];
    if (i === 1 || cpt > cuts[cuts.length - 1]) cuts.push(cpt);
  }
  const last = final.value[final.size - 1];
  cuts.push(f32(last + f32(Math.abs(last) + f32(1e-5))));
  return cuts;
}

/**
 * Every value's bin, row-major, feature-local (0 … bins−1); a missing value gets
 * `bins` (one past the last), a slot the histogram keeps but split search ignores.
 */
export function binMatrix(cuts: HistogramCuts, data: Float32Array, rows: number, out: Uint16Array): void {
  const cols = cuts.numFeatures;
  const { cutPtr, values } = cuts;
  for (let f = 0; f < cols; f++) {
    const begin = cutPtr[f];
    const end = cutPtr[f + 1];
    const bins = end - begin;
    for (let r = 0; r < rows; r++) {
      const at = r * cols + f;
      const x = data[at];
      if (Number.isNaN(x)) {
        out[at] = bins;
        continue;
      }
      // upper_bound: first cut > x; values above the sentinel (unseen in training) take the last bin.
      let lo = begin;
      let hi = end;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (values[mid] > x) hi = mid;
        else lo = mid + 1;
      }
      out[at] = lo === end ? bins - 1 : lo - begin;
    }
  }
}
