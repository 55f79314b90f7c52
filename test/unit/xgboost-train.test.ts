/**
 * XGBoost training: the same trees as the real XGBoost (reference predictions of
 * XGBoost 1.7.4 made by scripts/fixtures/make_training_fixtures.py), the model
 * served by pgsage's own predictor, and — when Python's xgboost is installed —
 * loaded by the real library with the same predictions.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseLabeledCsv } from '../../src/models/training-data.js';
import { XGBoostPredictor } from '../../src/models/xgboost/predictor.js';
import { binaryAuc, evaluateMetric } from '../../src/models/xgboost/train/metrics.js';
import { float32Text } from '../../src/models/xgboost/train/model-writer.js';
import { parseXGBoostParams } from '../../src/models/xgboost/train/params.js';
import { binMatrix, computeCuts } from '../../src/models/xgboost/train/quantile.js';
import { type RoundReport, trainXGBoost } from '../../src/models/xgboost/train/trainer.js';
import { classificationCsv } from '../support/training.js';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'training');
const PYTHON = '/usr/bin/python3';

function fixture(name: string) {
  const data = parseLabeledCsv(readFileSync(path.join(FIXTURES, `${name}.csv`)));
  const params = JSON.parse(readFileSync(path.join(FIXTURES, `${name}.params.json`), 'utf8'));
  const expected = readFileSync(path.join(FIXTURES, `${name}.predict.csv`), 'utf8')
    .trim()
    .split('\n')
    .map((line) => line.split(',').map(Number));
  return { data, params, expected };
}

describe('histogram cuts', () => {
  it('cuts at every distinct value above the minimum, then a sentinel, and bins with upper_bound', () => {
    const column = Float32Array.from([3, 1, 2, 2, Number.NaN, 5]);
    const cuts = computeCuts(column, 6, 1, 256);
    expect(Array.from(cuts.values)).toEqual([2, 3, 5, Math.fround(5 + Math.fround(5 + 1e-5))]);
    expect(cuts.minValues[0]).toBe(Math.fround(1 - Math.fround(1 + 1e-5)));
    const bins = new Uint16Array(6);
    binMatrix(cuts, column, 6, bins);
    // 3 → bin 2 (first cut > 3 is 5), 1 → 0, 2 → 1, missing → one past the last bin.
    expect(Array.from(bins)).toEqual([2, 0, 1, 1, 4, 3]);
  });

  it('keeps at most max_bin bins however many distinct values there are', () => {
    const column = Float32Array.from({ length: 10_000 }, (_, i) => Math.sin(i) * 100);
    const cuts = computeCuts(column, 10_000, 1, 16);
    expect(cuts.values.length).toBeLessThanOrEqual(16);
    expect(cuts.values.length).toBeGreaterThan(10);
    for (let i = 1; i < cuts.values.length; i++) expect(cuts.values[i]).toBeGreaterThan(cuts.values[i - 1]);
  });
});

describe('XGBoost training against the real XGBoost 1.7.4', () => {
  for (const name of ['regression', 'binary', 'multi', 'poisson']) {
    it(`${name}: grows XGBoost's trees (same predictions), served by pgsage's predictor`, async () => {
      const { data, params, expected } = fixture(name);
      const result = await trainXGBoost(data, undefined, parseXGBoostParams(params), { threads: 2 });
      const predictor = XGBoostPredictor.fromBytes(Buffer.from(result.modelJson), { rounds: 'all' });
      const predicted = predictor.predict(data.features);
      const lines = predicted.csvLines();
      expect(lines).toHaveLength(expected.length);
      let worst = 0;
      lines.forEach((line, i) => {
        line
          .split(',')
          .map(Number)
          .forEach((value, k) => {
            worst = Math.max(worst, Math.abs(value - expected[i][k]) / Math.max(1, Math.abs(expected[i][k])));
          });
      });
      expect(worst).toBeLessThan(1e-5);
    });
  }

  // Needs Debian's python3-xgboost (installed by .ci/run); fails with Python's message when it is missing.
  it('real XGBoost loads the trained model and predicts the same numbers (needs python3-xgboost)', async () => {
    const { data, params } = fixture('binary');
    const result = await trainXGBoost(data, undefined, parseXGBoostParams(params));
    const dir = mkdtempSync(path.join(tmpdir(), 'pgsage-xgb-train-'));
    try {
      // SageMaker's file name, without an extension: XGBoost recognizes the JSON by its content.
      writeFileSync(path.join(dir, 'xgboost-model'), result.modelJson);
      const script =
        'import sys, numpy as np, xgboost as xgb\n' +
        'b = xgb.Booster(); b.load_model(sys.argv[1])\n' +
        't = np.genfromtxt(sys.argv[2], delimiter=",", missing_values="", filling_values=np.nan)\n' +
        'print("\\n".join(repr(float(p)) for p in b.predict(xgb.DMatrix(t[:, 1:]))))\n';
      const run = spawnSync(
        PYTHON,
        ['-c', script, path.join(dir, 'xgboost-model'), path.join(FIXTURES, 'binary.csv')],
        {
          encoding: 'utf8',
        },
      );
      expect(run.status, run.stderr).toBe(0);
      const real = run.stdout.trim().split('\n').map(Number);
      const ours = XGBoostPredictor.fromBytes(Buffer.from(result.modelJson))
        .predict(data.features)
        .csvLines()
        .map(Number);
      expect(ours).toEqual(real);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('training behaviour', () => {
  const train = parseLabeledCsv(classificationCsv(2000, 41));
  const validation = parseLabeledCsv(classificationCsv(600, 42));

  it('reports every round, evaluates train and validation metrics, and learns', async () => {
    const reports: RoundReport[] = [];
    const params = parseXGBoostParams({
      num_round: '15',
      max_depth: '3',
      objective: 'binary:logistic',
      eval_metric: 'error,auc',
    });
    const result = await trainXGBoost(train, validation, params, { onRound: (r) => reports.push(r) });
    expect(reports.map((r) => r.round)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(reports[0].metrics.map((m) => m.name)).toEqual([
      'train:error',
      'train:auc',
      'validation:error',
      'validation:auc',
    ]);
    const auc = (r: RoundReport) => r.metrics[3].value;
    expect(auc(reports[14])).toBeGreaterThan(auc(reports[0]));
    expect(auc(reports[14])).toBeGreaterThan(0.85);
    expect(result.roundsTrained).toBe(15);
    expect(result.finalMetrics).toEqual(reports[14].metrics);
  });

  it('stops early when the last metric stops improving, keeping every tree and the best iteration', async () => {
    const params = parseXGBoostParams({
      num_round: '500',
      max_depth: '6',
      eta: '0.6',
      objective: 'binary:logistic',
      eval_metric: 'auc,logloss',
      early_stopping_rounds: '4',
    });
    const result = await trainXGBoost(train, validation, params);
    expect(result.earlyStopped).toBe(true);
    expect(result.roundsTrained).toBe(result.bestIteration + 1 + 4);
    const model = JSON.parse(result.modelJson);
    expect(model.learner.attributes.best_iteration).toBe(String(result.bestIteration));
    expect(model.learner.attributes.best_ntree_limit).toBe(String(result.bestIteration + 1));
    // As SageMaker serves it: only the best rounds.
    const served = XGBoostPredictor.fromBytes(Buffer.from(result.modelJson));
    const all = XGBoostPredictor.fromBytes(Buffer.from(result.modelJson), { rounds: 'all' });
    const first = { data: validation.features.data.subarray(0, 8), rows: 1, cols: 8 };
    expect(served.margins(first)[0]).not.toBe(all.margins(first)[0]);
  });

  it('stops when asked, between rounds', async () => {
    let rounds = 0;
    const result = await trainXGBoost(
      train,
      undefined,
      parseXGBoostParams({ num_round: '1000', objective: 'binary:logistic' }),
      {
        onRound: () => rounds++,
        shouldStop: () => rounds >= 3,
      },
    );
    expect(result.stopped).toBe(true);
    expect(result.roundsTrained).toBe(3);
  });

  it('gives the same model on one thread and on two', async () => {
    const params = parseXGBoostParams({ num_round: '10', max_depth: '5', objective: 'reg:squarederror' });
    const big = parseLabeledCsv(classificationCsv(20_000, 43));
    const one = await trainXGBoost(big, undefined, params, { threads: 1 });
    const two = await trainXGBoost(big, undefined, params, { threads: 2 });
    const a = XGBoostPredictor.fromBytes(Buffer.from(one.modelJson)).margins(validation.features);
    const b = XGBoostPredictor.fromBytes(Buffer.from(two.modelJson)).margins(validation.features);
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(1e-4);
  });

  it('subsamples rows and columns reproducibly from the seed', async () => {
    const params = (seed: string) =>
      parseXGBoostParams({
        num_round: '5',
        subsample: '0.7',
        colsample_bytree: '0.5',
        seed,
        objective: 'binary:logistic',
      });
    const a = await trainXGBoost(train, undefined, params('1'));
    const b = await trainXGBoost(train, undefined, params('1'));
    const c = await trainXGBoost(train, undefined, params('2'));
    expect(a.modelJson).toBe(b.modelJson);
    expect(a.modelJson).not.toBe(c.modelJson);
  });

  it('refuses bad hyperparameters and labels with XGBoost-like messages', async () => {
    expect(() => parseXGBoostParams({ max_depth: '3' })).toThrow('hyperparameter num_round is required');
    expect(() => parseXGBoostParams({ num_round: '3', objective: 'rank:pairwise' })).toThrow(
      /cannot be trained by pgsage/,
    );
    expect(() => parseXGBoostParams({ num_round: '3', objective: 'multi:softmax' })).toThrow(/needs num_class/);
    expect(() => parseXGBoostParams({ num_round: '3', colour: 'red' })).toThrow(
      'unknown XGBoost hyperparameter "colour"',
    );
    expect(() => parseXGBoostParams({ num_round: 'ten' })).toThrow(/is not a number/);
    const labels = parseLabeledCsv('2,1\n0,3\n');
    await expect(
      trainXGBoost(labels, undefined, parseXGBoostParams({ num_round: '2', objective: 'binary:logistic' })),
    ).rejects.toThrow(/label must be in \[0,1\]/);
  });
});

describe('metrics and the model file', () => {
  it('computes AUC with ties, logloss, error and rmse', () => {
    expect(binaryAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBe(0.75);
    expect(binaryAuc([0.5, 0.5], [0, 1])).toBe(0.5);
    const p = Float32Array.from([0.9, 0.2]);
    const y = Float32Array.from([1, 0]);
    expect(evaluateMetric('error', p, 1, y)).toBe(0);
    expect(evaluateMetric('logloss', p, 1, y)).toBeCloseTo(
      -(Math.log(Math.fround(0.9)) + Math.log(1 - Math.fround(0.2))) / 2,
      6,
    );
    expect(evaluateMetric('rmse', Float32Array.from([1, 3]), 1, Float32Array.from([2, 2]))).toBe(1);
  });

  it("writes floats XGBoost's typed JSON reader accepts: always a fraction or exponent, exact in float32", () => {
    expect(float32Text(1)).toBe('1.0');
    expect(float32Text(0)).toBe('0.0');
    expect(float32Text(-0)).toBe('-0.0');
    expect(float32Text(0.1)).toBe('0.1');
    expect(float32Text(1e-7)).toBe('1e-7');
    expect(Math.fround(Number(float32Text(Math.fround(1 / 3))))).toBe(Math.fround(1 / 3));
  });
});
