/**
 * Trains the Latin-script language classifier (softmax over hashed character n-grams) from the
 * sentiment corpora, their translations and the factual sentences, and scores it per language
 * on held-out sentences. Native text is preferred for scoring; Portuguese only exists here as
 * Apertium output, which the report says.
 */
import { extractNgrams, NgramBuffer } from '../../src/models/language/char-ngrams.js';
import {
  LANGUAGE_FEATURE_VERSION,
  LanguageDetector,
  type LanguageModelMeta,
} from '../../src/models/language/detector.js';
import { encodeWeightsFile, quantize } from '../../src/models/sentiment/weights-file.js';
import { loadOanc, sentencesOf } from './corpora.js';
import type { Datasets } from './datasets.js';
import { SparseRows, seededRandom, shuffled, trainSoftmax } from './logistic-regression.js';
import { isHeldOut } from './split.js';

export const LATIN_LANGUAGES = ['en', 'es', 'fr', 'de', 'it', 'pt', 'nl'] as const;

const BITS = 16;
/** Training texts per language: enough for stable n-gram weights, few enough to train in seconds. */
const PER_LANGUAGE = 15_000;
const SEED = 7_310;

export interface LanguageFigures {
  language: string;
  kind: string;
  /** native text, or the Apertium chain it came from */
  origin: string;
  texts: number;
  accuracy: number;
}

interface Pool {
  train: string[];
  test: string[];
  testOrigin: string;
}

function pools(datasets: Datasets): Map<string, Pool> {
  const byLanguage = new Map<string, Pool>(
    LATIN_LANGUAGES.map((l) => [l, { train: [], test: [], testOrigin: 'native' } satisfies Pool]),
  );
  const nativeTest = new Map<string, string[]>();
  const mtTest = new Map<string, { origin: string; texts: string[] }>();
  const addTest = (language: string, native: boolean, origin: string, sentences: string[]) => {
    if (native) nativeTest.set(language, [...(nativeTest.get(language) ?? []), ...sentences]);
    else {
      const entry = mtTest.get(language) ?? { origin, texts: [] };
      entry.texts.push(...sentences);
      mtTest.set(language, entry);
    }
  };
  for (const set of datasets.polarity) {
    const pool = byLanguage.get(set.language);
    if (!pool) continue;
    const native = set.origin === 'native';
    const random = seededRandom(SEED + set.name.length);
    for (const e of set.examples) {
      // IMDB would drown everything else in English; a few percent is plenty.
      if (set.name === 'imdb' && random() > 0.05) continue;
      const sentences = sentencesOf(e.text, 3);
      if (e.heldOut) addTest(set.language, native, set.origin, sentences);
      else pool.train.push(...sentences);
    }
  }
  for (const set of datasets.factual) {
    const pool = byLanguage.get(set.language);
    if (!pool) continue;
    const native = set.origin === 'native';
    for (const s of set.sentences) {
      if (s.heldOut) addTest(set.language, native, set.origin, [s.text]);
      else pool.train.push(s.text);
    }
  }
  for (const text of loadOanc()) {
    if (isHeldOut(text, 0.2)) addTest('en', true, 'native', [text]);
    else byLanguage.get('en')?.train.push(text);
  }
  for (const [language, pool] of byLanguage) {
    const native = nativeTest.get(language);
    if (native && native.length > 0) pool.test = native;
    else {
      const mt = mtTest.get(language);
      pool.test = mt?.texts ?? [];
      pool.testOrigin = mt?.origin ?? 'none';
    }
  }
  return byLanguage;
}

function sample<T>(items: T[], n: number, random: () => number): T[] {
  if (items.length <= n) return items;
  return Array.from(shuffled(items.length, random).subarray(0, n), (i) => items[i]);
}

const TEST_PER_LANGUAGE = 2_000;

export interface LanguageTestSet {
  language: string;
  origin: string;
  sentences: string[];
}

/** Up to 2,000 held-out sentences per language, native text where the corpora have it. */
export function heldOutLanguageSets(datasets: Datasets, byLanguage = pools(datasets)): LanguageTestSet[] {
  return LATIN_LANGUAGES.map((language) => {
    const pool = byLanguage.get(language) ?? { test: [], testOrigin: 'none' };
    return {
      language,
      origin: pool.testOrigin,
      sentences: sample(pool.test, TEST_PER_LANGUAGE, seededRandom(SEED + 1)),
    };
  });
}

/** Accuracy of the top guess on whole sentences and on their first five words. */
export function scoreLanguageDetector(detector: LanguageDetector, sets: LanguageTestSet[]): LanguageFigures[] {
  const figures: LanguageFigures[] = [];
  for (const { language, origin, sentences } of sets) {
    const snippets = sentences.map((t) => t.split(/\s+/).slice(0, 5).join(' '));
    for (const [kind, texts] of [
      ['sentences', sentences],
      ['5-word snippets', snippets],
    ] as const) {
      const correct = texts.filter((t) => detector.detect(t)[0]?.LanguageCode === language).length;
      figures.push({ language, kind, origin, texts: texts.length, accuracy: correct / texts.length });
    }
  }
  return figures;
}

export interface TrainedLanguageModel {
  detector: LanguageDetector;
  bytes: Uint8Array;
  figures: LanguageFigures[];
}

export function trainLanguageModel(datasets: Datasets): TrainedLanguageModel {
  const random = seededRandom(SEED);
  const byLanguage = pools(datasets);
  const buffer = new NgramBuffer();
  const rows = new SparseRows();
  const labels: number[] = [];
  LATIN_LANGUAGES.forEach((language, label) => {
    const train = sample(byLanguage.get(language)?.train ?? [], PER_LANGUAGE, random);
    for (const text of train) {
      // Half the examples are cut to a few words: short inputs are the hard case.
      const words = text.split(/\s+/);
      const input = random() < 0.5 ? words.slice(0, 2 + Math.floor(random() * 5)).join(' ') : text;
      const n = extractNgrams(input, buffer);
      if (n === 0) continue;
      rows.add(buffer.hashes, n, 1 / Math.sqrt(n));
      labels.push(label);
    }
  });
  rows.seal();
  const model = trainSoftmax(
    rows,
    Uint8Array.from(labels),
    LATIN_LANGUAGES.length,
    new Float32Array(labels.length).fill(1),
    {
      bits: BITS,
      epochs: 5,
      learningRate: 0.3,
      l2: 0,
      seed: SEED,
    },
  );
  const { scale, weights } = quantize(model.weights);
  const head = {
    name: 'latin',
    bits: BITS,
    classes: LATIN_LANGUAGES.length,
    scale,
    biases: [...model.biases],
    weights,
  };
  const meta: LanguageModelMeta = {
    format: 'pgsage-language',
    featureVersion: LANGUAGE_FEATURE_VERSION,
    languages: [...LATIN_LANGUAGES],
  };
  const bytes = encodeWeightsFile(meta, [head]);
  const detector = LanguageDetector.fromBytes(bytes);

  const figures = scoreLanguageDetector(detector, heldOutLanguageSets(datasets, byLanguage));
  return { detector, bytes, figures };
}
