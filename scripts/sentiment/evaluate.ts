/** Scoring a sentiment model on held-out sets, shared by training, the bench and the tests. */
import type { SentimentLabel } from '../../src/models/sentiment/decision.js';
import type { SentimentModel } from '../../src/models/sentiment/model.js';
import type { Example, FactualSet, PolaritySet } from './datasets.js';
import type { ShortSentence } from './short-sentences.js';

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

export interface ShortFigures {
  set: string;
  language: string;
  origin: string;
  sentences: number;
  /** Share whose label is exactly the expected POSITIVE, NEGATIVE or NEUTRAL. */
  accuracy: number;
  /** expected label → labels given. */
  confusion: Record<string, Record<SentimentLabel, number>>;
}

/** Three-way accuracy on short sentences: the label itself must match. */
export function scoreShort(
  model: SentimentModel,
  set: { name: string; language: string; origin: string },
  sentences: Pick<ShortSentence, 'label' | 'text'>[],
): ShortFigures {
  let correct = 0;
  const confusion: Record<string, Record<SentimentLabel, number>> = {};
  for (const s of sentences) {
    const label = model.detect(s.text, set.language).sentiment;
    if (label === s.label) correct++;
    confusion[s.label] ??= emptyLabels();
    confusion[s.label][label]++;
  }
  return {
    set: set.name,
    language: set.language,
    origin: set.origin,
    sentences: sentences.length,
    accuracy: correct / sentences.length,
    confusion,
  };
}

/** The separately written held-out list, as a whole (language `all`) and per language. */
export function scoreShortHeldOut(model: SentimentModel, sentences: ShortSentence[]): ShortFigures[] {
  const parts = [...new Set(sentences.map((s) => s.language))].map((language) =>
    scoreShort(
      model,
      { name: 'short-held-out', language, origin: 'native' },
      sentences.filter((s) => s.language === language),
    ),
  );
  const confusion: Record<string, Record<SentimentLabel, number>> = {};
  let correct = 0;
  for (const p of parts) {
    correct += Math.round(p.accuracy * p.sentences);
    for (const [expected, given] of Object.entries(p.confusion)) {
      confusion[expected] ??= emptyLabels();
      for (const [label, n] of Object.entries(given)) confusion[expected][label as SentimentLabel] += n;
    }
  }
  const all: ShortFigures = {
    set: 'short-held-out',
    language: 'all',
    origin: 'native',
    sentences: sentences.length,
    accuracy: correct / sentences.length,
    confusion,
  };
  return [all, ...parts];
}
