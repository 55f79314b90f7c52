/**
 * Random Cut Forest training as SageMaker runs it: hyperparameters `feature_dim`
 * (required), `num_samples_per_tree` (default 256) and `num_trees` (default 100),
 * features only (no label column); the forest is the sample of each tree
 * (buildRandomCutForest) written in pgsage's RCF model format.
 */
import type { FeatureMatrix } from '../types.js';
import { buildRandomCutForest } from './forest.js';
import { serializeRandomCutForest } from './model-file.js';

export interface RandomCutForestParams {
  readonly featureDim: number;
  readonly numSamplesPerTree: number;
  readonly numTrees: number;
  readonly seed: number;
}

/** Accepted and without effect here: they tune SageMaker's evaluation on a labeled test channel. */
const IGNORED = new Set(['eval_metrics', '_tuning_objective_metric', '_kvstore', '_log_level', 'mini_batch_size']);

export function parseRandomCutForestParams(hyperparameters: Readonly<Record<string, string>>): RandomCutForestParams {
  for (const name of Object.keys(hyperparameters)) {
    if (!['feature_dim', 'num_samples_per_tree', 'num_trees', 'seed'].includes(name) && !IGNORED.has(name)) {
      throw new RangeError(`unknown Random Cut Forest hyperparameter "${name}"`);
    }
  }
  const integer = (name: string, fallback: number | undefined, min: number, max: number): number => {
    const value = hyperparameters[name];
    if (value === undefined) {
      if (fallback === undefined) throw new RangeError(`hyperparameter ${name} is required`);
      return fallback;
    }
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new RangeError(`hyperparameter ${name} must be an integer from ${min} to ${max}, got "${value}"`);
    }
    return n;
  };
  return {
    featureDim: integer('feature_dim', undefined, 1, 10000),
    numSamplesPerTree: integer('num_samples_per_tree', 256, 1, 2048),
    numTrees: integer('num_trees', 100, 50, 1000),
    seed: integer('seed', 0, 0, 0xffffffff),
  };
}

export interface RandomCutForestTrainingResult {
  readonly modelJson: string;
  readonly distinctPoints: number;
}

export function trainRandomCutForest(
  data: FeatureMatrix,
  params: RandomCutForestParams,
): RandomCutForestTrainingResult {
  if (data.cols !== params.featureDim) {
    throw new RangeError(`feature_dim is ${params.featureDim} but the training data has ${data.cols} columns`);
  }
  const model = buildRandomCutForest(data, {
    numTrees: params.numTrees,
    samplesPerTree: params.numSamplesPerTree,
    seed: params.seed,
  });
  return { modelJson: serializeRandomCutForest(model), distinctPoints: model.points.length / model.featureDim };
}
