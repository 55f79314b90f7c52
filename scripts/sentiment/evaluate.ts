/** Scoring a sentiment model on held-out sets, shared by training, the bench and the tests. */
import type { SentimentLabel } from '../../src/models/sentiment/decision.js';
import type { SentimentModel } from '../../src/models/sentiment/model.js';
import type { Example, FactualSet, PolaritySet } from './datasets.js';

export interface PolarityFigures {
  set: string;
  language: string;
  origin: string;
  documents: number;
  /** Positive vs negative decided by the larger of the two scores: the figure usually reported. */
  accuracy: number;
  /** Share of documents whose label is exactly the expected POSITIVE / NEGATIVE. */
  strictAccuracy: number;
  labels: Record<SentimentLabel, number>;
}

export interface FactualFigures {
  set: string;
  language: string;
  origin: string;
  sentences: number;
  /** Share labelled POSITIVE or NEGATIVE although the text is factual. */
  polarRate: number;
  labels: Record<SentimentLabel, number>;
}

function emptyLabels(): Record<SentimentLabel, number> {
  return { POSITIVE: 0, NEGATIVE: 0, NEUTRAL: 0, MIXED: 0 };
}

export function scorePolarity(model: SentimentModel, set: PolaritySet, examples: Example[]): PolarityFigures {
  let correct = 0;
  let strict = 0;
  const labels = emptyLabels();
  for (const e of examples) {
    const r = model.detect(e.text, set.language);
    if ((r.scores.Positive > r.scores.Negative ? 1 : 0) === e.label) correct++;
    if (r.sentiment === (e.label === 1 ? 'POSITIVE' : 'NEGATIVE')) strict++;
    labels[r.sentiment]++;
  }
  return {
    set: set.name,
    language: set.language,
    origin: set.origin,
    documents: examples.length,
    accuracy: correct / examples.length,
    strictAccuracy: strict / examples.length,
    labels,
  };
}

export function scoreFactual(model: SentimentModel, set: FactualSet, texts: string[]): FactualFigures {
  const labels = emptyLabels();
  for (const text of texts) labels[model.detect(text, set.language).sentiment]++;
  return {
    set: set.name,
    language: set.language,
    origin: set.origin,
    sentences: texts.length,
    polarRate: (labels.POSITIVE + labels.NEGATIVE) / texts.length,
    labels,
  };
}

export function heldOutExamples(set: PolaritySet): Example[] {
  return set.examples.filter((e) => e.heldOut);
}

export function heldOutSentences(set: FactualSet): string[] {
  return set.sentences.filter((s) => s.heldOut).map((s) => s.text);
}

export function formatPercent(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}
