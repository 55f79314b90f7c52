/**
 * Linear Learner training: a linear model fitted by mini-batch SGD or Adam on
 * SageMaker's losses (squared loss, logistic, softmax), with its normalization
 * (features and, for regressors, the label standardized from a sample of up to
 * num_point_for_scaler rows), L1 (proximal step) and weight decay, early
 * stopping on the validation loss, and — for binary classifiers — the decision
 * threshold chosen for accuracy, as binary_classifier_model_selection_criteria
 * does by default. Writes the JSON model src/models/linear-learner/ serves.
 */
import { SeededRandom } from '../../random-cut-forest/random.js';
import type { LabeledData, MetricValue } from '../../training-data.js';
import type { LinearLearnerParams } from './params.js';

export interface EpochReport {
  readonly epoch: number;
  readonly epochs: number;
  readonly metrics: readonly MetricValue[];
}

export interface LinearTrainOptions {
  onEpoch?(report: EpochReport): void;
  shouldStop?(): boolean;
}

export interface LinearLearnerTrainingResult {
  readonly modelJson: string;
  readonly epochsTrained: number;
  readonly finalMetrics: readonly MetricValue[];
  readonly stopped: boolean;
}

interface Normalization {
  mean: Float64Array;
  scale: Float64Array;
  labelMean: number;
  labelScale: number;
}

export async function trainLinearLearner(
  train: LabeledData,
  validation: LabeledData | undefined,
  params: LinearLearnerParams,
  options: LinearTrainOptions = {},
): Promise<LinearLearnerTrainingResult> {
  const { rows, cols } = train.features;
  if (params.featureDim !== undefined && params.featureDim !== cols) {
    throw new RangeError(`feature_dim is ${params.featureDim} but the training data has ${cols} feature columns`);
  }
  if (validation && validation.features.cols !== cols) {
    throw new RangeError(`validation data has ${validation.features.cols} features, training data ${cols}`);
  }
  checkData(train, params, 'training');
  if (validation) checkData(validation, params, 'validation');
  const outputs = params.predictorType === 'multiclass_classifier' ? params.numClasses : 1;
  const norm = normalization(train, params);
  const x = standardize(train, norm);
  const y = labelsFor(train.labels, norm, params);
  const vx = validation ? standardize(validation, norm) : undefined;
  const vy = validation ? labelsFor(validation.labels, norm, params) : undefined;

  const weights = new Float64Array(outputs * cols);
  const bias = new Float64Array(outputs);
  const optimizer = new Optimizer(params, weights.length + bias.length);
  const gradW = new Float64Array(weights.length);
  const gradB = new Float64Array(outputs);
  const scores = new Float64Array(outputs);
  const order = Int32Array.from({ length: rows }, (_, i) => i);
  const random = new SeededRandom(params.seed);

  let best = { loss: Number.POSITIVE_INFINITY, weights: weights.slice(), bias: bias.slice(), epoch: 0 };
  let sinceBest = 0;
  let stopped = false;
  let epoch = 0;
  let lastMetrics: MetricValue[] = [];
  for (; epoch < params.epochs; epoch++) {
    if (options.shouldStop?.()) {
      stopped = true;
      break;
    }
    shuffle(order, random);
    for (let start = 0; start < rows; start += params.miniBatchSize) {
      const end = Math.min(rows, start + params.miniBatchSize);
      gradW.fill(0);
      gradB.fill(0);
      let batchWeight = 0;
      for (let i = start; i < end; i++) {
        const r = order[i];
        const base = r * cols;
        linearScores(weights, bias, x, base, cols, outputs, scores);
        const w = lossGradient(params, scores, y[r], outputs);
        batchWeight += w;
        for (let k = 0; k < outputs; k++) {
          const g = scores[k]; // lossGradient left dLoss/dscore_k here, already weighted
          if (g === 0) continue;
          gradB[k] += g;
          const wBase = k * cols;
          for (let c = 0; c < cols; c++) gradW[wBase + c] += g * x[base + c];
        }
      }
      const inv = 1 / Math.max(batchWeight, 1e-12);
      for (let j = 0; j < gradW.length; j++) gradW[j] = gradW[j] * inv + params.wd * weights[j];
      for (let k = 0; k < outputs; k++) gradB[k] *= inv;
      optimizer.step(weights, gradW, 0);
      if (params.useBias) optimizer.step(bias, gradB, weights.length);
      if (params.l1 > 0) {
        const shrink = optimizer.rate * params.l1;
        for (let j = 0; j < weights.length; j++) {
          const v = weights[j];
          weights[j] = v > shrink ? v - shrink : v < -shrink ? v + shrink : 0;
        }
      }
    }
    // Yield between epochs so a stop request (a message to a worker) can arrive.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const metrics: MetricValue[] = [
      ...evaluate('train', params, weights, bias, x, y, rows, cols, outputs, norm, 0.5),
      ...(vx && vy && validation
        ? evaluate('validation', params, weights, bias, vx, vy, validation.features.rows, cols, outputs, norm, 0.5)
        : []),
    ];
    lastMetrics = metrics;
    options.onEpoch?.({ epoch: epoch + 1, epochs: params.epochs, metrics });
    const watched =
      metrics.find((m) => m.name === (validation ? 'validation:objective_loss' : 'train:objective_loss'))?.value ?? 0;
    if (watched < best.loss * (1 - params.earlyStoppingTolerance) || !Number.isFinite(best.loss)) {
      best = { loss: watched, weights: weights.slice(), bias: bias.slice(), epoch: epoch + 1 };
      sinceBest = 0;
    } else if (validation && ++sinceBest >= params.earlyStoppingPatience) {
      epoch++; // this epoch was trained
      break;
    }
  }
  // As SageMaker, the model kept is the best one seen on validation (the last one without validation).
  const finalWeights = validation ? best.weights : weights;
  const finalBias = validation ? best.bias : bias;
  let threshold = 0.5;
  if (params.predictorType === 'binary_classifier' && params.thresholdCriterion === 'accuracy') {
    const data = vx && vy && validation ? { x: vx, y: vy, n: validation.features.rows } : { x, y, n: rows };
    threshold = accuracyThreshold(finalWeights, finalBias, data.x, data.y, data.n, cols);
  }
  const finalMetrics = [
    ...evaluate('train', params, finalWeights, finalBias, x, y, rows, cols, outputs, norm, threshold),
    ...(vx && vy && validation
      ? evaluate(
          'validation',
          params,
          finalWeights,
          finalBias,
          vx,
          vy,
          validation.features.rows,
          cols,
          outputs,
          norm,
          threshold,
        )
      : []),
  ];
  const modelJson = JSON.stringify({
    algorithm: 'linear-learner',
    format_version: 1,
    predictor_type: params.predictorType,
    feature_dim: cols,
    ...(params.predictorType === 'multiclass_classifier' ? { num_classes: params.numClasses } : {}),
    weights: Array.from({ length: outputs }, (_, k) => Array.from(finalWeights.subarray(k * cols, (k + 1) * cols))),
    bias: Array.from(finalBias),
    ...(params.predictorType === 'binary_classifier' ? { binary_classifier_threshold: threshold } : {}),
    normalization: {
      feature_mean: Array.from(norm.mean),
      feature_scale: Array.from(norm.scale),
      label_mean: norm.labelMean,
      label_scale: norm.labelScale,
    },
  });
  return { modelJson, epochsTrained: epoch, finalMetrics: finalMetrics.length ? finalMetrics : lastMetrics, stopped };
}

function checkData(data: LabeledData, params: LinearLearnerParams, what: string): void {
  const { labels, features } = data;
  for (let i = 0; i < features.data.length; i++) {
    if (Number.isNaN(features.data[i])) {
      throw new RangeError(
        `${what} data row ${Math.floor(i / features.cols) + 1}: Linear Learner does not accept missing values`,
      );
    }
  }
  for (let r = 0; r < labels.length; r++) {
    const y = labels[r];
    if (params.predictorType === 'binary_classifier' && y !== 0 && y !== 1) {
      throw new RangeError(`${what} data row ${r + 1}: binary_classifier labels must be 0 or 1, got ${y}`);
    }
    if (params.predictorType === 'multiclass_classifier' && !(Number.isInteger(y) && y >= 0 && y < params.numClasses)) {
      throw new RangeError(`${what} data row ${r + 1}: labels must be integers in [0, ${params.numClasses}), got ${y}`);
    }
  }
}

/** Mean and standard deviation from the first num_point_for_scaler rows (SageMaker samples that many). */
function normalization(train: LabeledData, params: LinearLearnerParams): Normalization {
  const { rows, cols, data } = train.features;
  const mean = new Float64Array(cols);
  const scale = new Float64Array(cols).fill(1);
  const n = Math.min(rows, params.numPointForScaler);
  let labelMean = 0;
  let labelScale = 1;
  if (params.normalizeData) {
    for (let r = 0; r < n; r++) for (let c = 0; c < cols; c++) mean[c] += data[r * cols + c];
    for (let c = 0; c < cols; c++) mean[c] /= n;
    const variance = new Float64Array(cols);
    for (let r = 0; r < n; r++) for (let c = 0; c < cols; c++) variance[c] += (data[r * cols + c] - mean[c]) ** 2;
    for (let c = 0; c < cols; c++) {
      const sd = Math.sqrt(variance[c] / n);
      scale[c] = sd > 1e-12 ? sd : 1;
    }
  }
  if (params.normalizeLabel && params.predictorType === 'regressor') {
    for (let r = 0; r < n; r++) labelMean += train.labels[r];
    labelMean /= n;
    let v = 0;
    for (let r = 0; r < n; r++) v += (train.labels[r] - labelMean) ** 2;
    const sd = Math.sqrt(v / n);
    labelScale = sd > 1e-12 ? sd : 1;
  }
  return { mean, scale, labelMean, labelScale };
}

function standardize(data: LabeledData, norm: Normalization): Float64Array {
  const { rows, cols } = data.features;
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++)
      out[r * cols + c] = (data.features.data[r * cols + c] - norm.mean[c]) / norm.scale[c];
  }
  return out;
}

function labelsFor(labels: Float32Array, norm: Normalization, params: LinearLearnerParams): Float64Array {
  if (params.predictorType !== 'regressor') return Float64Array.from(labels);
  return Float64Array.from(labels, (y) => (y - norm.labelMean) / norm.labelScale);
}

function linearScores(
  weights: Float64Array,
  bias: Float64Array,
  x: Float64Array,
  base: number,
  cols: number,
  outputs: number,
  out: Float64Array,
): void {
  for (let k = 0; k < outputs; k++) {
    let s = bias[k];
    const wBase = k * cols;
    for (let c = 0; c < cols; c++) s += weights[wBase + c] * x[base + c];
    out[k] = s;
  }
}

/**
 * Replaces `scores` by dLoss/dscore (times the example's weight) and returns the weight.
 * Squared loss ½(s − y)², logistic loss, softmax cross-entropy.
 */
function lossGradient(params: LinearLearnerParams, scores: Float64Array, y: number, outputs: number): number {
  if (params.predictorType === 'regressor') {
    scores[0] -= y;
    return 1;
  }
  if (params.predictorType === 'binary_classifier') {
    const w = y === 1 ? params.positiveExampleWeightMult : 1;
    scores[0] = (sigmoid(scores[0]) - y) * w;
    return w;
  }
  softmaxInPlace(scores, outputs);
  scores[y] -= 1;
  return 1;
}

function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

function softmaxInPlace(scores: Float64Array, outputs: number): void {
  let max = scores[0];
  for (let k = 1; k < outputs; k++) max = Math.max(max, scores[k]);
  let sum = 0;
  for (let k = 0; k < outputs; k++) {
    scores[k] = Math.exp(scores[k] - max);
    sum += scores[k];
  }
  for (let k = 0; k < outputs; k++) scores[k] /= sum;
}

/** SageMaker's metric names: objective_loss plus mse / binary_classification_accuracy / multiclass_accuracy. */
function evaluate(
  channel: string,
  params: LinearLearnerParams,
  weights: Float64Array,
  bias: Float64Array,
  x: Float64Array,
  y: Float64Array,
  rows: number,
  cols: number,
  outputs: number,
  norm: Normalization,
  threshold: number,
): MetricValue[] {
  const scores = new Float64Array(outputs);
  let loss = 0;
  let correct = 0;
  let squared = 0;
  for (let r = 0; r < rows; r++) {
    linearScores(weights, bias, x, r * cols, cols, outputs, scores);
    if (params.predictorType === 'regressor') {
      const d = scores[0] - y[r];
      loss += 0.5 * d * d;
      squared += (d * norm.labelScale) ** 2;
    } else if (params.predictorType === 'binary_classifier') {
      const p = Math.min(Math.max(sigmoid(scores[0]), 1e-15), 1 - 1e-15);
      loss -= y[r] * Math.log(p) + (1 - y[r]) * Math.log(1 - p);
      if ((p > threshold ? 1 : 0) === y[r]) correct++;
    } else {
      softmaxInPlace(scores, outputs);
      loss -= Math.log(Math.max(scores[y[r]], 1e-15));
      let bestK = 0;
      for (let k = 1; k < outputs; k++) if (scores[k] > scores[bestK]) bestK = k;
      if (bestK === y[r]) correct++;
    }
  }
  const metrics: MetricValue[] = [{ name: `${channel}:objective_loss`, value: loss / rows }];
  if (params.predictorType === 'regressor') metrics.push({ name: `${channel}:mse`, value: squared / rows });
  else if (params.predictorType === 'binary_classifier') {
    metrics.push({ name: `${channel}:binary_classification_accuracy`, value: correct / rows });
  } else metrics.push({ name: `${channel}:multiclass_accuracy`, value: correct / rows });
  return metrics;
}

/** The probability threshold with the highest accuracy (ties: the one nearest 0.5). */
function accuracyThreshold(
  weights: Float64Array,
  bias: Float64Array,
  x: Float64Array,
  y: Float64Array,
  rows: number,
  cols: number,
): number {
  const scores = new Float64Array(1);
  const p = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    linearScores(weights, bias, x, r * cols, cols, 1, scores);
    p[r] = sigmoid(scores[0]);
  }
  const order = Int32Array.from({ length: rows }, (_, i) => i).sort((a, b) => p[a] - p[b]);
  let positives = 0;
  for (let r = 0; r < rows; r++) positives += y[r];
  // Threshold below every score: everything predicted positive.
  let correct = positives;
  let bestCorrect = correct;
  let best = 0.5;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (let i = 0; i < rows; i++) {
    correct += y[order[i]] === 1 ? -1 : 1;
    if (i + 1 < rows && p[order[i + 1]] === p[order[i]]) continue;
    // score > threshold is positive; a threshold at this score puts rows 0..i negative.
    const t = p[order[i]];
    if (correct > bestCorrect || (correct === bestCorrect && Math.abs(t - 0.5) < bestDistance)) {
      bestCorrect = correct;
      best = t;
      bestDistance = Math.abs(t - 0.5);
    }
  }
  return best;
}

class Optimizer {
  readonly rate: number;
  private readonly m: Float64Array;
  private readonly v: Float64Array;
  private t = 0;

  constructor(
    private readonly params: LinearLearnerParams,
    size: number,
  ) {
    this.rate = params.learningRate;
    this.m = new Float64Array(size);
    this.v = new Float64Array(size);
  }

  /** One step for `values` whose optimizer state starts at `offset`. */
  step(values: Float64Array, grad: Float64Array, offset: number): void {
    const p = this.params;
    if (offset === 0) this.t++;
    if (p.optimizer === 'sgd') {
      for (let j = 0; j < values.length; j++) {
        const m = p.momentum * this.m[offset + j] + grad[j];
        this.m[offset + j] = m;
        values[j] -= this.rate * m;
      }
      return;
    }
    const c1 = 1 - p.beta1 ** this.t;
    const c2 = 1 - p.beta2 ** this.t;
    for (let j = 0; j < values.length; j++) {
      const g = grad[j];
      const m = p.beta1 * this.m[offset + j] + (1 - p.beta1) * g;
      const v = p.beta2 * this.v[offset + j] + (1 - p.beta2) * g * g;
      this.m[offset + j] = m;
      this.v[offset + j] = v;
      values[j] -= (this.rate * (m / c1)) / (Math.sqrt(v / c2) + 1e-8);
    }
  }
}

function shuffle(order: Int32Array, random: SeededRandom): void {
  for (let i = order.length - 1; i > 0; i--) {
    const j = random.nextInt(i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
}
