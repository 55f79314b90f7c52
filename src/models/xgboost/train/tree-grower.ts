/**
 * Grows one regression tree depth-wise from gradient histograms (XGBoost's
 * `grow_policy=depthwise` under `tree_method=hist`):
 *
 * - rows of a node are a contiguous segment of one shared permutation, split
 *   stably into left and right children when the node splits;
 * - per level, only the smaller child of each split gets its histogram built
 *   (on every thread, see HistogramPool); its sibling's is the parent's minus
 *   it — the histogram subtraction trick, halving the work;
 * - leaves get weight(G, H) · eta, and nodes keep what XGBoost's JSON records
 *   (base weight, loss change, hessian sum, default direction).
 */
import type { HistogramPool } from './hist-pool.js';
import type { BinnedMatrix } from './histogram.js';
import type { HistogramCuts } from './quantile.js';
import { findBestSplit, isUsableSplit, leafWeight, type SplitCandidate, type TreeParams } from './split.js';

/** A tree in XGBoost's JSON layout (one array per node attribute). */
export interface GrownTree {
  readonly left: number[];
  readonly right: number[];
  readonly parent: number[];
  readonly splitIndex: number[];
  /** Threshold of a split, value of a leaf (float32). */
  readonly splitCondition: number[];
  readonly defaultLeft: number[];
  readonly lossChange: number[];
  readonly sumHessian: number[];
  readonly baseWeight: number[];
}

interface Node {
  id: number;
  begin: number;
  end: number;
  grad: number;
  hess: number;
  hist: Float64Array | undefined;
  split: SplitCandidate | undefined;
}

export interface GrowContext {
  readonly params: TreeParams;
  readonly cuts: HistogramCuts;
  readonly matrix: BinnedMatrix;
  readonly pool: HistogramPool;
  /** The shared row permutation; each node owns a segment of it. */
  readonly rowIndex: Int32Array;
  /** Scratch for partitioning, as long as rowIndex. */
  readonly scratch: Int32Array;
  /**
   * The bins again, column-major (feature f's bins at f·rows): partitioning reads one
   * feature of many rows, which row-major would scatter over a cache line per row.
   */
  readonly columnBins: Uint16Array;
}

const f32 = Math.fround;

/**
 * Grows a tree over all rows (left-out rows carry zero gradients) using `features`.
 * Calls `onLeaf(begin, end, value)` for each leaf's row segment, so the caller
 * can update its cached margins without walking the tree.
 */
export async function growTree(
  context: GrowContext,
  features: Int32Array,
  onLeaf: (begin: number, end: number, value: number) => void,
): Promise<GrownTree> {
  const { params, cuts, matrix, pool } = context;
  const tree: GrownTree = {
    left: [],
    right: [],
    parent: [],
    splitIndex: [],
    splitCondition: [],
    defaultLeft: [],
    lossChange: [],
    sumHessian: [],
    baseWeight: [],
  };
  const addNode = (parent: number, grad: number, hess: number): number => {
    const id = tree.left.length;
    tree.left.push(-1);
    tree.right.push(-1);
    tree.parent.push(parent);
    tree.splitIndex.push(0);
    tree.splitCondition.push(0);
    tree.defaultLeft.push(0);
    tree.lossChange.push(0);
    tree.sumHessian.push(f32(hess));
    tree.baseWeight.push(f32(leafWeight(params, grad, hess)));
    return id;
  };
  const makeLeaf = (node: Node) => {
    const value = f32(leafWeight(params, node.grad, node.hess) * params.eta);
    tree.splitCondition[node.id] = value;
    onLeaf(node.begin, node.end, value);
  };
  const evaluate = (node: Node) => {
    node.split = findBestSplit(
      params,
      cuts,
      matrix.slotOffsets,
      node.hist as Float64Array,
      node.grad,
      node.hess,
      features,
    );
  };

  const [rootHist] = await pool.build(Int32Array.of(0, matrix.rows));
  // The root's sums: every row falls in exactly one slot of feature 0 (a bin or the missing slot).
  let grad = 0;
  let hess = 0;
  for (let s = matrix.slotOffsets[0]; s < matrix.slotOffsets[0] + cuts.cutPtr[1] - cuts.cutPtr[0] + 1; s++) {
    grad += rootHist[2 * s];
    hess += rootHist[2 * s + 1];
  }
  const root: Node = {
    id: addNode(2147483647, grad, hess),
    begin: 0,
    end: matrix.rows,
    grad,
    hess,
    hist: rootHist,
    split: undefined,
  };
  evaluate(root);

  let frontier = [root];
  for (let depth = 0; frontier.length > 0; depth++) {
    const expanding: Node[] = [];
    for (const node of frontier) {
      if (depth < params.maxDepth && isUsableSplit(params, node.split)) expanding.push(node);
      else makeLeaf(node);
    }
    if (expanding.length === 0) break;
    const children: Node[] = [];
    for (const node of expanding) {
      const split = node.split as SplitCandidate;
      const middle = partition(context, node.begin, node.end, split);
      const left: Node = {
        id: addNode(node.id, split.leftGrad, split.leftHess),
        begin: node.begin,
        end: middle,
        grad: split.leftGrad,
        hess: split.leftHess,
        hist: undefined,
        split: undefined,
      };
      const right: Node = {
        id: addNode(node.id, split.rightGrad, split.rightHess),
        begin: middle,
        end: node.end,
        grad: split.rightGrad,
        hess: split.rightHess,
        hist: undefined,
        split: undefined,
      };
      tree.left[node.id] = left.id;
      tree.right[node.id] = right.id;
      tree.splitIndex[node.id] = split.feature;
      tree.splitCondition[node.id] = split.value;
      tree.defaultLeft[node.id] = split.defaultLeft ? 1 : 0;
      tree.lossChange[node.id] = split.lossChg;
      children.push(left, right);
    }
    if (depth + 1 >= params.maxDepth) {
      for (const child of children) makeLeaf(child);
      break;
    }
    // Build the smaller child of each pair; derive its sibling by subtraction from the parent.
    const ranges = new Int32Array(expanding.length * 2);
    expanding.forEach((_, i) => {
      const small = smaller(children[2 * i], children[2 * i + 1]);
      ranges[2 * i] = small.begin;
      ranges[2 * i + 1] = small.end;
    });
    const built = await pool.build(ranges);
    expanding.forEach((parent, i) => {
      const left = children[2 * i];
      const right = children[2 * i + 1];
      const small = smaller(left, right);
      const large = small === left ? right : left;
      const parentHist = parent.hist as Float64Array;
      const smallHist = built[i];
      for (let s = 0; s < parentHist.length; s++) parentHist[s] -= smallHist[s];
      small.hist = smallHist;
      large.hist = parentHist;
      parent.hist = undefined;
    });
    for (const child of children) evaluate(child);
    frontier = children;
  }
  return tree;
}

function smaller(a: Node, b: Node): Node {
  return a.end - a.begin <= b.end - b.begin ? a : b;
}

/** Stable partition of the segment: rows going left first. Returns where the right child starts. */
function partition(context: GrowContext, begin: number, end: number, split: SplitCandidate): number {
  const { rowIndex, scratch, matrix, cuts, columnBins } = context;
  const f = split.feature;
  const column = columnBins.subarray(f * matrix.rows, (f + 1) * matrix.rows);
  const missingBin = cuts.cutPtr[f + 1] - cuts.cutPtr[f];
  const leftMax = split.leftMaxBin;
  const missingLeft = split.defaultLeft;
  let l = begin;
  let r = 0;
  for (let i = begin; i < end; i++) {
    const row = rowIndex[i];
    const bin = column[row];
    const goesLeft = bin === missingBin ? missingLeft : bin <= leftMax;
    if (goesLeft) rowIndex[l++] = row;
    else scratch[r++] = row;
  }
  rowIndex.set(scratch.subarray(0, r), l);
  return l;
}

/** Adds the tree's output for each row of a float32 row-major matrix to margins[row·groups + group]. */
export function addTreePredictions(
  tree: GrownTree,
  data: Float32Array,
  rows: number,
  cols: number,
  margins: Float32Array,
  groups: number,
  group: number,
): void {
  const { left, right, splitIndex, splitCondition, defaultLeft } = tree;
  for (let r = 0; r < rows; r++) {
    let n = 0;
    while (left[n] !== -1) {
      const x = data[r * cols + splitIndex[n]];
      n = Number.isNaN(x) ? (defaultLeft[n] ? left[n] : right[n]) : x < splitCondition[n] ? left[n] : right[n];
    }
    margins[r * groups + group] += splitCondition[n];
  }
}
