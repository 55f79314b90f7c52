/**
 * pgsage's Linear Learner model file.
 *
 * SageMaker's own artifacts are MXNet parameter files; pgsage does not read
 * those. Its trainer writes this JSON instead (documented in docs/models.md):
 *
 *   {
 *     "algorithm": "linear-learner",
 *     "format_version": 1,
 *     "predictor_type": "regressor" | "binary_classifier" | "multiclass_classifier",
 *     "feature_dim": 3,
 *     "num_classes": 4,                    // multiclass_classifier only
 *     "weights": [[0.5, -1.25, 2.0]],      // one row per output, feature_dim entries each
 *     "bias": [0.1],                       // one per output
 *     "binary_classifier_threshold": 0.5,  // optional: score above it → label 1
 *     "normalization": {                   // optional: as SageMaker's normalize_data/normalize_label
 *       "feature_mean": [..], "feature_scale": [..], "label_mean": 0, "label_scale": 1
 *     }
 *   }
 *
 * Outputs: 1 for regressor and binary_classifier (the logit), num_classes for
 * multiclass_classifier (the class logits).
 */
import { ModelFormatError } from '../types.js';

export type LinearPredictorType = 'regressor' | 'binary_classifier' | 'multiclass_classifier';

export interface LinearLearnerModel {
  readonly predictorType: LinearPredictorType;
  readonly featureDim: number;
  readonly numClasses: number;
  /** outputs × featureDim, row-major. */
  readonly weights: Float64Array;
  readonly bias: Float64Array;
  readonly threshold: number;
  readonly featureMean: Float64Array | undefined;
  readonly featureScale: Float64Array | undefined;
  readonly labelMean: number;
  readonly labelScale: number;
}

export function outputsOf(model: LinearLearnerModel): number {
  return model.predictorType === 'multiclass_classifier' ? model.numClasses : 1;
}

export function readLinearLearnerModel(bytes: Uint8Array): LinearLearnerModel {
  let document: unknown;
  try {
    document = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (error) {
    throw new ModelFormatError(
      `not a pgsage linear-learner model (JSON expected; SageMaker's MXNet artifacts are not supported): ${(error as Error).message}`,
    );
  }
  return parseLinearLearnerModel(document);
}

export function parseLinearLearnerModel(document: unknown): LinearLearnerModel {
  if (document === null || typeof document !== 'object') throw fail('the document is not an object');
  const doc = document as Record<string, unknown>;
  if (doc.algorithm !== 'linear-learner') throw fail('"algorithm" must be "linear-learner"');
  const predictorType = doc.predictor_type;
  if (
    predictorType !== 'regressor' &&
    predictorType !== 'binary_classifier' &&
    predictorType !== 'multiclass_classifier'
  ) {
    throw fail('"predictor_type" must be regressor, binary_classifier or multiclass_classifier');
  }
  const featureDim = positiveInteger(doc.feature_dim, 'feature_dim');
  const numClasses = predictorType === 'multiclass_classifier' ? positiveInteger(doc.num_classes, 'num_classes') : 2;
  if (predictorType === 'multiclass_classifier' && numClasses < 2) throw fail('"num_classes" must be at least 2');
  const outputs = predictorType === 'multiclass_classifier' ? numClasses : 1;

  if (!Array.isArray(doc.weights) || doc.weights.length !== outputs) {
    throw fail(`"weights" must hold ${outputs} row(s) of ${featureDim} numbers`);
  }
  const weights = new Float64Array(outputs * featureDim);
  doc.weights.forEach((row, k) => {
    weights.set(numberArray(row, featureDim, `weights[${k}]`), k * featureDim);
  });
  const bias = numberArray(doc.bias, outputs, 'bias');

  const threshold =
    doc.binary_classifier_threshold === undefined
      ? 0.5
      : finite(doc.binary_classifier_threshold, 'binary_classifier_threshold');
  const norm = (doc.normalization ?? {}) as Record<string, unknown>;
  const featureMean =
    norm.feature_mean === undefined ? undefined : numberArray(norm.feature_mean, featureDim, 'feature_mean');
  const featureScale =
    norm.feature_scale === undefined ? undefined : numberArray(norm.feature_scale, featureDim, 'feature_scale');
  if (featureScale?.some((s) => s === 0)) throw fail('"feature_scale" entries must be non-zero');
  return {
    predictorType,
    featureDim,
    numClasses,
    weights,
    bias,
    threshold,
    featureMean,
    featureScale,
    labelMean: norm.label_mean === undefined ? 0 : finite(norm.label_mean, 'label_mean'),
    labelScale: norm.label_scale === undefined ? 1 : finite(norm.label_scale, 'label_scale'),
  };
}

function fail(problem: string): ModelFormatError {
  return new ModelFormatError(`linear-learner model: ${problem}`);
}

function positiveInteger(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1)
    throw fail(`"${name}" must be a positive integer`);
  return value;
}

function finite(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw fail(`"${name}" must be a finite number`);
  return value;
}

function numberArray(value: unknown, length: number, name: string): Float64Array {
  if (
    !Array.isArray(value) ||
    value.length !== length ||
    !value.every((v) => typeof v === 'number' && Number.isFinite(v))
  ) {
    throw fail(`"${name}" must be an array of ${length} finite numbers`);
  }
  return Float64Array.from(value as number[]);
}
