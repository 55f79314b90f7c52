import { describe, expect, it } from 'vitest';
import { buildRandomCutForest, RandomCutForest } from '../../src/models/random-cut-forest/forest.js';
import { deserializeRandomCutForest, serializeRandomCutForest } from '../../src/models/random-cut-forest/model-file.js';
import { SeededRandom } from '../../src/models/random-cut-forest/random.js';
import { loadPredictor } from '../../src/models/registry.js';
import { type FeatureMatrix, ModelFormatError, ModelInputError } from '../../src/models/types.js';

const DIMS = 4;

/** Gaussian cluster plus planted anomalies well outside it; labels mark the anomalies. */
function syntheticData(
  normal: number,
  anomalies: number,
  seed: number,
): { matrix: FeatureMatrix; isAnomaly: boolean[] } {
  const random = new SeededRandom(seed);
  const gaussian = () =>
    Math.sqrt(-2 * Math.log(1 - random.nextDouble())) * Math.cos(2 * Math.PI * random.nextDouble());
  const rows = normal + anomalies;
  const data = new Float64Array(rows * DIMS);
  const isAnomaly: boolean[] = [];
  for (let r = 0; r < rows; r++) {
    const anomalous = r % Math.floor(rows / anomalies) === 0 && isAnomaly.filter(Boolean).length < anomalies;
    isAnomaly.push(anomalous);
    for (let d = 0; d < DIMS; d++) data[r * DIMS + d] = gaussian() + (anomalous && d === r % DIMS ? 6 : 0);
  }
  return { matrix: { data, rows, cols: DIMS }, isAnomaly };
}

/** Area under the ROC curve: probability an anomaly outscores a normal point. */
function auc(scores: Float64Array, isAnomaly: boolean[]): number {
  let wins = 0;
  let pairs = 0;
  scores.forEach((a, i) => {
    if (!isAnomaly[i]) return;
    scores.forEach((b, j) => {
      if (isAnomaly[j]) return;
      pairs++;
      wins += a > b ? 1 : a === b ? 0.5 : 0;
    });
  });
  return wins / pairs;
}

describe('Random Cut Forest', () => {
  const { matrix, isAnomaly } = syntheticData(2000, 20, 7);
  const model = buildRandomCutForest(matrix, { numTrees: 50, samplesPerTree: 256, seed: 42 });
  const forest = new RandomCutForest(model);
  const scores = forest.score(matrix);

  it('ranks planted anomalies above normal points (AUC ≥ 0.98)', () => {
    expect(auc(scores, isAnomaly)).toBeGreaterThanOrEqual(0.98);
  });

  it('scores typical points about 1 and anomalies clearly higher, as SageMaker RCF does', () => {
    const normal = scores.filter((_, i) => !isAnomaly[i]);
    const anomalous = scores.filter((_, i) => isAnomaly[i]);
    const mean = (xs: Float64Array) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(normal)).toBeGreaterThan(0.6);
    expect(mean(normal)).toBeLessThan(1.4);
    expect(mean(anomalous)).toBeGreaterThan(mean(normal) * 1.5);
  });

  it('is deterministic for a seed, and the seed matters', () => {
    const again = new RandomCutForest(buildRandomCutForest(matrix, { numTrees: 50, samplesPerTree: 256, seed: 42 }));
    expect(again.score(matrix)).toEqual(scores);
    const other = new RandomCutForest(buildRandomCutForest(matrix, { numTrees: 50, samplesPerTree: 256, seed: 43 }));
    expect(other.score(matrix)).not.toEqual(scores);
  });

  it('round-trips through its JSON model file and serves through loadPredictor', async () => {
    const json = serializeRandomCutForest(model);
    const restored = deserializeRandomCutForest(json);
    expect(restored.samples.length).toBe(50);
    expect(new RandomCutForest(restored).score(matrix)).toEqual(scores);

    const predictor = await loadPredictor('randomcutforest', { fileName: 'model.json', bytes: Buffer.from(json) });
    expect(predictor.numFeatures).toBe(DIMS);
    const head: FeatureMatrix = { data: matrix.data.subarray(0, 3 * DIMS), rows: 3, cols: DIMS };
    const p = await predictor.predict(head);
    expect(p.json()).toEqual({ scores: Array.from(scores.subarray(0, 3), (score) => ({ score })) });
    expect(p.csvLines()).toEqual(Array.from(scores.subarray(0, 3), String));
  });

  it('samples without replacement, and uses every row when there are fewer rows than samples', () => {
    const small: FeatureMatrix = { data: Float64Array.from({ length: 20 }, (_, i) => i), rows: 10, cols: 2 };
    const m = buildRandomCutForest(small, { numTrees: 3, samplesPerTree: 256, seed: 1 });
    for (const sample of m.samples) expect([...sample].sort((a, b) => a - b)).toEqual([...Array(10).keys()]);
    const big = buildRandomCutForest(matrix, { numTrees: 5, samplesPerTree: 100, seed: 1 });
    for (const sample of big.samples) expect(new Set(sample).size).toBe(100);
  });

  it('handles duplicate points and constant data without dividing by zero', () => {
    const constant: FeatureMatrix = { data: new Float64Array(40).fill(3), rows: 20, cols: 2 };
    const f = new RandomCutForest(buildRandomCutForest(constant, { numTrees: 5, samplesPerTree: 16, seed: 3 }));
    const [inside, outside] = f.score({ data: Float64Array.from([3, 3, 10, 3]), rows: 2, cols: 2 });
    expect(Number.isFinite(inside)).toBe(true);
    expect(outside).toBeGreaterThan(inside);
  });

  it('rejects missing values, wrong widths and malformed model files', () => {
    expect(() => forest.score({ data: new Float64Array(DIMS).fill(Number.NaN), rows: 1, cols: DIMS })).toThrow(
      ModelInputError,
    );
    expect(() => forest.score({ data: new Float64Array(3), rows: 1, cols: 3 })).toThrow(ModelInputError);
    const doc = JSON.parse(serializeRandomCutForest(model));
    for (const broken of [
      { ...doc, algorithm: 'xgboost' },
      { ...doc, format_version: 2 },
      { ...doc, trees: [[doc.points.length]] },
      { ...doc, points: [[1]] },
    ]) {
      expect(() => deserializeRandomCutForest(JSON.stringify(broken))).toThrow(ModelFormatError);
    }
  });
});
