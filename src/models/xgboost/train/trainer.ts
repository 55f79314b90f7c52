/**
 * XGBoost training: gradient boosting of histogram trees (`tree_method=hist`),
 * writing XGBoost's JSON model. One round computes every row's gradient pair
 * from the current margins, grows one tree per output group, adds its leaves
 * to the cached margins, and evaluates the metrics on the training and
 * validation sets; early stopping watches the last metric on validation.
 *
 * Like XGBoost 1.7 (and SageMaker's 1.7-1 container), base_score is 0.5 unless
 * given, and a model that stopped early keeps every tree it grew and records
 * `best_iteration` / `best_ntree_limit`, which the serving side honours.
 */
import { availableParallelism } from 'node:os';
import { SeededRandom } from '../../random-cut-forest/random.js';
import type { LabeledData, MetricValue } from '../../training-data.js';
import { objectiveNamed } from '../objective.js';
import { HistogramPool } from './hist-pool.js';
import { type BinnedMatrix, slotLayout } from './histogram.js';
import { evaluateMetric, higherIsBetter, type MetricName } from './metrics.js';
import { writeXGBoostJson } from './model-writer.js';
import { checkLabels, computeGradients, groupsOf, type ObjectiveSettings } from './objectives.js';
import type { XGBoostTrainParams } from './params.js';
import { binMatrix, binsOf, computeCuts } from './quantile.js';
import { addTreePredictions, type GrownTree, growTree } from './tree-grower.js';

export interface RoundReport {
  /** 1-based. */
  readonly round: number;
  readonly numRound: number;
  readonly metrics: readonly MetricValue[];
}

export interface TrainOptions {
  /** Called after every round. */
  onRound?(report: RoundReport): void;
  /** Polled between rounds (and tree levels); true ends training early with what was grown so far. */
  shouldStop?(): boolean;
  /** Histogram threads; default: params.nthread, else every core. */
  threads?: number;
}

export interface XGBoostTrainingResult {
  /** The model in XGBoost's JSON format. */
  readonly modelJson: string;
  readonly roundsTrained: number;
  /** Zero-based, as XGBoost counts. */
  readonly bestIteration: number;
  readonly bestScore: number | undefined;
  /** The last round's metrics (the best round's when early stopping chose one). */
  readonly finalMetrics: readonly MetricValue[];
  readonly stopped: boolean;
  readonly earlyStopped: boolean;
}

export async function trainXGBoost(
  train: LabeledData,
  validation: LabeledData | undefined,
  params: XGBoostTrainParams,
  options: TrainOptions = {},
): Promise<XGBoostTrainingResult> {
  const { features, labels } = train;
  const rows = features.rows;
  const cols = features.cols;
  if (rows === 0 || cols === 0) throw new RangeError('training data has no rows or no features');
  if (validation && validation.features.cols !== cols) {
    throw new RangeError(`validation data has ${validation.features.cols} features, training data ${cols}`);
  }
  const objective: ObjectiveSettings = {
    name: params.objective,
    numClass: params.numClass,
    scalePosWeight: params.scalePosWeight,
    poissonMaxDeltaStep: params.maxDeltaStep,
  };
  checkLabels(objective, labels);
  if (validation) checkLabels(objective, validation.labels);
  const groups = groupsOf(objective);
  const servingObjective = objectiveNamed(params.objective);
  const baseMargin = servingObjective.baseMargin(Math.fround(params.baseScore));

  // Quantize once: bins shared with the helper threads.
  const cuts = computeCuts(features.data, rows, cols, params.maxBin);
  const binCounts = Array.from({ length: cols }, (_, f) => binsOf(cuts, f));
  const { slotOffsets, slots } = slotLayout(binCounts);
  const bins = new Uint16Array(new SharedArrayBuffer(rows * cols * 2));
  binMatrix(cuts, features.data, rows, bins);
  const matrix: BinnedMatrix = { bins, rows, cols, slotOffsets, slots };
  const columnBins = new Uint16Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let f = 0; f < cols; f++) columnBins[f * rows + r] = bins[r * cols + f];
  const grad = new Float32Array(new SharedArrayBuffer(rows * 4));
  const hess = new Float32Array(new SharedArrayBuffer(rows * 4));
  const rowIndex = new Int32Array(new SharedArrayBuffer(rows * 4));
  for (let r = 0; r < rows; r++) rowIndex[r] = r;
  const scratch = new Int32Array(rows);
  const threads = Math.max(1, options.threads ?? params.nthread ?? availableParallelism());
  const pool = new HistogramPool(matrix, grad, hess, rowIndex, threads);

  const margins = new Float32Array(rows * groups).fill(baseMargin);
  const validMargins = validation ? new Float32Array(validation.features.rows * groups).fill(baseMargin) : undefined;
  const random = new SeededRandom(params.seed);
  const allFeatures = Int32Array.from({ length: cols }, (_, f) => f);
  const treeParams = params;
  const trees: GrownTree[] = [];
  const treeGroups: number[] = [];
  const stoppingMetric = params.evalMetrics[params.evalMetrics.length - 1];
  const maximize = higherIsBetter(stoppingMetric);
  let bestIteration = -1;
  let bestScore: number | undefined;
  let bestMetrics: readonly MetricValue[] = [];
  let lastMetrics: readonly MetricValue[] = [];
  let stopped = false;
  let earlyStopped = false;
  const shouldStop = options.shouldStop ?? (() => false);

  try {
    let round = 0;
    for (; round < params.numRound; round++) {
      if (shouldStop()) {
        stopped = true;
        break;
      }
      const roundMargins = groups > 1 ? margins.slice() : margins; // every group's gradients see the same margins
      for (let g = 0; g < groups; g++) {
        computeGradients(objective, roundMargins, labels, rows, g, grad, hess);
        if (params.subsample < 1) {
          for (let r = 0; r < rows; r++) {
            if (random.nextDouble() >= params.subsample) {
              grad[r] = 0;
              hess[r] = 0;
            }
          }
        }
        const treeFeatures =
          params.colsampleBytree < 1 ? sampleFeatures(cols, params.colsampleBytree, random) : allFeatures;
        const tree = await growTree(
          { params: treeParams, cuts, matrix, pool, rowIndex, scratch, columnBins },
          treeFeatures,
          (begin, end, value) => {
            for (let i = begin; i < end; i++) margins[rowIndex[i] * groups + g] += value;
          },
        );
        trees.push(tree);
        treeGroups.push(g);
        if (validation && validMargins) {
          const v = validation.features;
          addTreePredictions(tree, v.data, v.rows, v.cols, validMargins, groups, g);
        }
      }
      const metrics: MetricValue[] = [];
      for (const metric of params.evalMetrics) {
        metrics.push({ name: `train:${metric}`, value: metricOn(metric, margins, rows, groups, labels) });
      }
      if (validation && validMargins) {
        for (const metric of params.evalMetrics) {
          metrics.push({
            name: `validation:${metric}`,
            value: metricOn(metric, validMargins, validation.features.rows, groups, validation.labels),
          });
        }
      }
      lastMetrics = metrics;
      options.onRound?.({ round: round + 1, numRound: params.numRound, metrics });

      // Early stopping follows the last metric on the last evaluation set (validation if there is one).
      const watched = metrics[metrics.length - 1].value;
      const improved =
        bestScore === undefined || (maximize ? watched > bestScore : watched < bestScore) || Number.isNaN(bestScore);
      if (improved) {
        bestScore = watched;
        bestIteration = round;
        bestMetrics = metrics;
      } else if (params.earlyStoppingRounds !== undefined && round - bestIteration >= params.earlyStoppingRounds) {
        earlyStopped = true;
        break;
      }
    }
    const roundsTrained = trees.length / groups;
    if (!earlyStopped) {
      // Without early stopping XGBoost's train() records the last round as the best one.
      bestIteration = roundsTrained - 1;
      bestMetrics = lastMetrics;
    }
    const attributes: Record<string, string> = {
      best_iteration: String(Math.max(bestIteration, 0)),
      best_ntree_limit: String(Math.max(bestIteration, 0) + 1),
    };
    if (params.earlyStoppingRounds !== undefined && bestScore !== undefined) attributes.best_score = String(bestScore);
    const modelJson = writeXGBoostJson({
      objective,
      numFeature: cols,
      baseScore: params.baseScore,
      trees,
      treeGroups,
      attributes,
    });
    return {
      modelJson,
      roundsTrained,
      bestIteration: Math.max(bestIteration, 0),
      bestScore,
      finalMetrics: bestMetrics,
      stopped,
      earlyStopped,
    };
  } finally {
    await pool.close();
  }

  function metricOn(metric: MetricName, m: Float32Array, n: number, width: number, y: Float32Array): number {
    const { values, width: outWidth } = servingTransform(m, n, width);
    return evaluateMetric(metric, values, outWidth, y);
  }

  /** Predictions as the metrics want them: probabilities for every class, even for multi:softmax. */
  function servingTransform(m: Float32Array, n: number, width: number): { values: Float32Array; width: number } {
    if (params.objective === 'multi:softmax') return objectiveNamed('multi:softprob').transform(m, n, width);
    return servingObjective.transform(m, n, width);
  }
}

/** colsample_bytree: a sorted random subset of ⌊fraction·n⌋ features (at least one). */
function sampleFeatures(cols: number, fraction: number, random: SeededRandom): Int32Array {
  const take = Math.max(1, Math.floor(fraction * cols));
  const all = Int32Array.from({ length: cols }, (_, f) => f);
  for (let i = 0; i < take; i++) {
    const j = i + random.nextInt(cols - i);
    const t = all[i];
    all[i] = all[j];
    all[j] = t;
  }
  return all.subarray(0, take).sort();
}
