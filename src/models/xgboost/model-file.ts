/**
 * Reads XGBoost's own model file (JSON or UBJSON, as written by
 * `Booster.save_model`) into a plain description of what prediction needs.
 *
 * Layouts handled (checked against the real library's output):
 * - 1.x (Debian's 1.7.4): `base_score` a string such as "5E-1", no `iteration_indptr`,
 *   `size_leaf_vector` "0", attributes `best_iteration` and `best_ntree_limit`.
 * - 2.x / 3.x: `base_score` a bracketed vector string ("[5E-1]", one entry per
 *   output group for multi-class), `iteration_indptr` present, `size_leaf_vector` "1".
 * - boosters `gbtree`, `dart` (per-tree `weight_drop`) and `gblinear`.
 * Not handled (refused with ModelFormatError): categorical splits and vector-leaf
 * (`multi_strategy=multi_output_tree`) trees.
 */
import { ModelFormatError } from '../types.js';
import { decodeUbjson } from './ubjson.js';

type Numbers = ArrayLike<number>;

export interface XGBoostTree {
  readonly numNodes: number;
  readonly leftChildren: Numbers;
  readonly rightChildren: Numbers;
  readonly splitIndices: Numbers;
  /** Split threshold for inner nodes, leaf value for leaves. */
  readonly splitConditions: Numbers;
  readonly defaultLeft: Numbers;
}

export interface XGBoostModel {
  readonly version: readonly number[];
  readonly objective: string;
  readonly numFeature: number;
  readonly numClass: number;
  /** Number of margins per row: classes, targets, or 1. */
  readonly numGroup: number;
  /** `base_score` as stored (probability space for logistic objectives), one entry per group. */
  readonly baseScore: readonly number[];
  readonly booster: 'gbtree' | 'dart' | 'gblinear';
  readonly trees: readonly XGBoostTree[];
  /** Output group of each tree. */
  readonly treeGroup: readonly number[];
  /** Dart's per-tree weights; undefined for plain gbtree. */
  readonly treeWeights: readonly number[] | undefined;
  /** Tree index where each boosting round starts, plus the total at the end. */
  readonly iterationIndptr: readonly number[];
  readonly numParallelTree: number;
  /** gblinear: weights[feature * numGroup + group], then one bias per group. */
  readonly linearWeights: Numbers | undefined;
  readonly attributes: Readonly<Record<string, string>>;
  readonly featureNames: readonly string[];
}

/** Length markers i U I l L, container markers $ #, the no-op N. */
const UBJSON_AFTER_OPEN_BRACE = new Set([0x69, 0x55, 0x49, 0x6c, 0x4c, 0x24, 0x23, 0x4e]);

export function isUbjson(bytes: Uint8Array): boolean {
  // A JSON model starts with '{' too, but then a quote or whitespace follows; UBJSON
  // follows with a length marker ('L', 'l', 'i', 'U', …) for the first key.
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  return bytes[i] === 0x7b && i + 1 < bytes.length && UBJSON_AFTER_OPEN_BRACE.has(bytes[i + 1]);
}

export function readXGBoostModel(bytes: Uint8Array): XGBoostModel {
  let document: unknown;
  if (isUbjson(bytes)) {
    document = decodeUbjson(bytes);
  } else {
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
    if (!text.trimStart().startsWith('{')) {
      throw new ModelFormatError(
        'not an XGBoost JSON/UBJSON model (the legacy binary format and pickles are not supported: ' +
          're-save the model with Booster.save_model("xgboost-model.json") or ".ubj")',
      );
    }
    try {
      document = JSON.parse(text);
    } catch (error) {
      throw new ModelFormatError(`XGBoost model is not valid JSON: ${(error as Error).message}`);
    }
  }
  return describeModel(document);
}

export function describeModel(document: unknown): XGBoostModel {
  const root = object(document, 'model');
  const learner = object(root.learner, 'learner');
  const params = object(learner.learner_model_param, 'learner.learner_model_param');
  const objective = string(object(learner.objective, 'learner.objective').name, 'learner.objective.name');
  const numFeature = integer(params.num_feature, 'num_feature');
  const numClass = params.num_class === undefined ? 0 : integer(params.num_class, 'num_class');
  const numTarget = params.num_target === undefined ? 1 : integer(params.num_target, 'num_target');
  const numGroup = Math.max(numClass, numTarget, 1);
  const baseScore = parseBaseScore(params.base_score, numGroup);
  const attributes = stringRecord(learner.attributes);
  const featureNames = Array.isArray(learner.feature_names) ? learner.feature_names.map(String) : [];
  const version = Array.isArray(root.version) ? root.version.map(Number) : [];

  const gradientBooster = object(learner.gradient_booster, 'learner.gradient_booster');
  const boosterName = string(gradientBooster.name, 'gradient_booster.name');
  const common = { version, objective, numFeature, numClass, numGroup, baseScore, attributes, featureNames };

  if (boosterName === 'gblinear') {
    const model = object(gradientBooster.model, 'gblinear model');
    const weights = numbers(model.weights, 'gblinear weights');
    if (weights.length !== (numFeature + 1) * numGroup) {
      throw new ModelFormatError(`gblinear has ${weights.length} weights, expected ${(numFeature + 1) * numGroup}`);
    }
    return {
      ...common,
      booster: 'gblinear',
      trees: [],
      treeGroup: [],
      treeWeights: undefined,
      iterationIndptr: [0],
      numParallelTree: 1,
      linearWeights: weights,
    };
  }
  if (boosterName !== 'gbtree' && boosterName !== 'dart') {
    throw new ModelFormatError(`unsupported XGBoost booster "${boosterName}"`);
  }
  // Dart nests a gbtree inside itself; 3.x may also keep weight_drop next to the trees.
  const gbtree = boosterName === 'dart' ? object(gradientBooster.gbtree, 'dart gbtree') : gradientBooster;
  const model = object(gbtree.model, 'gbtree model');
  const treeParam = object(model.gbtree_model_param, 'gbtree_model_param');
  const numParallelTree =
    treeParam.num_parallel_tree === undefined ? 1 : integer(treeParam.num_parallel_tree, 'num_parallel_tree');
  const trees = array(model.trees, 'trees').map((tree, i) => readTree(tree, i));
  const treeGroup = Array.from(numbers(model.tree_info, 'tree_info'));
  if (treeGroup.length !== trees.length) {
    throw new ModelFormatError(`tree_info has ${treeGroup.length} entries for ${trees.length} trees`);
  }
  for (const group of treeGroup) {
    if (!(group >= 0 && group < numGroup))
      throw new ModelFormatError(`tree_info names output group ${group} of ${numGroup}`);
  }
  const weightDrop = gradientBooster.weight_drop ?? model.weight_drop;
  const treeWeights = weightDrop === undefined ? undefined : Array.from(numbers(weightDrop, 'weight_drop'));
  if (treeWeights && treeWeights.length !== trees.length) {
    throw new ModelFormatError(`weight_drop has ${treeWeights.length} entries for ${trees.length} trees`);
  }
  const iterationIndptr =
    model.iteration_indptr === undefined
      ? roundsOfEqualSize(trees.length, numGroup * numParallelTree)
      : Array.from(numbers(model.iteration_indptr, 'iteration_indptr'));
  return {
    ...common,
    booster: boosterName,
    trees,
    treeGroup,
    treeWeights,
    iterationIndptr,
    numParallelTree,
    linearWeights: undefined,
  };
}

function readTree(value: unknown, index: number): XGBoostTree {
  const tree = object(value, `tree ${index}`);
  const param = object(tree.tree_param, `tree ${index} tree_param`);
  const numNodes = integer(param.num_nodes, `tree ${index} num_nodes`);
  const leafVector = param.size_leaf_vector === undefined ? 0 : integer(param.size_leaf_vector, 'size_leaf_vector');
  if (leafVector > 1 || tree.leaf_weights !== undefined) {
    throw new ModelFormatError(
      'vector-leaf trees (multi_strategy="multi_output_tree") are not supported; train with the default one_output_per_tree',
    );
  }
  const splitType = tree.split_type === undefined ? undefined : numbers(tree.split_type, 'split_type');
  if (splitType && Array.prototype.some.call(splitType, (t: number) => t !== 0)) {
    throw new ModelFormatError('categorical splits are not supported; one-hot encode categorical features instead');
  }
  const read = (name: string) => {
    const values = numbers(tree[name], `tree ${index} ${name}`);
    if (values.length !== numNodes) {
      throw new ModelFormatError(`tree ${index}: ${name} has ${values.length} entries for ${numNodes} nodes`);
    }
    return values;
  };
  return {
    numNodes,
    leftChildren: read('left_children'),
    rightChildren: read('right_children'),
    splitIndices: read('split_indices'),
    splitConditions: read('split_conditions'),
    defaultLeft: read('default_left'),
  };
}

/**
 * "5E-1" (1.x), "[5E-1]" (2.x), "[-2.4E-3,-2.4E-3,4.9E-3]" (3.x multi-class), or a
 * plain number; a single value applies to every output group.
 */
export function parseBaseScore(value: unknown, numGroup: number): number[] {
  if (value === undefined) return new Array(numGroup).fill(0.5);
  const text = typeof value === 'number' ? String(value) : string(value, 'base_score');
  const parts = text
    .replace(/^\s*\[/, '')
    .replace(/\]\s*$/, '')
    .split(',');
  const scores = parts.map((part) => {
    const n = Number(part.trim());
    if (part.trim() === '' || Number.isNaN(n)) throw new ModelFormatError(`invalid base_score "${text}"`);
    return Math.fround(n);
  });
  if (scores.length === 1) return new Array(numGroup).fill(scores[0]);
  if (scores.length !== numGroup) {
    throw new ModelFormatError(`base_score has ${scores.length} entries for ${numGroup} output groups`);
  }
  return scores;
}

function roundsOfEqualSize(numTrees: number, treesPerRound: number): number[] {
  const indptr = [0];
  for (let end = treesPerRound; end <= numTrees; end += treesPerRound) indptr.push(end);
  if (indptr[indptr.length - 1] !== numTrees) indptr.push(numTrees);
  return indptr;
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) {
    throw new ModelFormatError(`XGBoost model: missing or invalid ${what}`);
  }
  return value as Record<string, unknown>;
}

function array(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new ModelFormatError(`XGBoost model: missing or invalid ${what}`);
  return value;
}

function numbers(value: unknown, what: string): Numbers {
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return value as unknown as Numbers;
  if (Array.isArray(value) && value.every((v) => typeof v === 'number')) return value as number[];
  throw new ModelFormatError(`XGBoost model: missing or invalid ${what}`);
}

function string(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new ModelFormatError(`XGBoost model: missing or invalid ${what}`);
  return value;
}

function integer(value: unknown, what: string): number {
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
    throw new ModelFormatError(`XGBoost model: invalid ${what} ${JSON.stringify(value)}`);
  }
  return n;
}

function stringRecord(value: unknown): Record<string, string> {
  if (value === null || typeof value !== 'object') return {};
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) out[key] = String(v);
  return out;
}
