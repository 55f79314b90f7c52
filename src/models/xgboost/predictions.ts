/**
 * XGBoost predictions in the shapes SageMaker's XGBoost container answers with.
 *
 * text/csv: one line per row. The container itself prints `str(float)` of each
 * prediction (so "1.0" for a class index, "1e-05" for small values) — we print
 * the same text. A multi:softprob row is its class probabilities, comma-separated.
 * (The real-time container joins the per-row values of one request with ","
 * rather than "\n" unless SAGEMAKER_BATCH is set; joining lines is the caller's job.)
 *
 * application/json: the container only answers JSON when "selectable inference"
 * is on (SAGEMAKER_INFERENCE_OUTPUT=predicted_label,probability,…); the body is
 * then `{"predictions": [{key: value, …}, …]}`. `json()` returns that shape with
 * the keys listed in DEFAULT_KEYS; `select(keys)` gives any other selection with
 * the container's semantics (serve_utils.get_selected_predictions).
 */
import type { Predictions } from '../types.js';
import type { Objective, OutputKind } from './objective.js';
import { formatPythonFloat } from './python-float.js';

export const SELECTABLE_KEYS = [
  'predicted_label',
  'labels',
  'probability',
  'probabilities',
  'raw_score',
  'raw_scores',
  'predicted_score',
] as const;
export type SelectableKey = (typeof SELECTABLE_KEYS)[number];

const CLASSIFICATION_KEYS: SelectableKey[] = ['predicted_label', 'labels', 'raw_score', 'raw_scores'];

/** Keys the container allows per objective; others come back as null (the container sends NaN). */
const VALID_KEYS: Record<OutputKind, readonly SelectableKey[]> = {
  regression: ['predicted_score'],
  'binary-probability': [...CLASSIFICATION_KEYS, 'probability', 'probabilities'],
  'binary-margin': CLASSIFICATION_KEYS,
  'binary-label': CLASSIFICATION_KEYS,
  'multiclass-label': CLASSIFICATION_KEYS,
  'multiclass-probabilities': [...CLASSIFICATION_KEYS, 'probability', 'probabilities'],
};

export const DEFAULT_KEYS: Record<OutputKind, readonly SelectableKey[]> = {
  regression: ['predicted_score'],
  'binary-probability': ['predicted_label', 'probability'],
  'binary-margin': ['predicted_label', 'raw_score'],
  'binary-label': ['predicted_label', 'raw_score'],
  'multiclass-label': ['predicted_label'],
  'multiclass-probabilities': ['predicted_label', 'probabilities'],
};

export class XGBoostPredictions implements Predictions {
  constructor(
    /** Row-major predictions exactly as Booster.predict returns them (float32). */
    readonly values: Float32Array,
    /** Values per row: 1, or the class count for multi:softprob, or the target count. */
    readonly width: number,
    readonly rows: number,
    private readonly objective: Objective,
    private readonly numClass: number,
  ) {}

  /** Predictions of one row, widened to double (Python's `.tolist()`). */
  row(r: number): number[] {
    return Array.from(this.values.subarray(r * this.width, (r + 1) * this.width));
  }

  csvLines(): string[] {
    const lines = new Array<string>(this.rows);
    const { values, width } = this;
    for (let r = 0; r < this.rows; r++) {
      if (width === 1) {
        lines[r] = formatPythonFloat(values[r]);
        continue;
      }
      const parts = new Array<string>(width);
      for (let k = 0; k < width; k++) parts[k] = formatPythonFloat(values[r * width + k]);
      lines[r] = parts.join(',');
    }
    return lines;
  }

  json(): { predictions: Record<string, unknown>[] } {
    return { predictions: this.select(DEFAULT_KEYS[this.objective.output]) };
  }

  /** SageMaker's selectable-inference content for every row, keys in the order given. */
  select(keys: readonly string[]): Record<string, unknown>[] {
    const valid = new Set<string>(VALID_KEYS[this.objective.output]);
    const out = new Array<Record<string, unknown>>(this.rows);
    for (let r = 0; r < this.rows; r++) {
      const entry: Record<string, unknown> = {};
      for (const key of keys) entry[key] = valid.has(key) ? this.selected(key as SelectableKey, r) : null;
      out[r] = entry;
    }
    return out;
  }

  private selected(key: SelectableKey, r: number): unknown {
    const kind = this.objective.output;
    const row = this.row(r);
    const scalar = row[0];
    const isMultiProb = kind === 'multiclass-probabilities';
    switch (key) {
      case 'predicted_label':
        if (isMultiProb) return argmax(row);
        if (kind === 'binary-probability') return scalar > 0.5 ? 1 : 0;
        if (kind === 'binary-margin') return scalar > 0 ? 1 : 0;
        return scalar;
      case 'labels':
        return kind.startsWith('binary') ? [0, 1] : Array.from({ length: this.numClass }, (_, i) => i);
      case 'probability':
      case 'raw_score':
        return isMultiProb ? Math.max(...row) : scalar;
      case 'probabilities':
      case 'raw_scores':
        return isMultiProb ? row : [1 - scalar, scalar];
      case 'predicted_score':
        return this.width === 1 ? scalar : row;
    }
  }
}

function argmax(values: number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
