/**
 * Logistic and softmax regression over hashed sparse features, trained with AdaGrad.
 * Documents are stored once as a compact CSR matrix so that several epochs (and several
 * heads over the same text) do not re-tokenise anything.
 */

/** Small deterministic PRNG (mulberry32): the same seed gives the same model, byte for byte. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffled(count: number, random: () => number): Uint32Array {
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

/** Rows of hashed features: row r has `hashes[offsets[r] .. offsets[r+1])`, every value scaled by `norms[r]`. */
export class SparseRows {
  private hashChunks: Uint32Array[] = [];
  private offsetList: number[] = [0];
  private normList: number[] = [];
  private total = 0;
  hashes = new Uint32Array(0);
  offsets = new Uint32Array(0);
  norms = new Float32Array(0);

  add(hashes: Uint32Array, count: number, norm: number): void {
    this.hashChunks.push(hashes.slice(0, count));
    this.total += count;
    this.offsetList.push(this.total);
    this.normList.push(norm);
  }

  /** Call once after the last `add`. */
  seal(): this {
    this.hashes = new Uint32Array(this.total);
    let at = 0;
    for (const chunk of this.hashChunks) {
      this.hashes.set(chunk, at);
      at += chunk.length;
    }
    this.hashChunks = [];
    this.offsets = Uint32Array.from(this.offsetList);
    this.norms = Float32Array.from(this.normList);
    return this;
  }

  get rows(): number {
    return this.normList.length;
  }
}

export interface TrainOptions {
  bits: number;
  epochs: number;
  learningRate: number;
  /** L2 penalty applied lazily on every update of a weight. */
  l2: number;
  seed: number;
  /**
   * Optional per-bucket multiplier of the feature values (e.g. naive-Bayes log-count ratios).
   * The returned weights already include it, so inference needs no extra table.
   */
  featureScale?: Float32Array;
  /**
   * Signed hashing (Weinberger et al. 2009): the top bit of a feature's hash gives it a sign, so
   * features that collide in a bucket cancel out on average instead of adding up.
   */
  signedHashing?: boolean;
}

/**
 * Mean of the weights at the end of each epoch of the second half of training: it smooths out
 * the last few updates' noise and makes the result depend less on the shuffle order.
 */
class EpochAverage {
  readonly weights: Float32Array;
  private biasTotal = 0;
  private snapshots = 0;
  private readonly firstEpoch: number;

  constructor(size: number, epochs: number) {
    this.weights = new Float32Array(size);
    this.firstEpoch = Math.floor(epochs / 2);
  }

  add(epoch: number, weights: Float32Array, bias: number): void {
    if (epoch < this.firstEpoch) return;
    this.snapshots++;
    const keep = (this.snapshots - 1) / this.snapshots;
    const take = 1 / this.snapshots;
    for (let j = 0; j < weights.length; j++) this.weights[j] = this.weights[j] * keep + weights[j] * take;
    this.biasTotal += bias;
  }

  get bias(): number {
    return this.biasTotal / Math.max(1, this.snapshots);
  }
}

export interface BinaryModel {
  bits: number;
  weights: Float32Array;
  bias: number;
}

/** Binary logistic regression; `labels[r]` in {0,1}, `rowWeights[r]` scales row r's loss. */
export function trainLogistic(
  rows: SparseRows,
  labels: Uint8Array,
  rowWeights: Float32Array,
  options: TrainOptions,
): BinaryModel {
  const size = 1 << options.bits;
  const mask = size - 1;
  const weights = new Float32Array(size);
  const squares = new Float32Array(size).fill(1e-6);
  let bias = 0;
  let biasSquares = 1e-6;
  const scale = options.featureScale ?? new Float32Array(size).fill(1);
  const signed = options.signedHashing === true;
  const random = seededRandom(options.seed);
  const { hashes, offsets, norms } = rows;
  const average = new EpochAverage(size, options.epochs);
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    const order = shuffled(rows.rows, random);
    for (const r of order) {
      const start = offsets[r];
      const end = offsets[r + 1];
      const norm = norms[r];
      let z = bias;
      for (let k = start; k < end; k++) {
        const h = hashes[k];
        const j = h & mask;
        z += weights[j] * norm * scale[j] * (signed && h >>> 31 ? -1 : 1);
      }
      const p = 1 / (1 + Math.exp(-z));
      const g = (p - labels[r]) * rowWeights[r];
      biasSquares += g * g;
      bias -= (options.learningRate * g) / Math.sqrt(biasSquares);
      for (let k = start; k < end; k++) {
        const h = hashes[k];
        const j = h & mask;
        const grad = g * norm * scale[j] * (signed && h >>> 31 ? -1 : 1) + options.l2 * weights[j];
        squares[j] += grad * grad;
        weights[j] -= (options.learningRate * grad) / Math.sqrt(squares[j]);
      }
    }
    average.add(epoch, weights, bias);
  }
  const averaged = average.weights;
  for (let j = 0; j < size; j++) averaged[j] *= scale[j];
  return { bits: options.bits, weights: averaged, bias: average.bias };
}

/**
 * Naive-Bayes log-count ratios per bucket (Wang & Manning 2012, "NBSVM"): how much more often a
 * feature occurs in positive than in negative rows. Scaling features by it before the logistic
 * regression helps most where labelled data is scarce.
 */
export function naiveBayesRatios(
  rows: SparseRows,
  labels: Uint8Array,
  rowWeights: Float32Array,
  bits: number,
  alpha = 1,
): Float32Array {
  const size = 1 << bits;
  const mask = size - 1;
  const positive = new Float64Array(size).fill(alpha);
  const negative = new Float64Array(size).fill(alpha);
  const { hashes, offsets } = rows;
  for (let r = 0; r < rows.rows; r++) {
    const counts = labels[r] === 1 ? positive : negative;
    for (let k = offsets[r]; k < offsets[r + 1]; k++) counts[hashes[k] & mask] += rowWeights[r];
  }
  let positiveTotal = 0;
  let negativeTotal = 0;
  for (let j = 0; j < size; j++) {
    positiveTotal += positive[j];
    negativeTotal += negative[j];
  }
  const ratios = new Float32Array(size);
  for (let j = 0; j < size; j++) {
    ratios[j] = Math.log(positive[j] / positiveTotal) - Math.log(negative[j] / negativeTotal);
  }
  return ratios;
}

export interface SoftmaxModel {
  bits: number;
  classes: number;
  /** Row-major: weights[feature * classes + class]. */
  weights: Float32Array;
  biases: Float32Array;
}

/** K-way softmax regression; `labels[r]` in 0..classes-1. */
export function trainSoftmax(
  rows: SparseRows,
  labels: Uint8Array,
  classes: number,
  rowWeights: Float32Array,
  options: TrainOptions,
): SoftmaxModel {
  const size = 1 << options.bits;
  const mask = size - 1;
  const weights = new Float32Array(size * classes);
  const squares = new Float32Array(size * classes).fill(1e-6);
  const biases = new Float32Array(classes);
  const biasSquares = new Float32Array(classes).fill(1e-6);
  const logits = new Float64Array(classes);
  const random = seededRandom(options.seed);
  const { hashes, offsets, norms } = rows;
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    const order = shuffled(rows.rows, random);
    for (const r of order) {
      const start = offsets[r];
      const end = offsets[r + 1];
      const norm = norms[r];
      logits.set(biases);
      for (let k = start; k < end; k++) {
        const base = (hashes[k] & mask) * classes;
        for (let c = 0; c < classes; c++) logits[c] += weights[base + c] * norm;
      }
      let max = -Infinity;
      for (let c = 0; c < classes; c++) max = Math.max(max, logits[c]);
      let sum = 0;
      for (let c = 0; c < classes; c++) {
        logits[c] = Math.exp(logits[c] - max);
        sum += logits[c];
      }
      for (let c = 0; c < classes; c++) {
        // logits now holds the gradient of the loss with respect to each logit.
        logits[c] = (logits[c] / sum - (labels[r] === c ? 1 : 0)) * rowWeights[r];
        biasSquares[c] += logits[c] * logits[c];
        biases[c] -= (options.learningRate * logits[c]) / Math.sqrt(biasSquares[c]);
      }
      for (let k = start; k < end; k++) {
        const base = (hashes[k] & mask) * classes;
        for (let c = 0; c < classes; c++) {
          const j = base + c;
          const grad = logits[c] * norm + options.l2 * weights[j];
          squares[j] += grad * grad;
          weights[j] -= (options.learningRate * grad) / Math.sqrt(squares[j]);
        }
      }
    }
  }
  return { bits: options.bits, classes, weights, biases };
}
