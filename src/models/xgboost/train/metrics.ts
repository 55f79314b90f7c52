/**
 * Evaluation metrics with XGBoost's names and definitions (src/metric/):
 * computed on transformed predictions (probabilities, counts), one value per
 * evaluation set and round.
 */

const LOG_EPS = 1e-16;

export const METRICS = ['rmse', 'mae', 'logloss', 'error', 'auc', 'merror', 'mlogloss', 'poisson-nloglik'] as const;
export type MetricName = (typeof METRICS)[number];

export function isMetric(name: string): name is MetricName {
  return (METRICS as readonly string[]).includes(name);
}

/** AUC is the only one where more is better. */
export function higherIsBetter(metric: MetricName): boolean {
  return metric === 'auc';
}

/**
 * `predictions` holds `width` values per row: 1 (regression, binary probability)
 * or num_class probabilities.
 */
export function evaluateMetric(
  metric: MetricName,
  predictions: Float32Array,
  width: number,
  labels: Float32Array,
): number {
  const n = labels.length;
  if (n === 0) return Number.NaN;
  switch (metric) {
    case 'rmse': {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += (predictions[i] - labels[i]) ** 2;
      return Math.sqrt(sum / n);
    }
    case 'mae': {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += Math.abs(predictions[i] - labels[i]);
      return sum / n;
    }
    case 'logloss': {
      let sum = 0;
      for (let i = 0; i < n; i++) {
        const p = Math.min(Math.max(predictions[i], LOG_EPS), 1 - LOG_EPS);
        const y = labels[i];
        sum -= y * Math.log(p) + (1 - y) * Math.log(1 - p);
      }
      return sum / n;
    }
    case 'error': {
      let wrong = 0;
      for (let i = 0; i < n; i++) wrong += (predictions[i] > 0.5 ? 1 : 0) !== labels[i] ? 1 : 0;
      return wrong / n;
    }
    case 'auc':
      return binaryAuc(predictions, labels);
    case 'merror': {
      let wrong = 0;
      for (let i = 0; i < n; i++) {
        let best = 0;
        for (let k = 1; k < width; k++) if (predictions[i * width + k] > predictions[i * width + best]) best = k;
        if (best !== labels[i]) wrong++;
      }
      return wrong / n;
    }
    case 'mlogloss': {
      let sum = 0;
      for (let i = 0; i < n; i++) {
        const p = predictions[i * width + labels[i]];
        sum -= Math.log(Math.max(p, LOG_EPS));
      }
      return sum / n;
    }
    case 'poisson-nloglik': {
      let sum = 0;
      for (let i = 0; i < n; i++) {
        const y = labels[i];
        const p = Math.max(predictions[i], LOG_EPS);
        sum += logGamma(y + 1) + p - Math.log(p) * y;
      }
      return sum / n;
    }
  }
}

/** Area under the ROC curve, ties counted half (the trapezoid rule XGBoost uses). */
export function binaryAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = labels.length;
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => scores[b] - scores[a]);
  let positives = 0;
  for (let i = 0; i < n; i++) positives += labels[i];
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  let area = 0;
  let tp = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    let groupTp = 0;
    let groupFp = 0;
    while (j < n && scores[order[j]] === scores[order[i]]) {
      groupTp += labels[order[j]];
      groupFp += 1 - labels[order[j]];
      j++;
    }
    area += groupFp * (tp + groupTp / 2);
    tp += groupTp;
    i = j;
  }
  return area / (positives * negatives);
}

/** Lanczos approximation of ln Γ(x), x > 0. */
function logGamma(x: number): number {
  const g = 7;
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let a = c[0];
  const t = z + g + 0.5;
  for (let i = 1; i < g + 2; i++) a += c[i] / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}
