/**
 * Random Cut Forest endpoint: anomaly scores in SageMaker RCF's response shapes,
 * JSON `{"scores":[{"score":1.23}, …]}` and text/csv one score per line.
 */
import type { FeatureMatrix, Predictions, Predictor } from '../types.js';
import { RandomCutForest, type RandomCutForestModel } from './forest.js';
import { deserializeRandomCutForest } from './model-file.js';

export class RandomCutForestPredictor implements Predictor {
  readonly algorithm = 'randomcutforest' as const;
  readonly numFeatures: number;
  private readonly forest: RandomCutForest;

  constructor(model: RandomCutForestModel) {
    this.forest = new RandomCutForest(model);
    this.numFeatures = model.featureDim;
  }

  static fromBytes(bytes: Uint8Array): RandomCutForestPredictor {
    return new RandomCutForestPredictor(deserializeRandomCutForest(bytes));
  }

  predict(input: FeatureMatrix): RandomCutForestPredictions {
    return new RandomCutForestPredictions(this.forest.score(input));
  }
}

export class RandomCutForestPredictions implements Predictions {
  readonly rows: number;

  constructor(readonly scores: Float64Array) {
    this.rows = scores.length;
  }

  csvLines(): string[] {
    return Array.from(this.scores, (s) => String(s));
  }

  json(): { scores: Array<{ score: number }> } {
    return { scores: Array.from(this.scores, (score) => ({ score })) };
  }
}
