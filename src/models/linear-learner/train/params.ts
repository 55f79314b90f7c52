/**
 * Linear Learner hyperparameters with SageMaker's names and defaults (strings
 * on the wire). Where SageMaker says "auto" and tunes several models in
 * parallel, pgsage trains one model with the value its documentation
 * describes as the usual choice: Adam at learning rate 0.005 (0.01 once data is normalized),
 * no L1, a small weight decay.
 */

export type PredictorType = 'regressor' | 'binary_classifier' | 'multiclass_classifier';
export type Optimizer = 'adam' | 'sgd';

export interface LinearLearnerParams {
  readonly predictorType: PredictorType;
  readonly featureDim: number | undefined;
  readonly numClasses: number;
  readonly epochs: number;
  readonly miniBatchSize: number;
  readonly learningRate: number;
  readonly optimizer: Optimizer;
  readonly beta1: number;
  readonly beta2: number;
  readonly momentum: number;
  readonly l1: number;
  readonly wd: number;
  readonly useBias: boolean;
  readonly normalizeData: boolean;
  readonly normalizeLabel: boolean;
  readonly numPointForScaler: number;
  readonly earlyStoppingPatience: number;
  readonly earlyStoppingTolerance: number;
  /** binary_classifier_model_selection_criteria: how the decision threshold is chosen. */
  readonly thresholdCriterion: 'accuracy' | 'none';
  readonly positiveExampleWeightMult: number;
  readonly seed: number;
}

/** Accepted with SageMaker's meaning but without effect here (one model is trained, on one machine). */
const IGNORED = new Set([
  'num_models',
  'num_calibration_samples',
  'init_method',
  'init_scale',
  'init_sigma',
  'init_bias',
  'lr_scheduler_step',
  'lr_scheduler_factor',
  'lr_scheduler_minimum_lr',
  'unbias_data',
  'unbias_label',
  'bias_lr_mult',
  'bias_wd_mult',
  'quantile',
  'loss_insensitivity',
  'huber_delta',
  'margin',
  'target_recall',
  'target_precision',
  'accuracy_top_k',
  'balance_multiclass_weights',
  'f_beta',
  '_kvstore',
  '_num_gpus',
  '_num_kv_servers',
  '_log_level',
  '_tuning_objective_metric',
]);

const KNOWN = new Set([
  'predictor_type',
  'feature_dim',
  'num_classes',
  'epochs',
  'mini_batch_size',
  'learning_rate',
  'optimizer',
  'beta_1',
  'beta_2',
  'momentum',
  'l1',
  'wd',
  'use_bias',
  'normalize_data',
  'normalize_label',
  'num_point_for_scaler',
  'early_stopping_patience',
  'early_stopping_tolerance',
  'binary_classifier_model_selection_criteria',
  'positive_example_weight_mult',
  'loss',
  'seed',
]);

export function parseLinearLearnerParams(hyperparameters: Readonly<Record<string, string>>): LinearLearnerParams {
  for (const name of Object.keys(hyperparameters)) {
    if (!KNOWN.has(name) && !IGNORED.has(name)) throw new RangeError(`unknown Linear Learner hyperparameter "${name}"`);
  }
  const raw = (name: string): string | undefined => {
    const value = hyperparameters[name];
    return value === undefined || String(value) === 'auto' ? undefined : String(value);
  };
  const num = (name: string, fallback: number, check: (n: number) => boolean = Number.isFinite): number => {
    const value = raw(name);
    if (value === undefined) return fallback;
    const n = Number(value);
    if (value.trim() === '' || !check(n)) throw new RangeError(`hyperparameter ${name}: invalid value "${value}"`);
    return n;
  };
  const positiveInt = (n: number) => Number.isInteger(n) && n >= 1;
  const bool = (name: string, fallback: boolean): boolean => {
    const value = raw(name);
    if (value === undefined) return fallback;
    if (value.toLowerCase() === 'true') return true;
    if (value.toLowerCase() === 'false') return false;
    throw new RangeError(`hyperparameter ${name}: expected true or false, got "${value}"`);
  };

  const predictorType = hyperparameters.predictor_type;
  if (
    predictorType !== 'regressor' &&
    predictorType !== 'binary_classifier' &&
    predictorType !== 'multiclass_classifier'
  ) {
    throw new RangeError(
      'hyperparameter predictor_type is required: binary_classifier, multiclass_classifier or regressor',
    );
  }
  const numClasses =
    predictorType === 'multiclass_classifier'
      ? num('num_classes', Number.NaN, (n) => Number.isInteger(n) && n >= 3)
      : 2;
  if (Number.isNaN(numClasses))
    throw new RangeError('hyperparameter num_classes (at least 3) is required for multiclass_classifier');
  const optimizer = raw('optimizer') ?? 'adam';
  if (optimizer !== 'adam' && optimizer !== 'sgd')
    throw new RangeError(`optimizer "${optimizer}" is not supported (adam, sgd)`);
  const loss = raw('loss');
  const expectedLoss = {
    regressor: 'squared_loss',
    binary_classifier: 'logistic',
    multiclass_classifier: 'softmax_loss',
  }[predictorType];
  if (loss !== undefined && loss !== expectedLoss) {
    throw new RangeError(`loss "${loss}" is not supported for ${predictorType} (pgsage trains with ${expectedLoss})`);
  }
  const criterion = raw('binary_classifier_model_selection_criteria') ?? 'accuracy';
  if (criterion !== 'accuracy' && criterion !== 'cross_entropy_loss' && criterion !== 'loss_function') {
    throw new RangeError(
      `binary_classifier_model_selection_criteria "${criterion}" is not supported (accuracy, cross_entropy_loss, loss_function)`,
    );
  }
  const featureDim = raw('feature_dim');
  return {
    predictorType,
    featureDim: featureDim === undefined ? undefined : num('feature_dim', 0, positiveInt),
    numClasses,
    epochs: num('epochs', 15, positiveInt),
    miniBatchSize: num('mini_batch_size', 1000, positiveInt),
    learningRate: num('learning_rate', optimizer === 'adam' ? 0.01 : 0.1, (n) => n > 0),
    optimizer,
    beta1: num('beta_1', 0.9, (n) => n >= 0 && n < 1),
    beta2: num('beta_2', 0.999, (n) => n >= 0 && n < 1),
    momentum: num('momentum', 0, (n) => n >= 0 && n < 1),
    l1: num('l1', 0, (n) => n >= 0),
    wd: num('wd', 0, (n) => n >= 0),
    useBias: bool('use_bias', true),
    normalizeData: bool('normalize_data', true),
    normalizeLabel: bool('normalize_label', predictorType === 'regressor'),
    numPointForScaler: num('num_point_for_scaler', 10000, positiveInt),
    earlyStoppingPatience: num('early_stopping_patience', 3, positiveInt),
    earlyStoppingTolerance: num('early_stopping_tolerance', 0.001, (n) => n >= 0),
    thresholdCriterion: criterion === 'accuracy' ? 'accuracy' : 'none',
    positiveExampleWeightMult: num('positive_example_weight_mult', 1, (n) => n > 0),
    seed: num('seed', 0, Number.isInteger),
  };
}
