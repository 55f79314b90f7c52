import { describe, expect, it } from 'vitest';
import { LinearLearnerPredictor } from '../../src/models/linear-learner/predictor.js';
import { loadPredictor } from '../../src/models/registry.js';
import { ModelFormatError, ModelInputError } from '../../src/models/types.js';

const artifact = (model: unknown) => ({ fileName: 'model.json', bytes: Buffer.from(JSON.stringify(model)) });
const matrix = (rows: number[][]) => ({
  data: Float64Array.from(rows.flat()),
  rows: rows.length,
  cols: rows[0]?.length ?? 0,
});

describe('Linear Learner', () => {
  it('regressor: w·x + b, undoing label normalization; JSON {"score"} and CSV score', async () => {
    const predictor = await loadPredictor(
      'linear-learner',
      artifact({
        algorithm: 'linear-learner',
        predictor_type: 'regressor',
        feature_dim: 2,
        weights: [[2, -1]],
        bias: [0.5],
        normalization: { feature_mean: [1, 0], feature_scale: [2, 1], label_mean: 10, label_scale: 3 },
      }),
    );
    expect(predictor.numFeatures).toBe(2);
    const p = await predictor.predict(
      matrix([
        [5, 1],
        [1, 0],
      ]),
    );
    // ((5-1)/2 * 2 - 1 + 0.5) * 3 + 10 = 20.5 ; ((0) * 2 + 0 + 0.5) * 3 + 10 = 11.5
    expect(p.json()).toEqual({ predictions: [{ score: 20.5 }, { score: 11.5 }] });
    expect(p.csvLines()).toEqual(['20.5', '11.5']);
  });

  it('binary_classifier: sigmoid score, label from the threshold; CSV "label,score"', () => {
    const predictor = LinearLearnerPredictor.fromBytes(
      artifact({
        algorithm: 'linear-learner',
        predictor_type: 'binary_classifier',
        feature_dim: 1,
        weights: [[1]],
        bias: [0],
        binary_classifier_threshold: 0.7,
      }).bytes,
    );
    const p = predictor.predict(matrix([[0], [Math.log(3)], [Math.log(1.5)]]));
    const json = p.json().predictions;
    expect(json[0]).toEqual({ score: 0.5, predicted_label: 0 });
    expect(json[1].score).toBeCloseTo(0.75, 12);
    expect(json[1].predicted_label).toBe(1);
    expect(json[2].score).toBeCloseTo(0.6, 12);
    expect(json[2].predicted_label).toBe(0);
    expect(p.csvLines()[0]).toBe('0,0.5');
  });

  it('multiclass_classifier: softmax over classes, argmax label', () => {
    const predictor = LinearLearnerPredictor.fromBytes(
      artifact({
        algorithm: 'linear-learner',
        predictor_type: 'multiclass_classifier',
        feature_dim: 2,
        num_classes: 3,
        weights: [
          [1, 0],
          [0, 1],
          [0, 0],
        ],
        bias: [0, 0, Math.log(2)],
      }).bytes,
    );
    const p = predictor.predict(
      matrix([
        [0, 0],
        [3, 1],
      ]),
    );
    const [first, second] = p.json().predictions;
    expect(first.predicted_label).toBe(2);
    expect(first.score as number[]).toEqual([0.25, 0.25, 0.5]);
    expect(second.predicted_label).toBe(0);
    expect((second.score as number[]).reduce((a, b) => a + b)).toBeCloseTo(1, 12);
    expect(p.csvLines()[0]).toBe('2,0.25,0.25,0.5');
  });

  it('rejects missing values and a wrong column count with ModelInputError', () => {
    const predictor = LinearLearnerPredictor.fromBytes(
      artifact({
        algorithm: 'linear-learner',
        predictor_type: 'regressor',
        feature_dim: 2,
        weights: [[1, 1]],
        bias: [0],
      }).bytes,
    );
    expect(() => predictor.predict(matrix([[1, Number.NaN]]))).toThrow(/row 1, column 2/);
    expect(() => predictor.predict(matrix([[1, 2, 3]]))).toThrow(ModelInputError);
  });

  it('rejects malformed model files with ModelFormatError', () => {
    const good = {
      algorithm: 'linear-learner',
      predictor_type: 'regressor',
      feature_dim: 2,
      weights: [[1, 1]],
      bias: [0],
    };
    for (const bad of [
      { ...good, algorithm: 'xgboost' },
      { ...good, predictor_type: 'ranker' },
      { ...good, weights: [[1]] },
      { ...good, bias: [] },
      { ...good, predictor_type: 'multiclass_classifier', num_classes: 3 },
    ]) {
      expect(() => LinearLearnerPredictor.fromBytes(artifact(bad).bytes), JSON.stringify(bad)).toThrow(
        ModelFormatError,
      );
    }
    expect(() => LinearLearnerPredictor.fromBytes(Buffer.from('\u0000mxnet'))).toThrow(ModelFormatError);
  });
});
