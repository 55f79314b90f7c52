/** Random Cut Forest training: hyperparameters, the written model, and anomaly scores from it. */
import { describe, expect, it } from 'vitest';
import { RandomCutForestPredictor } from '../../src/models/random-cut-forest/predictor.js';
import { SeededRandom } from '../../src/models/random-cut-forest/random.js';
import { parseRandomCutForestParams, trainRandomCutForest } from '../../src/models/random-cut-forest/train.js';
import { parseUnlabeledCsv } from '../../src/models/training-data.js';
import { auc } from '../support/training.js';

function points(rows: number, seed: number, anomalyEvery = 0): { csv: string; labels: number[] } {
  const random = new SeededRandom(seed);
  const gaussian = () =>
    Math.sqrt(-2 * Math.log(1 - random.nextDouble())) * Math.cos(2 * Math.PI * random.nextDouble());
  const lines: string[] = [];
  const labels: number[] = [];
  for (let r = 0; r < rows; r++) {
    const anomaly = anomalyEvery > 0 && r % anomalyEvery === 0;
    const shift = anomaly ? 5 : 0;
    lines.push([gaussian() + shift, gaussian(), gaussian() - shift].map((v) => v.toFixed(4)).join(','));
    labels.push(anomaly ? 1 : 0);
  }
  return { csv: `${lines.join('\n')}\n`, labels };
}

describe('Random Cut Forest training', () => {
  it('samples the training rows into a forest that scores planted anomalies higher', async () => {
    const train = parseUnlabeledCsv(points(3000, 1).csv);
    const params = parseRandomCutForestParams({ feature_dim: '3', num_trees: '50', num_samples_per_tree: '256' });
    const result = trainRandomCutForest(train, params);
    const model = JSON.parse(result.modelJson);
    expect(model).toMatchObject({
      algorithm: 'randomcutforest',
      feature_dim: 3,
      num_samples_per_tree: 256,
      num_trees: 50,
    });
    expect(result.distinctPoints).toBeLessThanOrEqual(3000);
    const test = points(1000, 2, 50);
    const predictor = RandomCutForestPredictor.fromBytes(Buffer.from(result.modelJson));
    const scores = (
      predictor.predict(parseUnlabeledCsv(test.csv)).json() as { scores: { score: number }[] }
    ).scores.map((s) => s.score);
    expect(auc(scores, test.labels)).toBeGreaterThan(0.95);
  });

  it("takes SageMaker's hyperparameters with their defaults and limits", () => {
    expect(parseRandomCutForestParams({ feature_dim: '4' })).toEqual({
      featureDim: 4,
      numSamplesPerTree: 256,
      numTrees: 100,
      seed: 0,
    });
    expect(() => parseRandomCutForestParams({})).toThrow('hyperparameter feature_dim is required');
    expect(() => parseRandomCutForestParams({ feature_dim: '2', num_trees: '10' })).toThrow(
      /num_trees must be an integer from 50 to 1000/,
    );
    expect(() =>
      trainRandomCutForest(parseUnlabeledCsv('1,2\n3,4\n'), parseRandomCutForestParams({ feature_dim: '3' })),
    ).toThrow(/feature_dim is 3 but the training data has 2 columns/);
  });
});
