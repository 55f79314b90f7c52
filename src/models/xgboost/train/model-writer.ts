/**
 * Writes XGBoost's JSON model format in the layout XGBoost 1.7 saves
 * (`Booster.save_model("model.json")`), which both pgsage's reader and the real
 * library's `Booster.load_model` take. XGBoost's JSON reader is typed: a float
 * field must be written with a fraction or exponent ("1.0", not "1"), or loading
 * fails with an invalid cast, so floats go through `float32Text`.
 */
import type { ObjectiveSettings } from './objectives.js';
import { objectiveJson } from './objectives.js';
import type { GrownTree } from './tree-grower.js';

export interface XGBoostModelDescription {
  readonly objective: ObjectiveSettings;
  readonly numFeature: number;
  readonly baseScore: number;
  readonly trees: readonly GrownTree[];
  /** Output group of each tree. */
  readonly treeGroups: readonly number[];
  readonly attributes: Readonly<Record<string, string>>;
}

/** The shortest decimal that reads back as the same float32, always with a fraction or an exponent. */
export function float32Text(value: number): string {
  const v = Math.fround(value);
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'Infinity' : '-Infinity';
  if (v === 0) return Object.is(v, -0) ? '-0.0' : '0.0';
  let text = String(v);
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = v.toPrecision(digits);
    if (Math.fround(Number(candidate)) === v) {
      text = String(Number(candidate));
      break;
    }
  }
  return /[.eE]/.test(text) ? text : `${text}.0`;
}

export function writeXGBoostJson(model: XGBoostModelDescription): string {
  const { objective } = model;
  const numClass = objective.name.startsWith('multi:') ? objective.numClass : 0;
  const trees = model.trees.map((tree, id) => treeJson(tree, id, model.numFeature));
  const learner = [
    `"attributes":${JSON.stringify(model.attributes)}`,
    `"feature_names":[]`,
    `"feature_types":[]`,
    `"gradient_booster":{"model":{"gbtree_model_param":{"num_parallel_tree":"1","num_trees":"${model.trees.length}","size_leaf_vector":"0"},` +
      `"tree_info":[${model.treeGroups.join(',')}],"trees":[${trees.join(',')}]},"name":"gbtree"}`,
    `"learner_model_param":${JSON.stringify({
      base_score: float32Text(model.baseScore),
      boost_from_average: '1',
      num_class: String(numClass),
      num_feature: String(model.numFeature),
      num_target: '1',
    })}`,
    `"objective":${JSON.stringify(objectiveJson(objective))}`,
  ];
  return `{"learner":{${learner.join(',')}},"version":[1,7,4]}`;
}

function treeJson(tree: GrownTree, id: number, numFeature: number): string {
  const floats = (values: readonly number[]) => `[${values.map(float32Text).join(',')}]`;
  const ints = (values: readonly number[]) => `[${values.join(',')}]`;
  const nodes = tree.left.length;
  return (
    `{"base_weights":${floats(tree.baseWeight)},"categories":[],"categories_nodes":[],"categories_segments":[],"categories_sizes":[],` +
    `"default_left":${ints(tree.defaultLeft)},"id":${id},"left_children":${ints(tree.left)},` +
    `"loss_changes":${floats(tree.lossChange)},"parents":${ints(tree.parent)},"right_children":${ints(tree.right)},` +
    `"split_conditions":${floats(tree.splitCondition)},"split_indices":${ints(tree.splitIndex)},` +
    `"split_type":${ints(new Array(nodes).fill(0))},"sum_hessian":${floats(tree.sumHessian)},` +
    `"tree_param":{"num_deleted":"0","num_feature":"${numFeature}","num_nodes":"${nodes}","size_leaf_vector":"0"}}`
  );
}
