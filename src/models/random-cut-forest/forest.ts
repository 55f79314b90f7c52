/**
 * Random Cut Forest: building (sampling + trees) and scoring.
 *
 * Training is only sampling: each tree takes `samplesPerTree` rows drawn without
 * replacement (SageMaker's num_samples_per_tree, default 256), then its tree is
 * built by random cuts. A RandomCutForestModel records the samples and the seed,
 * which is all it takes to rebuild identical trees.
 */
import { type FeatureMatrix, ModelInputError } from '../types.js';
import { derivedSeed, SeededRandom } from './random.js';
import { RandomCutTree } from './tree.js';

export interface RandomCutForestModel {
  readonly featureDim: number;
  readonly numSamplesPerTree: number;
  readonly seed: number;
  /** Distinct sampled rows, row-major (points × featureDim). */
  readonly points: Float64Array;
  /** Per tree, the indices into `points` of its sample. */
  readonly samples: readonly Int32Array[];
}

export interface RandomCutForestOptions {
  /** SageMaker's num_trees: 50–1000, default 100. */
  readonly numTrees?: number;
  /** SageMaker's num_samples_per_tree: 1–2048, default 256. */
  readonly samplesPerTree?: number;
  readonly seed?: number;
}

export function buildRandomCutForest(data: FeatureMatrix, options: RandomCutForestOptions = {}): RandomCutForestModel {
  const numTrees = options.numTrees ?? 100;
  const samplesPerTree = options.samplesPerTree ?? 256;
  const seed = (options.seed ?? 0) >>> 0;
  if (!Number.isInteger(numTrees) || numTrees < 1) throw new RangeError('numTrees must be a positive integer');
  if (!Number.isInteger(samplesPerTree) || samplesPerTree < 1)
    throw new RangeError('samplesPerTree must be a positive integer');
  assertComplete(data);

  const take = Math.min(samplesPerTree, data.rows);
  const pointOfRow = new Map<number, number>();
  const keptRows: number[] = [];
  const samples: Int32Array[] = [];
  for (let t = 0; t < numTrees; t++) {
    const random = new SeededRandom(derivedSeed(seed, t));
    const sample = new Int32Array(take);
    let i = 0;
    for (const row of sampleWithoutReplacement(data.rows, take, random)) {
      let point = pointOfRow.get(row);
      if (point === undefined) {
        point = keptRows.length;
        pointOfRow.set(row, point);
        keptRows.push(row);
      }
      sample[i++] = point;
    }
    samples.push(sample);
  }
  const points = new Float64Array(keptRows.length * data.cols);
  keptRows.forEach((row, i) => {
    for (let c = 0; c < data.cols; c++) points[i * data.cols + c] = data.data[row * data.cols + c];
  });
  return { featureDim: data.cols, numSamplesPerTree: samplesPerTree, seed, points, samples };
}

/** A model with its trees built, ready to score. */
export class RandomCutForest {
  private readonly trees: RandomCutTree[];

  constructor(readonly model: RandomCutForestModel) {
    // Tree seeds are offset from sampling seeds so the cuts do not replay the sampling draws.
    this.trees = model.samples.map(
      (sample, t) =>
        new RandomCutTree(
          model.points,
          model.featureDim,
          sample,
          new SeededRandom(derivedSeed(model.seed ^ 0x5bd1e995, t)),
        ),
    );
  }

  /** Anomaly score per row: the average over trees; higher is more anomalous, typical points near 1. */
  score(input: FeatureMatrix): Float64Array {
    if (input.cols !== this.model.featureDim) {
      throw new ModelInputError(
        `the model has ${this.model.featureDim} features but the input has ${input.cols} columns`,
      );
    }
    assertComplete(input);
    const scores = new Float64Array(input.rows);
    const path = new Int32Array(2 * this.model.numSamplesPerTree + 1);
    for (let r = 0; r < input.rows; r++) {
      let sum = 0;
      for (const tree of this.trees) sum += tree.score(input.data, r * input.cols, path);
      scores[r] = sum / this.trees.length;
    }
    return scores;
  }
}

/** Floyd's algorithm: `k` distinct integers from [0, n), uniformly, in O(k) whatever n is. */
function sampleWithoutReplacement(n: number, k: number, random: SeededRandom): Set<number> {
  const chosen = new Set<number>();
  for (let j = n - k; j < n; j++) {
    const t = random.nextInt(j + 1);
    chosen.add(chosen.has(t) ? j : t);
  }
  return chosen;
}

function assertComplete(matrix: FeatureMatrix): void {
  for (let i = 0; i < matrix.data.length; i++) {
    if (Number.isNaN(matrix.data[i])) {
      const row = Math.floor(i / matrix.cols);
      throw new ModelInputError(
        `row ${row + 1}, column ${(i % matrix.cols) + 1}: random cut forest does not accept missing values`,
        row,
      );
    }
  }
}
