/**
 * One random cut tree (Guha et al., ICML 2016) over a sample of points, and the
 * anomaly score of a query point against it.
 *
 * Build: at each node take the bounding box of the node's points, pick a dimension
 * with probability proportional to its side length, cut uniformly along it, and
 * recurse until a node holds copies of a single point (a leaf with that mass).
 *
 * Score: the one SageMaker's RCF reports, from AWS's reference implementation
 * (random-cut-forest-by-aws, AnomalyScoreVisitor), rather than the paper's
 * sampled CoDisp. Walking from the leaf the query falls into back to the root,
 * each node contributes with the probability that a random cut of the node's box
 * extended by the query would separate the query there; a separation at depth k
 * costs 1/(k+1). The result is the expected inverse depth at which the query
 * would be isolated if it were inserted (deterministic: no insertion is sampled),
 * scaled by log2(1 + sample size) so a typical point scores about 1 whatever the
 * sample size, and anomalies score well above it.
 */
import type { SeededRandom } from './random.js';

export class RandomCutTree {
  /** Cut dimension of an inner node; -1 marks a leaf. */
  private readonly cutDim: Int32Array;
  private readonly cutValue: Float64Array;
  private readonly left: Int32Array;
  private readonly right: Int32Array;
  /** Number of sample points under the node. */
  private readonly mass: Int32Array;
  /** Index (into `points`) of a leaf's point. */
  private readonly leafPoint: Int32Array;
  /** Bounding box of each node's points: nodes × dims. */
  private readonly boxMin: Float64Array;
  private readonly boxMax: Float64Array;
  private nodeCount = 0;
  readonly sampleSize: number;
  private readonly normalizer: number;

  constructor(
    private readonly points: Float64Array,
    private readonly dims: number,
    sample: ArrayLike<number>,
    random: SeededRandom,
  ) {
    this.sampleSize = sample.length;
    const maxNodes = Math.max(1, 2 * sample.length - 1);
    this.cutDim = new Int32Array(maxNodes);
    this.cutValue = new Float64Array(maxNodes);
    this.left = new Int32Array(maxNodes);
    this.right = new Int32Array(maxNodes);
    this.mass = new Int32Array(maxNodes);
    this.leafPoint = new Int32Array(maxNodes);
    this.boxMin = new Float64Array(maxNodes * dims);
    this.boxMax = new Float64Array(maxNodes * dims);
    this.normalizer = Math.log2(1 + sample.length);
    if (sample.length > 0) this.build(Int32Array.from(sample), random);
  }

  private build(indices: Int32Array, random: SeededRandom): void {
    const { dims, points } = this;
    // Explicit stack of [node, lo, hi) ranges over `indices`: no recursion limit on skewed data.
    const stack: number[] = [this.newNode(), 0, indices.length];
    while (stack.length > 0) {
      const hi = stack.pop()!;
      const lo = stack.pop()!;
      const node = stack.pop()!;
      this.mass[node] = hi - lo;
      const box = node * dims;
      for (let d = 0; d < dims; d++) {
        this.boxMin[box + d] = Infinity;
        this.boxMax[box + d] = -Infinity;
      }
      for (let i = lo; i < hi; i++) {
        const p = indices[i] * dims;
        for (let d = 0; d < dims; d++) {
          const v = points[p + d];
          if (v < this.boxMin[box + d]) this.boxMin[box + d] = v;
          if (v > this.boxMax[box + d]) this.boxMax[box + d] = v;
        }
      }
      let rangeSum = 0;
      for (let d = 0; d < dims; d++) rangeSum += this.boxMax[box + d] - this.boxMin[box + d];
      if (!(rangeSum > 0)) {
        this.cutDim[node] = -1;
        this.leafPoint[node] = indices[lo];
        continue;
      }
      const [dim, value] = this.chooseCut(box, rangeSum, random);
      // Partition in place: values <= cut go left. min <= cut < max keeps both sides non-empty.
      let split = lo;
      for (let i = lo; i < hi; i++) {
        if (points[indices[i] * dims + dim] <= value) {
          const t = indices[i];
          indices[i] = indices[split];
          indices[split] = t;
          split++;
        }
      }
      this.cutDim[node] = dim;
      this.cutValue[node] = value;
      const leftNode = this.newNode();
      const rightNode = this.newNode();
      this.left[node] = leftNode;
      this.right[node] = rightNode;
      stack.push(leftNode, lo, split, rightNode, split, hi);
    }
  }

  private chooseCut(box: number, rangeSum: number, random: SeededRandom): [number, number] {
    const { dims } = this;
    for (;;) {
      let r = random.nextDouble() * rangeSum;
      for (let d = 0; d < dims; d++) {
        const range = this.boxMax[box + d] - this.boxMin[box + d];
        if (range <= 0) continue;
        if (r < range) {
          const value = this.boxMin[box + d] + r;
          // Rounding can land the cut on the maximum, which would leave the right side empty: draw again.
          if (value < this.boxMax[box + d]) return [d, value];
          break;
        }
        r -= range;
      }
    }
  }

  private newNode(): number {
    return this.nodeCount++;
  }

  /** Normalized anomaly score of one point (row `row` of `data`, `dims` wide). */
  score(data: ArrayLike<number>, offset: number, path: Int32Array): number {
    if (this.sampleSize === 0) return 0;
    const { dims, points } = this;
    let node = 0;
    let depth = 0;
    while (this.cutDim[node] >= 0) {
      path[depth++] = node;
      node = data[offset + this.cutDim[node]] <= this.cutValue[node] ? this.left[node] : this.right[node];
    }
    const leaf = this.leafPoint[node] * dims;
    let equal = true;
    for (let d = 0; d < dims && equal; d++) equal = data[offset + d] === points[leaf + d];
    if (equal) {
      // A point of the sample itself: the reference damps by how many copies share the leaf.
      const mass = this.mass[node];
      const damp = 1 - mass / (2 * this.sampleSize);
      return (damp / (depth + Math.log2(1 + mass))) * this.normalizer;
    }
    let score = 1 / (depth + 1);
    for (let k = depth - 1; k >= 0; k--) {
      const p = this.separationProbability(path[k], data, offset);
      // Inside this box means inside every enclosing box too: nothing above changes the score.
      if (p <= 0) break;
      score = p * (1 / (k + 1)) + (1 - p) * score;
    }
    return score * this.normalizer;
  }

  /** Probability that a random cut of the node's box, extended to hold the point, separates the point. */
  private separationProbability(node: number, data: ArrayLike<number>, offset: number): number {
    const box = node * this.dims;
    let newRangeSum = 0;
    let growth = 0;
    for (let d = 0; d < this.dims; d++) {
      const v = data[offset + d];
      let min = this.boxMin[box + d];
      let max = this.boxMax[box + d];
      const oldRange = max - min;
      if (v < min) min = v;
      else if (v > max) max = v;
      const newRange = max - min;
      newRangeSum += newRange;
      growth += newRange - oldRange;
    }
    return newRangeSum > 0 ? growth / newRangeSum : 0;
  }
}
