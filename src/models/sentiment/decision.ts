/**
 * From evidence to a Comprehend-style answer: four scores that sum to 1 and the label with the
 * highest score.
 *
 *   Neutral  = 1 − q                 q = 1 − (1 − s)(1 − r): an opinion if either
 *                                      s = P(opinion) from the subjectivity head says so, or
 *                                      r = (2σ(|polarity logit|) − 1)² — strong polarity is
 *                                      itself evidence of an opinion, whatever the domain
 *   Mixed    = q · m                 m = how strongly parts disagree while neither side dominates
 *   Positive = q · (1 − m) · p       p = P(positive) from the polarity head on the whole text
 *   Negative = q · (1 − m) · (1 − p)
 *
 * m = min(strength of the most positive segment, strength of the most negative segment) × b²,
 *     b = min(P, N) / max(P, N),
 * where a segment is a sentence or a clause cut before "but", "however", "mais", "aber", …;
 * its strength is 2σ(logit) − 1 in its own direction; and P (N) adds up, over the segments,
 * words × positive (negative) strength. So MIXED needs a clearly positive part, a clearly negative
 * part, and neither side outweighing the other: a glowing review with one grumble stays
 * POSITIVE (b is small), while "I loved the acting, but the story was boring and the ending
 * awful" is MIXED. The square makes MIXED give way quickly as one side grows.
 */
import type { SentimentEvidence } from './evidence.js';

export type SentimentLabel = 'POSITIVE' | 'NEGATIVE' | 'NEUTRAL' | 'MIXED';

export interface SentimentScore {
  Positive: number;
  Negative: number;
  Neutral: number;
  Mixed: number;
}

export interface SentimentResult {
  sentiment: SentimentLabel;
  scores: SentimentScore;
}

/** Stored with the weights, so a retrained model brings its own. */
export interface DecisionParams {
  /** Added to the subjectivity logit: moves the NEUTRAL boundary. Tuned at training time on dev data. */
  subjectivityOffset: number;
  /**
   * Divides the polarity logits (temperature scaling). The shipped model uses 1: calibrating
   * confidences against held-out data is left for later, so treat scores as ranks, not odds.
   */
  polarityTemperature: number;
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

const NO_TEXT: SentimentResult = Object.freeze({
  sentiment: 'NEUTRAL',
  scores: Object.freeze({ Positive: 0, Negative: 0, Neutral: 1, Mixed: 0 }),
}) as SentimentResult;

export function decide(evidence: SentimentEvidence, params: DecisionParams): SentimentResult {
  // Blank or punctuation-only text has no opinion to find; callers usually filter it earlier.
  if (evidence.features === 0) return { sentiment: NO_TEXT.sentiment, scores: { ...NO_TEXT.scores } };

  const p = sigmoid(evidence.polarity / params.polarityTemperature);
  const s = sigmoid(evidence.subjectivity + params.subjectivityOffset);
  const strength = 2 * sigmoid(Math.abs(evidence.polarity) / params.polarityTemperature) - 1;
  const q = 1 - (1 - s) * (1 - strength * strength);
  let m = 0;
  if (evidence.judgedSegments >= 2 && evidence.positiveMass > 0 && evidence.negativeMass > 0) {
    const positiveStrength = Math.max(0, 2 * sigmoid(evidence.mostPositiveSegment / params.polarityTemperature) - 1);
    const negativeStrength = Math.max(0, 2 * sigmoid(-evidence.mostNegativeSegment / params.polarityTemperature) - 1);
    const balance =
      Math.min(evidence.positiveMass, evidence.negativeMass) / Math.max(evidence.positiveMass, evidence.negativeMass);
    m = Math.min(positiveStrength, negativeStrength) * balance * balance;
  }
  const scores: SentimentScore = {
    Positive: q * (1 - m) * p,
    Negative: q * (1 - m) * (1 - p),
    Neutral: 1 - q,
    Mixed: q * m,
  };
  return { sentiment: labelOf(scores), scores };
}

function labelOf(s: SentimentScore): SentimentLabel {
  let label: SentimentLabel = 'POSITIVE';
  let best = s.Positive;
  if (s.Negative > best) {
    label = 'NEGATIVE';
    best = s.Negative;
  }
  if (s.Neutral > best) {
    label = 'NEUTRAL';
    best = s.Neutral;
  }
  if (s.Mixed > best) label = 'MIXED';
  return label;
}
