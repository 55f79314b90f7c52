/**
 * An XGBoost model ready to score: the model file read once, trees compiled into
 * a flat node table, and predictions computed the way `Booster.predict` does.
 */
import { type FeatureMatrix, ModelFormatError, ModelInputError, type Predictor } from '../types.js';
import { CompiledForest } from './compiled-forest.js';
import { readXGBoostModel, type XGBoostModel } from './model-file.js';
import { type Objective, objectiveNamed } from './objective.js';
import { XGBoostPredictions } from './predictions.js';

export interface XGBoostPredictorOptions {
  /**
   * Which boosting rounds to use.
   * - 'sagemaker' (default): as SageMaker's container serves a model, i.e.
   *   `predict(ntree_limit=best_ntree_limit)` when the model carries that attribute
   *   (written by early stopping in XGBoost < 2), every round otherwise.
   * - 'all': every round, like a plain `Booster.predict`.
   * - a number n: the first n rounds, like `predict(iteration_range=(0, n))`.
   */
  readonly rounds?: 'sagemaker' | 'all' | number;
}

export class XGBoostPredictor implements Predictor {
  readonly algorithm = 'xgboost' as const;
  readonly numFeatures: number;
  readonly objective: Objective;
  private readonly forest: CompiledForest;
  private readonly treeEnd: number;
  private readonly baseMargins: Float32Array;
  /** Row stride of the float32 copy fed to the forest: wide enough for every split's feature. */
  private readonly stride: number;

  constructor(
    readonly model: XGBoostModel,
    options: XGBoostPredictorOptions = {},
  ) {
    this.objective = objectiveNamed(model.objective);
    this.numFeatures = model.numFeature;
    this.forest = new CompiledForest(model.trees, model.treeGroup, model.treeWeights);
    this.treeEnd = treesToUse(model, options.rounds ?? 'sagemaker');
    this.baseMargins = Float32Array.from(model.baseScore, (s) => this.objective.baseMargin(s));
    this.stride = Math.max(model.numFeature, this.forest.maxFeatureIndex() + 1, 1);
  }

  static fromBytes(bytes: Uint8Array, options?: XGBoostPredictorOptions): XGBoostPredictor {
    return new XGBoostPredictor(readXGBoostModel(bytes), options);
  }

  predict(input: FeatureMatrix): XGBoostPredictions {
    const margins = this.margins(input);
    const { values, width } = this.objective.transform(margins, input.rows, this.model.numGroup);
    return new XGBoostPredictions(values, width, input.rows, this.objective, this.model.numClass);
  }

  /** Untransformed sums, as `predict(output_margin=True)`: rows × groups, row-major. */
  margins(input: FeatureMatrix): Float32Array {
    if (input.cols > this.model.numFeature) {
      // XGBoost refuses too: "Number of columns does not match number of features in booster".
      throw new ModelInputError(
        `the model has ${this.model.numFeature} features but the input has ${input.cols} columns`,
      );
    }
    const groups = this.model.numGroup;
    const margins = new Float32Array(input.rows * groups);
    for (let r = 0; r < input.rows; r++) margins.set(this.baseMargins, r * groups);
    if (this.model.linearWeights) {
      addLinear(this.model.linearWeights, this.model.numFeature, groups, input, margins);
      return margins;
    }
    const features = this.float32Rows(input);
    this.forest.accumulate(features, input.rows, this.stride, margins, groups, 0, this.treeEnd);
    return margins;
  }

  /** Features rounded to float32 (XGBoost's DMatrix type), padded with NaN to the stride. */
  private float32Rows(input: FeatureMatrix): Float32Array {
    const { rows, cols, data } = input;
    if (data instanceof Float32Array && cols === this.stride) return data;
    const out = new Float32Array(rows * this.stride);
    if (cols === this.stride) {
      out.set(data);
      return out;
    }
    out.fill(Number.NaN);
    for (let r = 0; r < rows; r++) out.set(data.subarray(r * cols, (r + 1) * cols), r * this.stride);
    return out;
  }
}

function treesToUse(model: XGBoostModel, rounds: 'sagemaker' | 'all' | number): number {
  const totalRounds = model.iterationIndptr.length - 1;
  let useRounds = totalRounds;
  if (typeof rounds === 'number') {
    if (!Number.isInteger(rounds) || rounds < 0) throw new ModelFormatError(`invalid round count ${rounds}`);
    useRounds = rounds === 0 ? totalRounds : Math.min(rounds, totalRounds);
  } else if (rounds === 'sagemaker' && model.attributes.best_ntree_limit !== undefined) {
    // Python's _convert_ntree_limit: iteration_range = (0, ntree_limit // num_parallel_tree); 0 means all.
    const limit = Number(model.attributes.best_ntree_limit);
    const limitedRounds = Math.floor(limit / model.numParallelTree);
    if (limitedRounds > 0) useRounds = Math.min(limitedRounds, totalRounds);
  }
  return model.iterationIndptr[useRounds] ?? model.trees.length;
}

/** gblinear: (bias + base margin) + Σ weight·x over present features, in float32 and in that order, as GBLinear::Pred. */
function addLinear(
  weights: ArrayLike<number>,
  numFeature: number,
  groups: number,
  input: FeatureMatrix,
  margins: Float32Array,
): void {
  const { rows, cols, data } = input;
  const f32 = Math.fround;
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < groups; g++) {
      let sum = f32(f32(weights[numFeature * groups + g]) + margins[r * groups + g]);
      for (let c = 0; c < cols; c++) {
        const x = f32(data[r * cols + c]);
        if (!Number.isNaN(x)) sum = f32(sum + f32(x * f32(weights[c * groups + g])));
      }
      margins[r * groups + g] = sum;
    }
  }
}
