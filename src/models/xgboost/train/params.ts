/**
 * XGBoost hyperparameters as SageMaker's XGBoost algorithm takes them: strings,
 * with XGBoost's names, aliases and defaults (num_round has no default there
 * and is required). Unknown names are refused, as the container refuses them.
 */
import { higherIsBetter, isMetric, type MetricName } from './metrics.js';
import { defaultMetric, TRAINABLE_OBJECTIVES, type TrainableObjective } from './objectives.js';

export interface XGBoostTrainParams {
  readonly numRound: number;
  readonly objective: TrainableObjective;
  readonly numClass: number;
  readonly eta: number;
  readonly maxDepth: number;
  readonly minChildWeight: number;
  readonly gamma: number;
  readonly lambda: number;
  readonly alpha: number;
  readonly maxDeltaStep: number;
  readonly subsample: number;
  readonly colsampleBytree: number;
  readonly scalePosWeight: number;
  readonly baseScore: number;
  readonly maxBin: number;
  readonly seed: number;
  /** Metrics to report; the last one decides early stopping, as in XGBoost. */
  readonly evalMetrics: readonly MetricName[];
  readonly earlyStoppingRounds: number | undefined;
  /** Threads for histogram building (default: every core). */
  readonly nthread: number | undefined;
}

type Parser = (value: string, name: string) => number;

const number: Parser = (value, name) => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n))
    throw new RangeError(`hyperparameter ${name}: "${value}" is not a number`);
  return n;
};
const integer: Parser = (value, name) => {
  const n = number(value, name);
  if (!Number.isInteger(n)) throw new RangeError(`hyperparameter ${name}: "${value}" is not an integer`);
  return n;
};

/** Accepted names (with XGBoost's aliases) → canonical name. */
const ALIASES: Record<string, string> = {
  num_round: 'num_round',
  num_boost_round: 'num_round',
  n_estimators: 'num_round',
  objective: 'objective',
  num_class: 'num_class',
  eta: 'eta',
  learning_rate: 'eta',
  max_depth: 'max_depth',
  min_child_weight: 'min_child_weight',
  gamma: 'gamma',
  min_split_loss: 'gamma',
  lambda: 'lambda',
  reg_lambda: 'lambda',
  alpha: 'alpha',
  reg_alpha: 'alpha',
  max_delta_step: 'max_delta_step',
  subsample: 'subsample',
  colsample_bytree: 'colsample_bytree',
  scale_pos_weight: 'scale_pos_weight',
  base_score: 'base_score',
  max_bin: 'max_bin',
  seed: 'seed',
  random_state: 'seed',
  eval_metric: 'eval_metric',
  early_stopping_rounds: 'early_stopping_rounds',
  nthread: 'nthread',
  n_jobs: 'nthread',
  // Accepted and ignored: pgsage always grows trees with the histogram method, depth-wise, on the CPU.
  tree_method: 'ignored',
  grow_policy: 'ignored',
  verbosity: 'ignored',
  silent: 'ignored',
  booster: 'booster',
};

export function parseXGBoostParams(hyperparameters: Readonly<Record<string, string>>): XGBoostTrainParams {
  const given = new Map<string, string>();
  for (const [rawName, value] of Object.entries(hyperparameters)) {
    const canonical = ALIASES[rawName];
    if (!canonical) throw new RangeError(`unknown XGBoost hyperparameter "${rawName}"`);
    if (canonical !== 'ignored') given.set(canonical, String(value));
  }
  const get = (name: string, parse: Parser, fallback: number): number => {
    const value = given.get(name);
    return value === undefined ? fallback : parse(value, name);
  };
  const booster = given.get('booster') ?? 'gbtree';
  if (booster !== 'gbtree') throw new RangeError(`booster "${booster}" is not supported for training (gbtree only)`);
  if (!given.has('num_round')) throw new RangeError('hyperparameter num_round is required');
  const numRound = get('num_round', integer, 0);
  if (numRound < 1) throw new RangeError('num_round must be at least 1');

  const objectiveName = given.get('objective') ?? 'reg:squarederror';
  if (!(TRAINABLE_OBJECTIVES as readonly string[]).includes(objectiveName)) {
    throw new RangeError(
      `objective "${objectiveName}" cannot be trained by pgsage (supported: ${TRAINABLE_OBJECTIVES.join(', ')})`,
    );
  }
  const objective = objectiveName as TrainableObjective;
  const numClass = get('num_class', integer, 0);
  if (objective.startsWith('multi:') && numClass < 2)
    throw new RangeError(`objective ${objective} needs num_class ≥ 2`);

  const eta = get('eta', number, 0.3);
  const maxDepth = get('max_depth', integer, 6);
  if (maxDepth < 1 || maxDepth > 20) throw new RangeError('max_depth must be between 1 and 20 (depth-wise growth)');
  const subsample = get('subsample', number, 1);
  const colsampleBytree = get('colsample_bytree', number, 1);
  if (!(subsample > 0 && subsample <= 1)) throw new RangeError('subsample must be in (0, 1]');
  if (!(colsampleBytree > 0 && colsampleBytree <= 1)) throw new RangeError('colsample_bytree must be in (0, 1]');
  const maxBin = get('max_bin', integer, 256);
  if (maxBin < 2 || maxBin > 65534) throw new RangeError('max_bin must be between 2 and 65534');

  const metricsText = given.get('eval_metric');
  const evalMetrics = (metricsText ? metricsText.split(',').map((m) => m.trim()) : [defaultMetric(objective)]).map(
    (metric) => {
      if (!isMetric(metric)) throw new RangeError(`eval_metric "${metric}" is not supported`);
      return metric;
    },
  );
  const earlyStopping = given.get('early_stopping_rounds');
  const nthread = given.get('nthread');
  return {
    numRound,
    objective,
    numClass,
    eta,
    maxDepth,
    minChildWeight: get('min_child_weight', number, 1),
    gamma: get('gamma', number, 0),
    lambda: get('lambda', number, 1),
    alpha: get('alpha', number, 0),
    // count:poisson's own max_delta_step defaults to 0.7 (it is also the objective's parameter).
    maxDeltaStep: get('max_delta_step', number, objective === 'count:poisson' ? 0.7 : 0),
    subsample,
    colsampleBytree,
    scalePosWeight: get('scale_pos_weight', number, 1),
    baseScore: get('base_score', number, 0.5),
    maxBin,
    seed: get('seed', integer, 0),
    evalMetrics,
    earlyStoppingRounds: earlyStopping === undefined ? undefined : integer(earlyStopping, 'early_stopping_rounds'),
    nthread: nthread === undefined || Number(nthread) <= 0 ? undefined : integer(nthread, 'nthread'),
  };
}

export function stoppingMetricMaximizes(params: XGBoostTrainParams): boolean {
  return higherIsBetter(params.evalMetrics[params.evalMetrics.length - 1]);
}
