/**
 * The raw signals the two learned heads read from a text, before any decision is made:
 * polarity of the whole text, polarity of its strongest positive and negative segments, and
 * subjectivity (does the text express an opinion at all).
 *
 * Both heads are linear over the same hashed features (see text-features.ts); a text's feature
 * vector is divided by sqrt(feature count) so one-line and thousand-word texts land on one scale.
 */
import { extractFeatures, FeatureBuffer, type LanguageFeatures } from './text-features.js';
import type { LinearHead } from './weights-file.js';

export interface SentimentEvidence {
  /** Number of features the text produced; 0 for blank or punctuation-only text. */
  features: number;
  /** Logit of P(positive | the text has a polarity). */
  polarity: number;
  /** Logit of P(the text expresses an opinion). */
  subjectivity: number;
  /** Highest segment polarity logit among segments with enough words to judge (−∞ if none). */
  mostPositiveSegment: number;
  /** Lowest segment polarity logit among those segments (+∞ if none). */
  mostNegativeSegment: number;
  /** Segments that had enough words to be judged on their own. */
  judgedSegments: number;
  /**
   * Σ over judged segments of feature count × positive strength (2σ(logit) − 1 where > 0): how
   * much of the text speaks positively, and how firmly. `negativeMass` likewise.
   */
  positiveMass: number;
  negativeMass: number;
}

/** A segment needs this many features (two words and their bigram, each counted twice) before its own polarity is trusted. */
export const MIN_SEGMENT_FEATURES = 6;

export class EvidenceReader {
  private readonly buffer = new FeatureBuffer();
  private segmentSums = new Float64Array(64);
  private segmentCounts = new Uint32Array(64);
  private readonly polarityWeights: Int8Array;
  private readonly polarityMask: number;
  private readonly subjectivityWeights: Int8Array;
  private readonly subjectivityMask: number;

  constructor(
    private readonly polarityHead: LinearHead,
    private readonly subjectivityHead: LinearHead,
  ) {
    if (polarityHead.classes !== 1 || subjectivityHead.classes !== 1) throw new Error('sentiment heads must be binary');
    this.polarityWeights = polarityHead.weights;
    this.polarityMask = (1 << polarityHead.bits) - 1;
    this.subjectivityWeights = subjectivityHead.weights;
    this.subjectivityMask = (1 << subjectivityHead.bits) - 1;
  }

  read(text: string, language: LanguageFeatures): SentimentEvidence {
    const buffer = this.buffer;
    const count = extractFeatures(text, language, buffer);
    const segments = buffer.segmentCount;
    if (segments > this.segmentSums.length) {
      this.segmentSums = new Float64Array(segments * 2);
      this.segmentCounts = new Uint32Array(segments * 2);
    }
    const sums = this.segmentSums;
    const counts = this.segmentCounts;
    sums.fill(0, 0, segments);
    counts.fill(0, 0, segments);

    // Integer sums of int8 weights: exact, and the scale is applied once at the end.
    let subjectivitySum = 0;
    const hashes = buffer.hashes;
    const segmentOf = buffer.segments;
    const pw = this.polarityWeights;
    const pm = this.polarityMask;
    const sw = this.subjectivityWeights;
    const sm = this.subjectivityMask;
    for (let k = 0; k < count; k++) {
      const h = hashes[k];
      const s = segmentOf[k];
      sums[s] += pw[h & pm];
      counts[s]++;
      subjectivitySum += sw[h & sm];
    }

    const pScale = this.polarityHead.scale;
    const pBias = this.polarityHead.biases[0];
    let polaritySum = 0;
    let mostPositive = Number.NEGATIVE_INFINITY;
    let mostNegative = Number.POSITIVE_INFINITY;
    let judged = 0;
    let positiveMass = 0;
    let negativeMass = 0;
    for (let s = 0; s < segments; s++) {
      polaritySum += sums[s];
      if (counts[s] < MIN_SEGMENT_FEATURES) continue;
      judged++;
      const logit = pBias + (pScale * sums[s]) / Math.sqrt(counts[s]);
      if (logit > mostPositive) mostPositive = logit;
      if (logit < mostNegative) mostNegative = logit;
      const strength = 2 / (1 + Math.exp(-logit)) - 1;
      if (strength > 0) positiveMass += counts[s] * strength;
      else negativeMass -= counts[s] * strength;
    }
    const norm = count > 0 ? 1 / Math.sqrt(count) : 0;
    return {
      features: count,
      polarity: pBias + pScale * polaritySum * norm,
      subjectivity: this.subjectivityHead.biases[0] + this.subjectivityHead.scale * subjectivitySum * norm,
      mostPositiveSegment: mostPositive,
      mostNegativeSegment: mostNegative,
      judgedSegments: judged,
      positiveMass,
      negativeMass,
    };
  }
}
