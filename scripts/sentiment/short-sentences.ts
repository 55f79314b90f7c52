/**
 * Short plain sentences ("I hate it!", "The train leaves at nine."), the kind users type first.
 * The review corpora teach long movie and book reviews, where "!", "I" or "today" lean positive
 * and a plain fact is never seen at sentence length, so the model needs examples of its own:
 *
 * - `scripts/sentiment/data/short-sentences.tsv`: hand-written training sentences, POSITIVE,
 *   NEGATIVE and NEUTRAL (plain facts) in all seven languages, split 80/20 like every other set
 *   so its held-out fifth gives a figure too; the English ones are also machine-translated to
 *   es/pt/it/fr like the English corpora.
 * - `test/fixtures/sentiment-short/held-out.tsv`: a separately written list that is never
 *   trained on, scored in test/unit/sentiment-short.test.ts and in the model card.
 *
 * Both files are ours (MIT), so unlike the pattern corpora they are committed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SentimentLabel } from '../../src/models/sentiment/decision.js';
import { REPO_ROOT } from './paths.js';

export type ShortLabel = Exclude<SentimentLabel, 'MIXED'>;

export interface ShortSentence {
  language: string;
  label: ShortLabel;
  text: string;
}

export const SHORT_TRAINING_FILE = join(REPO_ROOT, 'scripts', 'sentiment', 'data', 'short-sentences.tsv');
export const SHORT_HELD_OUT_FILE = join(REPO_ROOT, 'test', 'fixtures', 'sentiment-short', 'held-out.tsv');

const LABELS = new Set<string>(['POSITIVE', 'NEGATIVE', 'NEUTRAL']);

/** `language<TAB>label<TAB>text` lines; `#` comments and blank lines are skipped. */
export function parseShortSentences(tsv: string, source: string): ShortSentence[] {
  const out: ShortSentence[] = [];
  tsv.split('\n').forEach((line, i) => {
    if (line.trim() === '' || line.startsWith('#')) return;
    const [language, label, text, ...rest] = line.split('\t');
    if (rest.length > 0 || !text || !LABELS.has(label))
      throw new Error(`${source}:${i + 1}: expected language, label, text`);
    out.push({ language, label: label as ShortLabel, text: text.trim() });
  });
  return out;
}

export function loadShortSentences(file: string): ShortSentence[] {
  return parseShortSentences(readFileSync(file, 'utf8'), file);
}

/** Lower-cased words only: "I hate it!" and "i hate it" are the same sentence. */
export function sentenceKey(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

/** Held-out sentences that also occur (up to case and punctuation) in the training list. */
export function leakedSentences(training: ShortSentence[], heldOut: ShortSentence[]): string[] {
  const trained = new Set(training.map((s) => sentenceKey(s.text)));
  return heldOut.filter((s) => trained.has(sentenceKey(s.text))).map((s) => s.text);
}
