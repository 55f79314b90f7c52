/**
 * Gradients and hessians of the training objectives, as XGBoost 1.7 computes
 * them (src/objective/regression_loss.h, multiclass_obj.cu): float32, with the
 * hessian floored at 1e-16 where it can vanish. Margins come in rows × groups.
 */

const f32 = Math.fround;
const EPS = 1e-16;

export const TRAINABLE_OBJECTIVES = [
  'reg:squarederror',
  'reg:linear',
  'reg:logistic',
  'binary:logistic',
  'binary:logitraw',
  'multi:softprob',
  'multi:softmax',
  'count:poisson',
] as const;
export type TrainableObjective = (typeof TRAINABLE_OBJECTIVES)[number];

export interface ObjectiveSettings {
  readonly name: TrainableObjective;
  readonly numClass: number;
  readonly scalePosWeight: number;
  /** count:poisson's max_delta_step (default 0.7), which also enters its hessian. */
  readonly poissonMaxDeltaStep: number;
}

export function groupsOf(settings: ObjectiveSettings): number {
  return settings.name.startsWith('multi:') ? settings.numClass : 1;
}

/** Checks labels before training, with XGBoost's own complaints. */
export function checkLabels(settings: ObjectiveSettings, labels: Float32Array): void {
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    switch (settings.name) {
      case 'reg:logistic':
      case 'binary:logistic':
      case 'binary:logitraw':
        if (!(y >= 0 && y <= 1))
          throw new RangeError(`label must be in [0,1] for logistic regression (row ${i + 1}: ${y})`);
        break;
      case 'multi:softprob':
      case 'multi:softmax':
        if (!(Number.isInteger(y) && y >= 0 && y < settings.numClass)) {
          throw new RangeError(`label must be in [0, num_class) (row ${i + 1}: ${y}, num_class ${settings.numClass})`);
        }
        break;
      case 'count:poisson':
        if (!(y >= 0)) throw new RangeError(`PoissonRegression: label must be nonnegative (row ${i + 1}: ${y})`);
        break;
      default:
        if (!Number.isFinite(y)) throw new RangeError(`label must be finite (row ${i + 1}: ${y})`);
    }
  }
}

/**
 * Gradients of group `group` for every row: grad[r], hess[r]. `margins` is rows × groups.
 * `weights` (optional) scales both, as instance weights do.
 */
export function computeGradients(
  settings: ObjectiveSettings,
  margins: Float32Array,
  labels: Float32Array,
  rows: number,
  group: number,
  grad: Float32Array,
  hess: Float32Array,
): void {
  const groups = groupsOf(settings);
  switch (settings.name) {
    case 'reg:squarederror':
    case 'reg:linear':
      for (let r = 0; r < rows; r++) {
        grad[r] = f32(margins[r] - labels[r]);
        hess[r] = 1;
      }
      return;
    case 'reg:logistic':
    case 'binary:logistic':
    case 'binary:logitraw': {
      const spw = settings.scalePosWeight;
      for (let r = 0; r < rows; r++) {
        const p = f32(1 / f32(1 + f32(Math.exp(-margins[r]))));
        const y = labels[r];
        const w = y === 1 ? spw : 1;
        grad[r] = f32(f32(p - y) * w);
        hess[r] = f32(Math.max(f32(p * f32(1 - p)), EPS) * w);
      }
      return;
    }
    case 'count:poisson': {
      const step = settings.poissonMaxDeltaStep;
      for (let r = 0; r < rows; r++) {
        const p = margins[r];
        grad[r] = f32(f32(Math.exp(p)) - labels[r]);
        hess[r] = f32(Math.exp(f32(p + step)));
      }
      return;
    }
    case 'multi:softprob':
    case 'multi:softmax':
      for (let r = 0; r < rows; r++) {
        const base = r * groups;
        let max = margins[base];
        for (let k = 1; k < groups; k++) max = Math.max(max, margins[base + k]);
        let sum = 0;
        for (let k = 0; k < groups; k++) sum += f32(Math.exp(f32(margins[base + k] - max)));
        const p = f32(f32(Math.exp(f32(margins[base + group] - max))) / f32(sum));
        const target = labels[r] === group ? 1 : 0;
        grad[r] = f32(p - target);
        hess[r] = f32(Math.max(f32(2 * f32(p * f32(1 - p))), EPS));
      }
      return;
  }
}

/** The metric XGBoost evaluates when none is given (and SageMaker reports). */
export function defaultMetric(name: TrainableObjective): string {
  switch (name) {
    case 'binary:logistic':
    case 'binary:logitraw':
      return 'logloss';
    case 'multi:softprob':
    case 'multi:softmax':
      return 'mlogloss';
    case 'count:poisson':
      return 'poisson-nloglik';
    default:
      return 'rmse';
  }
}

/** Objective parameters as XGBoost's JSON model records them. */
export function objectiveJson(settings: ObjectiveSettings): Record<string, unknown> {
  switch (settings.name) {
    case 'multi:softprob':
    case 'multi:softmax':
      return { name: settings.name, softmax_multiclass_param: { num_class: String(settings.numClass) } };
    case 'count:poisson':
      return {
        name: settings.name,
        poisson_regression_param: { max_delta_step: String(f32(settings.poissonMaxDeltaStep)) },
      };
    default:
      return { name: settings.name, reg_loss_param: { scale_pos_weight: String(settings.scalePosWeight) } };
  }
}
