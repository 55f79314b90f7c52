/**
 * Linear Learner training: SageMaker's hyperparameters, the three predictor
 * types, and the written model served by pgsage's Linear Learner predictor.
 */
import { describe, expect, it } from 'vitest';
import { LinearLearnerPredictor } from '../../src/models/linear-learner/predictor.js';
import { parseLinearLearnerParams } from '../../src/models/linear-learner/train/params.js';
import { trainLinearLearner } from '../../src/models/linear-learner/train/trainer.js';
import { SeededRandom } from '../../src/models/random-cut-forest/random.js';
import type { LabeledData } from '../../src/models/training-data.js';
import { auc } from '../support/training.js';

/** rows × 4 features on very different scales (normalization matters), label from `label(x)`. */
function dataset(rows: number, seed: number, label: (x: number[], noise: number) => number): LabeledData {
  const random = new SeededRandom(seed);
  const gaussian = () =>
    Math.sqrt(-2 * Math.log(1 - random.nextDouble())) * Math.cos(2 * Math.PI * random.nextDouble());
  const scales = [1, 100, 0.01, 10];
  const features = new Float32Array(rows * 4);
  const labels = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const x = scales.map((s) => gaussian() * s);
    features.set(x, r * 4);
    labels[r] = label(x, gaussian());
  }
  return { features: { data: features, rows, cols: 4 }, labels };
}

const linear = (x: number[]) => 2 * x[0] - 0.03 * x[1] + 150 * x[2] + 0.1 * x[3];

describe('Linear Learner training', () => {
  it('regressor: recovers a linear target on unnormalized features; served with the saved normalization', async () => {
    const train = dataset(5000, 1, (x, e) => 50 + linear(x) + 0.2 * e);
    const test = dataset(500, 2, (x, e) => 50 + linear(x) + 0.2 * e);
    const params = parseLinearLearnerParams({
      predictor_type: 'regressor',
      feature_dim: '4',
      epochs: '15',
      mini_batch_size: '100',
    });
    const result = await trainLinearLearner(train, test, params);
    const metrics = Object.fromEntries(result.finalMetrics.map((m) => [m.name, m.value]));
    expect(metrics['validation:mse']).toBeLessThan(0.1); // noise variance is 0.04
    const predictor = LinearLearnerPredictor.fromBytes(Buffer.from(result.modelJson));
    const scores = (predictor.predict(test.features).json() as { predictions: { score: number }[] }).predictions.map(
      (p) => p.score,
    );
    let squared = 0;
    scores.forEach((s, i) => {
      squared += (s - test.labels[i]) ** 2;
    });
    expect(squared / scores.length).toBeCloseTo(metrics['validation:mse'], 2);
  });

  it('binary_classifier: a well-ranked classifier with an accuracy-chosen threshold', async () => {
    const label = (x: number[], e: number) => (linear(x) + e > 0.5 ? 1 : 0);
    const train = dataset(4000, 3, label);
    const test = dataset(1000, 4, label);
    const epochs: number[] = [];
    const params = parseLinearLearnerParams({
      predictor_type: 'binary_classifier',
      epochs: '8',
      mini_batch_size: '100',
    });
    const result = await trainLinearLearner(train, undefined, params, { onEpoch: (r) => epochs.push(r.epoch) });
    expect(epochs).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const model = JSON.parse(result.modelJson);
    expect(model.binary_classifier_threshold).toBeGreaterThan(0.2);
    expect(model.binary_classifier_threshold).toBeLessThan(0.8);
    const predictions = (
      LinearLearnerPredictor.fromBytes(Buffer.from(result.modelJson)).predict(test.features).json() as {
        predictions: { score: number; predicted_label: number }[];
      }
    ).predictions;
    expect(
      auc(
        predictions.map((p) => p.score),
        test.labels,
      ),
    ).toBeGreaterThan(0.9);
    const accuracy = predictions.filter((p, i) => p.predicted_label === test.labels[i]).length / predictions.length;
    expect(accuracy).toBeGreaterThan(0.85);
  });

  it('multiclass_classifier: softmax over num_classes', async () => {
    const label = (x: number[], e: number) => {
      const s = linear(x) + 0.5 * e;
      return s < -1 ? 0 : s < 1 ? 1 : 2;
    };
    const train = dataset(4000, 5, label);
    const test = dataset(1000, 6, label);
    const params = parseLinearLearnerParams({
      predictor_type: 'multiclass_classifier',
      num_classes: '3',
      epochs: '10',
    });
    const result = await trainLinearLearner(train, test, params);
    const metrics = Object.fromEntries(result.finalMetrics.map((m) => [m.name, m.value]));
    expect(metrics['validation:multiclass_accuracy']).toBeGreaterThan(0.75);
  });

  it('stops early on the validation loss and when asked', async () => {
    const label = (x: number[], e: number) => (linear(x) + e > 0 ? 1 : 0);
    const train = dataset(2000, 7, label);
    const test = dataset(500, 8, label);
    const early = await trainLinearLearner(
      train,
      test,
      parseLinearLearnerParams({
        predictor_type: 'binary_classifier',
        epochs: '200',
        early_stopping_patience: '2',
        early_stopping_tolerance: '0.01',
      }),
    );
    expect(early.epochsTrained).toBeLessThan(200);
    let seen = 0;
    const stopped = await trainLinearLearner(
      train,
      undefined,
      parseLinearLearnerParams({ predictor_type: 'binary_classifier', epochs: '200' }),
      {
        onEpoch: () => seen++,
        shouldStop: () => seen >= 2,
      },
    );
    expect(stopped.stopped).toBe(true);
    expect(stopped.epochsTrained).toBe(2);
  });

  it("uses SageMaker's names, defaults and refusals", () => {
    const defaults = parseLinearLearnerParams({ predictor_type: 'binary_classifier', l1: 'auto', wd: 'auto' });
    expect(defaults).toMatchObject({
      epochs: 15,
      miniBatchSize: 1000,
      optimizer: 'adam',
      normalizeData: true,
      normalizeLabel: false,
      useBias: true,
      l1: 0,
      wd: 0,
    });
    expect(parseLinearLearnerParams({ predictor_type: 'regressor' }).normalizeLabel).toBe(true);
    expect(() => parseLinearLearnerParams({})).toThrow(/predictor_type is required/);
    expect(() => parseLinearLearnerParams({ predictor_type: 'multiclass_classifier' })).toThrow(/num_classes/);
    expect(() => parseLinearLearnerParams({ predictor_type: 'regressor', loss: 'hinge_loss' })).toThrow(
      /not supported/,
    );
    expect(() => parseLinearLearnerParams({ predictor_type: 'regressor', shoe_size: '9' })).toThrow(
      /unknown Linear Learner hyperparameter/,
    );
  });

  it('refuses labels that do not fit the predictor type and a wrong feature_dim', async () => {
    const train = dataset(10, 9, () => 2);
    await expect(
      trainLinearLearner(train, undefined, parseLinearLearnerParams({ predictor_type: 'binary_classifier' })),
    ).rejects.toThrow(/labels must be 0 or 1/);
    await expect(
      trainLinearLearner(train, undefined, parseLinearLearnerParams({ predictor_type: 'regressor', feature_dim: '3' })),
    ).rejects.toThrow(/feature_dim is 3 but the training data has 4/);
  });
});
