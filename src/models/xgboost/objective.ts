/**
 * What each XGBoost objective does at prediction time: how the stored base_score
 * becomes the starting margin (ProbToMargin) and how summed margins become the
 * values `Booster.predict` returns (PredTransform). Arithmetic is rounded to
 * float32 at the same points as the C++ code, so results match to the last bits.
 */
import { ModelFormatError } from '../types.js';

/** How SageMaker's container describes the output (selectable inference keys). */
export type OutputKind =
  | 'regression'
  | 'binary-probability'
  | 'binary-margin'
  | 'binary-label'
  | 'multiclass-probabilities'
  | 'multiclass-label';

export interface Objective {
  readonly name: string;
  readonly output: OutputKind;
  /** Stored base_score → initial margin. */
  baseMargin(baseScore: number): number;
  /** Margins (rows × groups, row-major) → predictions; `width` values per row. */
  transform(margins: Float32Array, rows: number, groups: number): { values: Float32Array; width: number };
}

const f32 = Math.fround;

const identity = (x: number) => x;
const logit = (p: number) => f32(-Math.log(f32(f32(1 / p) - 1)));
const log = (x: number) => f32(Math.log(x));
const sigmoid = (x: number) => f32(1 / f32(1 + f32(Math.exp(-x))));
const exp = (x: number) => f32(Math.exp(x));

function elementwise(
  name: string,
  output: OutputKind,
  baseMargin: (s: number) => number,
  apply: (x: number) => number,
): Objective {
  return {
    name,
    output,
    baseMargin,
    transform(margins, _rows, groups) {
      if (apply === identity) return { values: margins, width: groups };
      const values = new Float32Array(margins.length);
      for (let i = 0; i < margins.length; i++) values[i] = apply(margins[i]);
      return { values, width: groups };
    },
  };
}

/** XGBoost's common::Softmax: float exponentials, summed in double, divided as float. */
function softmaxRows(margins: Float32Array, rows: number, groups: number): Float32Array {
  const values = new Float32Array(margins.length);
  for (let r = 0; r < rows; r++) {
    const base = r * groups;
    let max = margins[base];
    for (let k = 1; k < groups; k++) max = Math.max(max, margins[base + k]);
    let sum = 0;
    for (let k = 0; k < groups; k++) {
      const e = f32(Math.exp(f32(margins[base + k] - max)));
      values[base + k] = e;
      sum += e;
    }
    const sum32 = f32(sum);
    for (let k = 0; k < groups; k++) values[base + k] = f32(values[base + k] / sum32);
  }
  return values;
}

/** Index of the largest margin; the first one wins ties, as in XGBoost's FindMaxIndex. */
function argmaxRows(margins: Float32Array, rows: number, groups: number): Float32Array {
  const values = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * groups;
    let best = 0;
    for (let k = 1; k < groups; k++) if (margins[base + k] > margins[base + best]) best = k;
    values[r] = best;
  }
  return values;
}

const OBJECTIVES: Record<string, Objective> = {
  'reg:squarederror': elementwise('reg:squarederror', 'regression', identity, identity),
  'reg:linear': elementwise('reg:linear', 'regression', identity, identity),
  'reg:squaredlogerror': elementwise('reg:squaredlogerror', 'regression', identity, identity),
  'reg:pseudohubererror': elementwise('reg:pseudohubererror', 'regression', identity, identity),
  'reg:absoluteerror': elementwise('reg:absoluteerror', 'regression', identity, identity),
  'reg:quantileerror': elementwise('reg:quantileerror', 'regression', identity, identity),
  'reg:logistic': elementwise('reg:logistic', 'regression', logit, sigmoid),
  'binary:logistic': elementwise('binary:logistic', 'binary-probability', logit, sigmoid),
  // LogisticRaw keeps base_score as a raw margin (measured: 1.7.4 adds 0.5, not logit(0.5) = 0).
  'binary:logitraw': elementwise('binary:logitraw', 'binary-margin', identity, identity),
  'binary:hinge': elementwise('binary:hinge', 'binary-label', identity, (x) => (x > 0 ? 1 : 0)),
  'count:poisson': elementwise('count:poisson', 'regression', log, exp),
  'reg:gamma': elementwise('reg:gamma', 'regression', log, exp),
  'reg:tweedie': elementwise('reg:tweedie', 'regression', log, exp),
  'survival:cox': elementwise('survival:cox', 'regression', log, exp),
  'survival:aft': elementwise('survival:aft', 'regression', log, exp),
  'rank:pairwise': elementwise('rank:pairwise', 'regression', identity, identity),
  'rank:ndcg': elementwise('rank:ndcg', 'regression', identity, identity),
  'rank:map': elementwise('rank:map', 'regression', identity, identity),
  'multi:softprob': {
    name: 'multi:softprob',
    output: 'multiclass-probabilities',
    baseMargin: identity,
    transform: (margins, rows, groups) => ({ values: softmaxRows(margins, rows, groups), width: groups }),
  },
  'multi:softmax': {
    name: 'multi:softmax',
    output: 'multiclass-label',
    baseMargin: identity,
    transform: (margins, rows, groups) => ({ values: argmaxRows(margins, rows, groups), width: 1 }),
  },
};

export const SUPPORTED_OBJECTIVES = Object.keys(OBJECTIVES);

export function objectiveNamed(name: string): Objective {
  const objective = OBJECTIVES[name];
  if (!objective) {
    throw new ModelFormatError(
      `unsupported XGBoost objective "${name}" (supported: ${SUPPORTED_OBJECTIVES.join(', ')})`,
    );
  }
  return objective;
}
