/**
 * Linear Learner inference: score = w·x + b, then the link of the predictor type
 * (identity, sigmoid, softmax), answered in SageMaker's Linear Learner shapes.
 *
 * JSON (documented by SageMaker, LL-in-formats):
 *   regressor               {"predictions":[{"score":0.4}]}
 *   binary_classifier       {"predictions":[{"score":0.4,"predicted_label":0}]}
 *   multiclass_classifier   {"predictions":[{"score":[0.1,0.2,0.4,0.3],"predicted_label":2}]}
 * text/csv (SageMaker documents no CSV response for Linear Learner; pgsage's choice):
 *   regressor "score"; binary "predicted_label,score"; multiclass "predicted_label,p0,p1,…".
 */
import { type FeatureMatrix, ModelInputError, type Predictions, type Predictor } from '../types.js';
import { type LinearLearnerModel, outputsOf, readLinearLearnerModel } from './model-file.js';

export class LinearLearnerPredictor implements Predictor {
  readonly algorithm = 'linear-learner' as const;
  readonly numFeatures: number;

  constructor(readonly model: LinearLearnerModel) {
    this.numFeatures = model.featureDim;
  }

  static fromBytes(bytes: Uint8Array): LinearLearnerPredictor {
    return new LinearLearnerPredictor(readLinearLearnerModel(bytes));
  }

  predict(input: FeatureMatrix): LinearLearnerPredictions {
    const { model } = this;
    if (input.cols !== model.featureDim) {
      throw new ModelInputError(`the model has ${model.featureDim} features but the input has ${input.cols} columns`);
    }
    const outputs = outputsOf(model);
    const scores = new Float64Array(input.rows * outputs);
    const x = new Float64Array(model.featureDim);
    for (let r = 0; r < input.rows; r++) {
      for (let c = 0; c < model.featureDim; c++) {
        let v = input.data[r * input.cols + c];
        if (Number.isNaN(v)) {
          throw new ModelInputError(`row ${r + 1}, column ${c + 1}: linear learner does not accept missing values`, r);
        }
        if (model.featureMean) v -= model.featureMean[c];
        if (model.featureScale) v /= model.featureScale[c];
        x[c] = v;
      }
      for (let k = 0; k < outputs; k++) {
        let sum = model.bias[k];
        const w = k * model.featureDim;
        for (let c = 0; c < model.featureDim; c++) sum += model.weights[w + c] * x[c];
        scores[r * outputs + k] = sum;
      }
      applyLink(model, scores, r * outputs, outputs);
    }
    return new LinearLearnerPredictions(model, scores, input.rows);
  }
}

function applyLink(model: LinearLearnerModel, scores: Float64Array, at: number, outputs: number): void {
  switch (model.predictorType) {
    case 'regressor':
      scores[at] = scores[at] * model.labelScale + model.labelMean;
      return;
    case 'binary_classifier':
      scores[at] = 1 / (1 + Math.exp(-scores[at]));
      return;
    case 'multiclass_classifier': {
      let max = -Infinity;
      for (let k = 0; k < outputs; k++) max = Math.max(max, scores[at + k]);
      let sum = 0;
      for (let k = 0; k < outputs; k++) {
        scores[at + k] = Math.exp(scores[at + k] - max);
        sum += scores[at + k];
      }
      for (let k = 0; k < outputs; k++) scores[at + k] /= sum;
    }
  }
}

export class LinearLearnerPredictions implements Predictions {
  private readonly outputs: number;

  constructor(
    private readonly model: LinearLearnerModel,
    /** rows × outputs: the regression value, P(label = 1), or class probabilities. */
    readonly scores: Float64Array,
    readonly rows: number,
  ) {
    this.outputs = outputsOf(model);
  }

  score(r: number): number | number[] {
    if (this.outputs === 1) return this.scores[r];
    return Array.from(this.scores.subarray(r * this.outputs, (r + 1) * this.outputs));
  }

  predictedLabel(r: number): number | undefined {
    switch (this.model.predictorType) {
      case 'regressor':
        return undefined;
      case 'binary_classifier':
        return this.scores[r] > this.model.threshold ? 1 : 0;
      case 'multiclass_classifier': {
        let best = 0;
        const at = r * this.outputs;
        for (let k = 1; k < this.outputs; k++) if (this.scores[at + k] > this.scores[at + best]) best = k;
        return best;
      }
    }
  }

  csvLines(): string[] {
    const lines = new Array<string>(this.rows);
    for (let r = 0; r < this.rows; r++) {
      const score = this.score(r);
      const label = this.predictedLabel(r);
      const scoreText = Array.isArray(score) ? score.join(',') : String(score);
      lines[r] = label === undefined ? scoreText : `${label},${scoreText}`;
    }
    return lines;
  }

  json(): { predictions: Array<{ score: number | number[]; predicted_label?: number }> } {
    const predictions = new Array(this.rows);
    for (let r = 0; r < this.rows; r++) {
      const label = this.predictedLabel(r);
      predictions[r] =
        label === undefined ? { score: this.score(r) } : { score: this.score(r), predicted_label: label };
    }
    return { predictions };
  }
}
