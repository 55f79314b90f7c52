import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { artifactFiles } from '../../src/models/artifact.js';
import { parseCsvFeatures } from '../../src/models/csv-features.js';
import { loadPredictor } from '../../src/models/registry.js';
import { ModelFormatError, ModelInputError } from '../../src/models/types.js';
import { describeModel, readXGBoostModel } from '../../src/models/xgboost/model-file.js';
import { XGBoostPredictor } from '../../src/models/xgboost/predictor.js';

const DIR = join(import.meta.dirname, '..', 'fixtures', 'models', 'xgboost');

interface Case {
  rows: number;
  cols: number;
  rounds: number;
  first_half_rounds?: number;
  params: Record<string, unknown>;
  files: Record<string, string>;
}
const manifest = JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8')) as {
  xgboost_version: string;
  cases: Record<string, Case>;
};

const read = (file: string) => readFileSync(join(DIR, file));
const inputOf = (c: Case) => parseCsvFeatures(read(c.files.input), c.cols);
const referenceOf = (file: string) => parseCsvFeatures(read(file)).data;

/** Model file bytes of a case, whichever form it was committed in. */
function modelBytes(c: Case): Buffer {
  if (c.files.json) return read(c.files.json);
  return artifactFiles({ fileName: c.files.json_tarball, bytes: read(c.files.json_tarball) })[0].bytes;
}

/** ≤ 1e-5 relative, or 1e-6 absolute near zero. */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  let worstAt = -1;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i];
    const a = actual[i];
    const error = Math.abs(a - e) / Math.max(Math.abs(e), 0.1);
    if (!(error <= worst)) {
      worst = error;
      worstAt = i;
    }
  }
  const ok =
    worstAt === -1 ||
    Math.abs(actual[worstAt] - expected[worstAt]) <= Math.max(1e-5 * Math.abs(expected[worstAt]), 1e-6);
  expect(ok, `worst at ${worstAt}: ${actual[worstAt]} vs ${expected[worstAt]}`).toBe(true);
}

describe('XGBoost predictions equal the real library', () => {
  it('fixtures come from XGBoost 1.7', () => {
    expect(manifest.xgboost_version).toMatch(/^1\.7\./);
  });

  for (const [name, c] of Object.entries(manifest.cases)) {
    it(`${name} (${c.params.objective}${c.params.booster ? `, ${c.params.booster}` : ''})`, () => {
      const predictor = XGBoostPredictor.fromBytes(modelBytes(c), { rounds: 'all' });
      const input = inputOf(c);
      expect(input.rows).toBe(c.rows);
      const predictions = predictor.predict(input);
      expectClose(predictions.values, referenceOf(c.files.predict));
      if (c.files.margin) expectClose(predictor.margins(input), referenceOf(c.files.margin));
    });

    if (c.first_half_rounds !== undefined) {
      it(`${name}: first ${c.first_half_rounds} rounds`, () => {
        const predictor = XGBoostPredictor.fromBytes(modelBytes(c), { rounds: c.first_half_rounds });
        expectClose(predictor.predict(inputOf(c)).values, referenceOf(c.files.predict_first_half!));
      });
    }
  }
});

describe('XGBoost model files', () => {
  const binary = manifest.cases.binary_logistic;
  const binaryInput = () => inputOf(binary);

  it('loads SageMaker model.tar.gz artifacts in JSON and UBJSON and serves them like the container', async () => {
    const expected = referenceOf(binary.files.predict);
    for (const file of [binary.files.json_tarball, binary.files.ubj_tarball]) {
      const predictor = await loadPredictor('xgboost', { fileName: 'model.tar.gz', bytes: read(file) });
      expect(predictor.algorithm).toBe('xgboost');
      expect(predictor.numFeatures).toBe(12);
      const predictions = await predictor.predict(binaryInput());
      expectClose((predictions as unknown as { values: Float32Array }).values, expected);
    }
  });

  it('reads a raw UBJSON model into the same description as its JSON twin', () => {
    const c = manifest.cases.multi_softprob;
    const fromJson = readXGBoostModel(read(c.files.json));
    const fromUbj = readXGBoostModel(read(c.files.ubj));
    expect(fromUbj.objective).toBe('multi:softprob');
    expect(fromUbj.trees.length).toBe(fromJson.trees.length);
    expect(fromUbj.baseScore).toEqual(fromJson.baseScore);
    const a = XGBoostPredictor.fromBytes(read(c.files.ubj)).predict(inputOf(c)).values;
    expectClose(a, referenceOf(c.files.predict));
  });

  it('prints text/csv exactly as the real container would (str of each float32 prediction)', () => {
    for (const name of ['binary_logistic', 'multi_softprob', 'multi_softmax', 'reg_squarederror', 'binary_hinge']) {
      const c = manifest.cases[name];
      const predictor = XGBoostPredictor.fromBytes(modelBytes(c), { rounds: 'all' });
      const expected = read(c.files.predict).toString('utf8').trimEnd().split('\n');
      expect(predictor.predict(inputOf(c)).csvLines()).toEqual(expected);
    }
  });

  it('honours best_ntree_limit as the SageMaker container does, and ignores it when asked for all rounds', () => {
    const c = manifest.cases.reg_squarederror;
    const document = JSON.parse(read(c.files.json).toString('utf8'));
    document.learner.attributes = {
      best_iteration: String(c.first_half_rounds! - 1),
      best_ntree_limit: String(c.first_half_rounds),
    };
    const model = describeModel(document);
    const input = inputOf(c);
    expectClose(new XGBoostPredictor(model).predict(input).values, referenceOf(c.files.predict_first_half!));
    expectClose(new XGBoostPredictor(model, { rounds: 'all' }).predict(input).values, referenceOf(c.files.predict));
  });

  it('divides best_ntree_limit by num_parallel_tree', () => {
    const c = manifest.cases.multi_softprob_parallel;
    const document = JSON.parse(read(c.files.json).toString('utf8'));
    // Two rounds of 3 classes × 2 parallel trees = 12 trees.
    document.learner.attributes = { best_iteration: '1', best_ntree_limit: String(2 * 2) };
    const predictor = new XGBoostPredictor(describeModel(document));
    expectClose(predictor.predict(inputOf(c)).values, referenceOf(c.files.predict_first_half!));
  });

  it('reads the XGBoost 2.x/3.x layout (bracketed base_score vector, iteration_indptr, size_leaf_vector "1")', () => {
    for (const name of ['binary_logistic', 'multi_softprob', 'count_poisson']) {
      const c = manifest.cases[name];
      const document = JSON.parse(modelBytes(c).toString('utf8'));
      const learner = document.learner;
      const groups = Math.max(Number(learner.learner_model_param.num_class), 1);
      const base = learner.learner_model_param.base_score;
      learner.learner_model_param.base_score = `[${new Array(groups).fill(base).join(',')}]`;
      learner.attributes = { best_iteration: String(c.rounds - 1) };
      const model = learner.gradient_booster.model;
      const perRound = model.trees.length / c.rounds;
      model.iteration_indptr = Array.from({ length: c.rounds + 1 }, (_, i) => i * perRound);
      model.gbtree_model_param = { num_parallel_tree: '1', num_trees: String(model.trees.length) };
      for (const tree of model.trees) tree.tree_param.size_leaf_vector = '1';
      document.version = [3, 0, 0];
      const predictor = new XGBoostPredictor(describeModel(document));
      expectClose(predictor.predict(inputOf(c)).values, referenceOf(c.files.predict));
    }
  });

  it('takes a missing trailing column as missing, and refuses more columns than the model has', () => {
    const c = manifest.cases.reg_squarederror;
    const predictor = XGBoostPredictor.fromBytes(read(c.files.json));
    const full = inputOf(c);
    const narrow = new Float64Array(full.rows * 10);
    const padded = new Float64Array(full.data);
    for (let r = 0; r < full.rows; r++) {
      narrow.set(full.data.subarray(r * 12, r * 12 + 10), r * 10);
      padded[r * 12 + 10] = Number.NaN;
      padded[r * 12 + 11] = Number.NaN;
    }
    const fromNarrow = predictor.predict({ data: narrow, rows: full.rows, cols: 10 }).values;
    expect(fromNarrow).toEqual(predictor.predict({ data: padded, rows: full.rows, cols: 12 }).values);
    expect(fromNarrow).not.toEqual(predictor.predict(full).values);
    expect(() => predictor.predict({ data: new Float64Array(13), rows: 1, cols: 13 })).toThrow(ModelInputError);
  });

  it('accepts float32 input and scores an empty batch', () => {
    const c = manifest.cases.binary_logistic;
    const predictor = XGBoostPredictor.fromBytes(modelBytes(c));
    const input = inputOf(c);
    const asFloat32 = { ...input, data: Float32Array.from(input.data) };
    expect(predictor.predict(asFloat32).values).toEqual(predictor.predict(input).values);
    const empty = predictor.predict({ data: new Float64Array(0), rows: 0, cols: 12 });
    expect(empty.rows).toBe(0);
    expect(empty.csvLines()).toEqual([]);
  });

  it('refuses what it cannot serve faithfully, with ModelFormatError', () => {
    const c = manifest.cases.reg_squarederror;
    const base = () => JSON.parse(read(c.files.json).toString('utf8'));
    const categorical = base();
    categorical.learner.gradient_booster.model.trees[0].split_type[0] = 1;
    const vectorLeaf = base();
    vectorLeaf.learner.gradient_booster.model.trees[0].tree_param.size_leaf_vector = '3';
    const unknownObjective = base();
    unknownObjective.learner.objective.name = 'reg:made-up';
    const cyclic = base();
    cyclic.learner.gradient_booster.model.trees[0].left_children[1] = 1;
    for (const document of [categorical, vectorLeaf, unknownObjective, cyclic]) {
      expect(() => new XGBoostPredictor(describeModel(document))).toThrow(ModelFormatError);
    }
    expect(() => readXGBoostModel(Buffer.from('binf\u0000\u0000\u0000?'))).toThrow(ModelFormatError);
    expect(() => readXGBoostModel(Buffer.from('{"learner": '))).toThrow(ModelFormatError);
  });
});

describe('XGBoost JSON answers (SageMaker selectable inference shape)', () => {
  const predictionsOf = (name: string) => {
    const c = manifest.cases[name];
    return XGBoostPredictor.fromBytes(modelBytes(c), { rounds: 'all' }).predict(inputOf(c));
  };

  it('binary:logistic → predicted_label and probability', () => {
    const p = predictionsOf('binary_logistic');
    const first = p.json().predictions[0];
    expect(Object.keys(first)).toEqual(['predicted_label', 'probability']);
    expect(first.probability).toBe(p.values[0]);
    expect(first.predicted_label).toBe(p.values[0] > 0.5 ? 1 : 0);
    const selected = p.select(['labels', 'probabilities', 'predicted_score'])[0];
    expect(selected).toEqual({ labels: [0, 1], probabilities: [1 - p.values[0], p.values[0]], predicted_score: null });
  });

  it('multi:softprob → predicted_label is the most probable class, probabilities the row', () => {
    const p = predictionsOf('multi_softprob');
    for (let r = 0; r < 5; r++) {
      const { predicted_label, probabilities } = p.json().predictions[r] as {
        predicted_label: number;
        probabilities: number[];
      };
      expect(probabilities).toEqual(p.row(r));
      expect(probabilities[predicted_label]).toBe(Math.max(...probabilities));
    }
  });

  it('regression → predicted_score; multi:softmax → predicted_label', () => {
    const reg = predictionsOf('reg_squarederror');
    expect(reg.json().predictions[0]).toEqual({ predicted_score: reg.values[0] });
    const softmax = predictionsOf('multi_softmax');
    expect(softmax.json().predictions[0]).toEqual({ predicted_label: softmax.values[0] });
    expect(softmax.csvLines()[0]).toMatch(/^[012]\.0$/);
  });
});
