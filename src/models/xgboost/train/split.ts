/**
 * Split search over one node's histogram, with XGBoost's arithmetic
 * (src/tree/param.h, split_evaluator.h, hist/evaluate_splits.h):
 *
 *   weight(G, H) = −ThresholdL1(G, α) / (H + λ), clamped to ±max_delta_step, 0 when H < min_child_weight
 *   gain(G, H)   = ThresholdL1(G, α)² / (H + λ)      (max_delta_step = 0)
 *                = −(2·G·w + (H + λ)·w²)             (otherwise, w = weight(G, H))
 *   loss_chg     = gain(left) + gain(right) − gain(parent)
 *
 * Each feature is scanned forward (missing values go right) and, when the node
 * has missing values for it, backward (missing values go left): that is how the
 * default direction of each split is learned.
 */
import type { HistogramCuts } from './quantile.js';

export interface TreeParams {
  readonly eta: number;
  readonly maxDepth: number;
  readonly minChildWeight: number;
  readonly gamma: number;
  readonly lambda: number;
  readonly alpha: number;
  readonly maxDeltaStep: number;
}

export interface SplitCandidate {
  lossChg: number;
  feature: number;
  /** Rows whose bin is at most this go left (−1: none but the missing ones). */
  leftMaxBin: number;
  /** The float32 threshold written to the model: x < value goes left. */
  value: number;
  defaultLeft: boolean;
  leftGrad: number;
  leftHess: number;
  rightGrad: number;
  rightHess: number;
}

/** XGBoost's kRtEps: smaller gains are not splits. */
const RT_EPS = 1e-6;

function thresholdL1(g: number, alpha: number): number {
  if (g > alpha) return g - alpha;
  if (g < -alpha) return g + alpha;
  return 0;
}

export function leafWeight(p: TreeParams, g: number, h: number): number {
  if (h < p.minChildWeight || h <= 0) return 0;
  let w = -thresholdL1(g, p.alpha) / (h + p.lambda);
  if (p.maxDeltaStep !== 0 && Math.abs(w) > p.maxDeltaStep) w = Math.sign(w) * p.maxDeltaStep;
  return w;
}

export function nodeGain(p: TreeParams, g: number, h: number): number {
  if (h <= 0) return 0;
  if (p.maxDeltaStep === 0) {
    const t = thresholdL1(g, p.alpha);
    return (t * t) / (h + p.lambda);
  }
  const w = leafWeight(p, g, h);
  return -(2 * g * w + (h + p.lambda) * w * w);
}

/** CPUExpandEntry::IsValid, less the depth check the grower makes itself. */
export function isUsableSplit(p: TreeParams, split: SplitCandidate | undefined): split is SplitCandidate {
  if (!split || !(split.lossChg > RT_EPS)) return false;
  if (split.leftHess === 0 || split.rightHess === 0) return false;
  return split.lossChg >= p.gamma;
}

/**
 * Best split of a node over `features`, or undefined. `hist` is the node's
 * histogram (pairs per slot), `slotOffsets` where each feature's slots start.
 */
export function findBestSplit(
  p: TreeParams,
  cuts: HistogramCuts,
  slotOffsets: Int32Array,
  hist: Float64Array,
  sumGrad: number,
  sumHess: number,
  features: Int32Array,
): SplitCandidate | undefined {
  const parentGain = nodeGain(p, sumGrad, sumHess);
  const mcw = p.minChildWeight;
  const lambda = p.lambda;
  const plain = p.alpha === 0 && p.maxDeltaStep === 0;
  const { cutPtr, values, minValues } = cuts;
  let best: SplitCandidate | undefined;
  let bestLoss = 0;
  const consider = (
    loss: number,
    feature: number,
    leftMaxBin: number,
    value: number,
    defaultLeft: boolean,
    lg: number,
    lh: number,
    rg: number,
    rh: number,
  ) => {
    best = {
      lossChg: loss,
      feature,
      leftMaxBin,
      value,
      defaultLeft,
      leftGrad: lg,
      leftHess: lh,
      rightGrad: rg,
      rightHess: rh,
    };
    bestLoss = loss;
  };
  for (let k = 0; k < features.length; k++) {
    const f = features[k];
    const cutBegin = cutPtr[f];
    const bins = cutPtr[f + 1] - cutBegin;
    const base = slotOffsets[f] << 1;
    // Forward: bins 0..i left, the rest and the missing values right.
    let lg = 0;
    let lh = 0;
    for (let i = 0; i < bins; i++) {
      lg += hist[base + 2 * i];
      lh += hist[base + 2 * i + 1];
      const rg = sumGrad - lg;
      const rh = sumHess - lh;
      if (lh >= mcw && rh >= mcw) {
        // The common case (no L1, no max_delta_step) inline: this loop runs bins × features × nodes times.
        const loss = Math.fround(
          plain
            ? (lg * lg) / (lh + lambda) + (rg * rg) / (rh + lambda) - parentGain
            : nodeGain(p, lg, lh) + nodeGain(p, rg, rh) - parentGain,
        );
        if (loss > bestLoss && Number.isFinite(loss)) consider(loss, f, i, values[cutBegin + i], false, lg, lh, rg, rh);
      }
    }
    const missingGrad = hist[base + 2 * bins];
    const missingHess = hist[base + 2 * bins + 1];
    if (missingGrad === 0 && missingHess === 0) continue;
    // Backward: bins i.. right, the lower bins and the missing values left.
    let rg = 0;
    let rh = 0;
    for (let i = bins - 1; i >= 0; i--) {
      rg += hist[base + 2 * i];
      rh += hist[base + 2 * i + 1];
      const leftG = sumGrad - rg;
      const leftH = sumHess - rh;
      if (rh >= mcw && leftH >= mcw) {
        const loss = Math.fround(nodeGain(p, leftG, leftH) + nodeGain(p, rg, rh) - parentGain);
        if (loss > bestLoss && Number.isFinite(loss)) {
          const value = i === 0 ? minValues[f] : values[cutBegin + i - 1];
          consider(loss, f, i - 1, value, true, leftG, leftH, rg, rh);
        }
      }
    }
  }
  return best;
}
