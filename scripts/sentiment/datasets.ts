/**
 * Every labelled set the sentiment model is trained and scored on, per language, with its side of
 * the held-out split. A translated example inherits the side of the text it was translated from,
 * so no held-out text reaches training through a translation either.
 */
import {
  type LabeledText,
  loadFactualSentences,
  loadImdb,
  loadPatternPolarity,
  type PatternPolarityCorpus,
  type Polarity,
} from './corpora.js';
import { loadShortSentences, SHORT_TRAINING_FILE, type ShortLabel } from './short-sentences.js';
import { DEFAULT_TEST_FRACTION, isHeldOut } from './split.js';
import { type ApertiumPair, translate } from './translate.js';

export interface Example {
  text: string;
  label: Polarity;
  heldOut: boolean;
}

export interface PolaritySet {
  /** e.g. `imdb`, `fr-reviews`, `pt-sentences-mt`. */
  name: string;
  language: string;
  /** How the text came to be: native, or the Apertium chain that produced it. */
  origin: string;
  examples: Example[];
}

export interface FactualSet {
  name: string;
  language: string;
  origin: string;
  sentences: { text: string; heldOut: boolean }[];
}

/** Short plain sentences with three labels (see short-sentences.ts), one set per language and origin. */
export interface ShortSet {
  /** e.g. `en-short`, `es-short-mt`. */
  name: string;
  language: string;
  origin: string;
  sentences: { text: string; label: ShortLabel; heldOut: boolean }[];
}

export interface Datasets {
  polarity: PolaritySet[];
  factual: FactualSet[];
  short: ShortSet[];
}

/** German has only 200 reviews: half stay out so its figure means something. */
export const TEST_FRACTION: Record<string, number> = { 'de-reviews': 0.5 };
/** Factual sentences are few and only used to measure and learn "no polarity". */
export const FACTUAL_TEST_FRACTION = 0.3;

export function testFractionOf(corpus: string): number {
  return TEST_FRACTION[corpus] ?? DEFAULT_TEST_FRACTION;
}

function withSplit(items: LabeledText[], corpus: string): Example[] {
  const fraction = testFractionOf(corpus);
  return items.map((item) => ({ ...item, heldOut: isHeldOut(item.text, fraction) }));
}

/** The IMDB reviews that are translated: every 12th training review and every 8th held-out one. */
function imdbTranslationSample(imdb: Example[]): Example[] {
  const train = imdb.filter((e) => !e.heldOut).filter((_, i) => i % 12 === 0);
  const test = imdb.filter((e) => e.heldOut).filter((_, i) => i % 8 === 0);
  return [...train, ...test];
}

async function translateExamples(examples: Example[], pair: ApertiumPair): Promise<Example[]> {
  const texts = await translate(
    examples.map((e) => e.text),
    pair,
  );
  return examples.map((e, i) => ({ ...e, text: texts[i] })).filter((e) => e.text.length > 0);
}

async function translateSentences(
  sentences: FactualSet['sentences'],
  pair: ApertiumPair,
): Promise<FactualSet['sentences']> {
  const texts = await translate(
    sentences.map((s) => s.text),
    pair,
  );
  return sentences.map((s, i) => ({ ...s, text: texts[i] })).filter((s) => s.text.length > 0);
}

function factual(language: Parameters<typeof loadFactualSentences>[0]): FactualSet {
  const sentences = loadFactualSentences(language).map((text) => ({
    text,
    heldOut: isHeldOut(text, FACTUAL_TEST_FRACTION),
  }));
  return { name: `${language}-factual`, language, origin: 'native', sentences };
}

export interface DatasetOptions {
  /** Load the pattern corpora (needs python3-pattern installed). */
  pattern: boolean;
  /** Add Apertium translations for es, pt, it (and more French); needs apertium installed. */
  translations: boolean;
}

/** The hand-written short sentences, one set per language, each split 80/20 by its text. */
function shortSets(): ShortSet[] {
  const byLanguage = new Map<string, ShortSet>();
  for (const s of loadShortSentences(SHORT_TRAINING_FILE)) {
    let set = byLanguage.get(s.language);
    if (!set) {
      set = { name: `${s.language}-short`, language: s.language, origin: 'native', sentences: [] };
      byLanguage.set(s.language, set);
    }
    set.sentences.push({ text: s.text, label: s.label, heldOut: isHeldOut(s.text) });
  }
  return [...byLanguage.values()];
}

async function translateShort(set: ShortSet, pair: ApertiumPair, language: string, origin: string): Promise<ShortSet> {
  const texts = await translate(
    set.sentences.map((s) => s.text),
    pair,
  );
  const sentences = set.sentences.map((s, i) => ({ ...s, text: texts[i] })).filter((s) => s.text.length > 0);
  return { name: `${language}-short-mt`, language, origin, sentences };
}

export async function buildDatasets(options: DatasetOptions): Promise<Datasets> {
  const imdb = withSplit(loadImdb(), 'imdb');
  const polarity: PolaritySet[] = [{ name: 'imdb', language: 'en', origin: 'native', examples: imdb }];
  const factualSets: FactualSet[] = [];
  // Ours, committed with the code: always there, even for a build on IMDB alone.
  const short = shortSets();
  if (!options.pattern) return { polarity, factual: factualSets, short };

  const corpus = (name: PatternPolarityCorpus, language: string): PolaritySet => ({
    name,
    language,
    origin: 'native',
    examples: withSplit(loadPatternPolarity(name), name),
  });
  const enSentences = corpus('en-sentences', 'en');
  const enReviews = corpus('en-reviews', 'en');
  const frReviews = corpus('fr-reviews', 'fr');
  polarity.push(enSentences, enReviews, frReviews, corpus('nl-reviews', 'nl'), corpus('de-reviews', 'de'));
  const enFactual = factual('en');
  const esFactual = factual('es');
  const frFactual = factual('fr');
  factualSets.push(enFactual, esFactual, frFactual, factual('de'), factual('it'), factual('nl'));
  if (!options.translations) return { polarity, factual: factualSets, short };

  // English → Spanish is the hub: Apertium's Portuguese, Italian and French pairs start from Spanish.
  const englishReviews = [...enReviews.examples, ...imdbTranslationSample(imdb)];
  const esSentences = await translateExamples(enSentences.examples, 'eng-spa');
  const esReviews = [
    ...(await translateExamples(englishReviews, 'eng-spa')),
    ...(await translateExamples(frReviews.examples, 'fr-es')),
  ];
  const esFromEnFactual = await translateSentences(enFactual.sentences, 'eng-spa');
  const esFromFrFactual = await translateSentences(frFactual.sentences, 'fr-es');
  const spanishFactual = [...esFactual.sentences, ...esFromEnFactual, ...esFromFrFactual];

  const mt = (language: string, kind: string, origin: string, examples: Example[]): PolaritySet => ({
    name: `${language}-${kind}-mt`,
    language,
    origin,
    examples,
  });
  polarity.push(mt('es', 'sentences', 'en→es', esSentences), mt('es', 'reviews', 'en→es, fr→es', esReviews));
  factualSets.push({
    name: 'es-factual-mt',
    language: 'es',
    origin: 'en→es, fr→es',
    sentences: [...esFromEnFactual, ...esFromFrFactual],
  });

  for (const [language, pair] of [
    ['pt', 'es-pt'],
    ['it', 'spa-ita'],
  ] as const) {
    polarity.push(
      mt(language, 'sentences', `en→es→${language}`, await translateExamples(esSentences, pair)),
      mt(language, 'reviews', `en→es→${language}, fr→es→${language}`, await translateExamples(esReviews, pair)),
    );
    factualSets.push({
      name: `${language}-factual-mt`,
      language,
      origin: `es/en/fr→es→${language}`,
      sentences: await translateSentences(spanishFactual, pair),
    });
  }
  const esFromEnReviews = esReviews.slice(0, englishReviews.length);
  polarity.push(
    mt('fr', 'sentences', 'en→es→fr', await translateExamples(esSentences, 'es-fr')),
    mt('fr', 'reviews', 'en→es→fr', await translateExamples(esFromEnReviews, 'es-fr')),
  );
  // The English short sentences take the same Apertium chains as the English corpora.
  const enShort = short.find((set) => set.language === 'en');
  if (enShort) {
    const esShort = await translateShort(enShort, 'eng-spa', 'es', 'en→es');
    short.push(
      esShort,
      await translateShort(esShort, 'es-pt', 'pt', 'en→es→pt'),
      await translateShort(esShort, 'spa-ita', 'it', 'en→es→it'),
      await translateShort(esShort, 'es-fr', 'fr', 'en→es→fr'),
    );
  }
  return { polarity, factual: factualSets, short };
}
