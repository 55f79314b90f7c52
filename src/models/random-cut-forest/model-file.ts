/**
 * pgsage's Random Cut Forest model file (JSON). A forest is its samples plus a
 * seed: trees are rebuilt deterministically on load (see forest.ts), so the file
 * stays small and cannot disagree with the code that scores it.
 *
 *   {
 *     "algorithm": "randomcutforest",
 *     "format_version": 1,
 *     "feature_dim": 2,
 *     "num_samples_per_tree": 256,
 *     "seed": 42,
 *     "points": [[0.1, 2.3], [0.4, 1.9], …],   // distinct sampled rows
 *     "trees": [[0, 1, 5, …], …]                // per tree, indices into "points"
 *   }
 */
import { ModelFormatError } from '../types.js';
import type { RandomCutForestModel } from './forest.js';

export const RCF_FORMAT_VERSION = 1;

export function serializeRandomCutForest(model: RandomCutForestModel): string {
  const points: number[][] = [];
  for (let i = 0; i < model.points.length; i += model.featureDim) {
    points.push(Array.from(model.points.subarray(i, i + model.featureDim)));
  }
  return JSON.stringify({
    algorithm: 'randomcutforest',
    format_version: RCF_FORMAT_VERSION,
    feature_dim: model.featureDim,
    num_samples_per_tree: model.numSamplesPerTree,
    num_trees: model.samples.length,
    seed: model.seed,
    points,
    trees: model.samples.map((sample) => Array.from(sample)),
  });
}

export function deserializeRandomCutForest(input: string | Uint8Array): RandomCutForestModel {
  let doc: Record<string, unknown>;
  try {
    const text =
      typeof input === 'string'
        ? input
        : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8');
    doc = JSON.parse(text);
  } catch (error) {
    throw new ModelFormatError(`not a pgsage random cut forest model (JSON expected): ${(error as Error).message}`);
  }
  if (doc === null || typeof doc !== 'object' || doc.algorithm !== 'randomcutforest') {
    throw fail('"algorithm" must be "randomcutforest"');
  }
  if (doc.format_version !== RCF_FORMAT_VERSION)
    throw fail(`unsupported format_version ${JSON.stringify(doc.format_version)}`);
  const featureDim = positiveInteger(doc.feature_dim, 'feature_dim');
  const numSamplesPerTree = positiveInteger(doc.num_samples_per_tree, 'num_samples_per_tree');
  const seed = doc.seed;
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw fail('"seed" must be an unsigned 32-bit integer');
  }
  if (!Array.isArray(doc.points)) throw fail('"points" must be an array of rows');
  const points = new Float64Array(doc.points.length * featureDim);
  doc.points.forEach((row, i) => {
    if (
      !Array.isArray(row) ||
      row.length !== featureDim ||
      !row.every((v) => typeof v === 'number' && Number.isFinite(v))
    ) {
      throw fail(`points[${i}] must be ${featureDim} finite numbers`);
    }
    points.set(row as number[], i * featureDim);
  });
  if (!Array.isArray(doc.trees) || doc.trees.length === 0) throw fail('"trees" must be a non-empty array');
  if (doc.num_trees !== undefined && doc.num_trees !== doc.trees.length)
    throw fail('"num_trees" does not match "trees"');
  const pointCount = doc.points.length;
  const samples = doc.trees.map((tree, t) => {
    if (
      !Array.isArray(tree) ||
      tree.length > numSamplesPerTree ||
      !tree.every((i) => Number.isInteger(i) && i >= 0 && i < pointCount)
    ) {
      throw fail(`trees[${t}] must list at most ${numSamplesPerTree} indices into "points"`);
    }
    return Int32Array.from(tree as number[]);
  });
  return { featureDim, numSamplesPerTree, seed, points, samples };
}

function fail(problem: string): ModelFormatError {
  return new ModelFormatError(`random cut forest model: ${problem}`);
}

function positiveInteger(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1)
    throw fail(`"${name}" must be a positive integer`);
  return value;
}
