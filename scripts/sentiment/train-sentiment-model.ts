/**
 * Trains the two heads of the sentiment model and tunes the decision rule.
 *
 * - polarity: positive vs negative, on every labelled training document and sentence, all
 *   languages in one hashed table, plus the short POSITIVE/NEGATIVE sentences of
 *   short-sentences.ts.
 * - subjectivity: opinion vs fact. Opinion = review sentences and whole reviews; fact = news and
 *   encyclopedia sentences, alone and glued into paragraphs so that length is no giveaway. The
 *   short sentences add everyday opinions and everyday facts ("The shop opens at 9 am."), which
 *   neither the reviews nor the news have, as groups with weights of their own.
 *
 * A "dev" slice of the training side (never the held-out side) is kept away from the
 * subjectivity head to tune where NEUTRAL starts.
 */
import { type DecisionParams, decide } from '../../src/models/sentiment/decision.js';
import type { SentimentEvidence } from '../../src/models/sentiment/evidence.js';
import { FEATURE_VERSION, SentimentModel, type SentimentModelMeta } from '../../src/models/sentiment/model.js';
import { extractFeatures, FeatureBuffer, languageFeatures } from '../../src/models/sentiment/text-features.js';
import { encodeWeightsFile, type LinearHead, quantize } from '../../src/models/sentiment/weights-file.js';
import { loadPatternLexicon, PATTERN_LEXICON_LANGUAGES, sentencesOf } from './corpora.js';
import type { Datasets, PolaritySet } from './datasets.js';
import { type BinaryModel, naiveBayesRatios, SparseRows, seededRandom, trainLogistic } from './logistic-regression.js';
import { isHeldOut } from './split.js';

export interface SentimentTrainingConfig {
  polarityBits: number;
  subjectivityBits: number;
  epochs: number;
  learningRate: number;
  l2: number;
  seed: number;
  /** Loss weight per polarity set, relative to 1 (sets with few documents count more). */
  setWeights: Record<string, number>;
  /** Loss weight of one lexicon word (times |polarity|), relative to a document. */
  lexiconWeight: number;
  /** Lexicon words with |polarity| below this are left out: they are barely polar. */
  lexiconMinPolarity: number;
  /** Additive smoothing of the naive-Bayes counts; larger values damp rare features. */
  nbAlpha: number;
  /** Largest share of factual dev sentences allowed a polar label when tuning NEUTRAL. */
  targetFactualPolarRate: number;
  /** Loss weight of one short POSITIVE/NEGATIVE sentence (short-sentences.ts) in the polarity head, relative to a document. */
  shortPolarityWeight: number;
  /**
   * Total loss weight of a language's short opinions (and, separately, of its short facts) in the
   * subjectivity head, as a share of the weight each side of a language's corpora gets.
   */
  shortSubjectivityShare: number;
}

export const DEFAULT_CONFIG: SentimentTrainingConfig = {
  polarityBits: 21,
  subjectivityBits: 18,
  epochs: 6,
  learningRate: 0.2,
  l2: 0,
  seed: 20_240_601,
  setWeights: {
    'en-sentences': 3,
    'en-reviews': 2,
    'fr-reviews': 3,
    'nl-reviews': 2,
    'de-reviews': 6,
  },
  lexiconWeight: 1,
  nbAlpha: 1,
  lexiconMinPolarity: 0.1,
  targetFactualPolarRate: 0.1,
  shortPolarityWeight: 10,
  shortSubjectivityShare: 0.5,
};

/** Dev = the next 10% of the hash range after the held-out share: training side, but not trained on. */
function isDev(text: string): boolean {
  return isHeldOut(text, 0.3) && !isHeldOut(text, 0.2);
}

const buffer = new FeatureBuffer();

function addText(rows: SparseRows, text: string, language: string): void {
  const n = extractFeatures(text, languageFeatures(language), buffer);
  rows.add(buffer.hashes, n, n > 0 ? 1 / Math.sqrt(n) : 0);
}

export function trainPolarity(datasets: Datasets, config: SentimentTrainingConfig): BinaryModel {
  const rows = new SparseRows();
  const labels: number[] = [];
  const weights: number[] = [];
  for (const set of datasets.polarity) {
    const weight = config.setWeights[set.name] ?? 1;
    for (const e of set.examples) {
      if (e.heldOut) continue;
      addText(rows, e.text, set.language);
      labels.push(e.label);
      weights.push(weight);
    }
  }
  for (const set of datasets.short) {
    for (const s of set.sentences) {
      if (s.heldOut || s.label === 'NEUTRAL') continue;
      addText(rows, s.text, set.language);
      labels.push(s.label === 'POSITIVE' ? 1 : 0);
      weights.push(config.shortPolarityWeight);
    }
  }
  for (const language of PATTERN_LEXICON_LANGUAGES) {
    for (const [word, { polarity }] of loadPatternLexicon(language)) {
      if (Math.abs(polarity) < config.lexiconMinPolarity) continue;
      addText(rows, word, language);
      labels.push(polarity > 0 ? 1 : 0);
      weights.push(config.lexiconWeight * Math.abs(polarity));
    }
  }
  rows.seal();
  const labelArray = Uint8Array.from(labels);
  const weightArray = Float32Array.from(weights);
  // NBSVM-style scaling: features start out weighted by how lopsided their class counts are.
  const ratios = naiveBayesRatios(rows, labelArray, weightArray, config.polarityBits, config.nbAlpha);
  return trainLogistic(rows, labelArray, weightArray, {
    bits: config.polarityBits,
    epochs: config.epochs,
    learningRate: config.learningRate,
    l2: config.l2,
    seed: config.seed,
    featureScale: ratios.map(Math.abs),
  });
}

interface SubjectivityData {
  /** language → texts */
  opinion: Map<string, string[]>;
  fact: Map<string, string[]>;
  /** The short sentences (short-sentences.ts), weighted as groups of their own. */
  shortOpinion: Map<string, string[]>;
  shortFact: Map<string, string[]>;
}

/** Opinion and fact texts per language from one side of the split (`dev` or training proper). */
function subjectivityData(datasets: Datasets, dev: boolean, random: () => number): SubjectivityData {
  const opinion = new Map<string, string[]>();
  const fact = new Map<string, string[]>();
  const push = (map: Map<string, string[]>, language: string, text: string) => {
    const list = map.get(language) ?? [];
    if (list.length === 0) map.set(language, list);
    list.push(text);
  };
  const wanted = (text: string, heldOut: boolean) => !heldOut && isDev(text) === dev;
  for (const set of datasets.polarity) {
    for (const e of set.examples) {
      if (!wanted(e.text, e.heldOut)) continue;
      // IMDB alone would outweigh everything else; a tenth of it is plenty.
      if (set.name === 'imdb' && random() > 0.1) continue;
      if (isSentenceSet(set)) {
        push(opinion, set.language, e.text);
        continue;
      }
      push(opinion, set.language, e.text);
      const sentences = sentencesOf(e.text, 4);
      // Reviews open and close with their verdict; the middle is often plot summary.
      for (const s of [sentences[0], sentences.at(-1)]) if (s) push(opinion, set.language, s);
    }
  }
  // Opinion words from the lexicons (outside any split: they are not evaluation data), so that
  // "the staff were rude" reads as an opinion even in a domain no review corpus covered.
  if (!dev) {
    for (const language of PATTERN_LEXICON_LANGUAGES) {
      for (const [word, { subjectivity }] of loadPatternLexicon(language)) {
        if (subjectivity >= 0.5) push(opinion, language, word);
      }
    }
  }
  for (const set of datasets.factual) {
    const sentences = set.sentences.filter((s) => wanted(s.text, s.heldOut)).map((s) => s.text);
    for (const s of sentences) push(fact, set.language, s);
    // Paragraphs of 3–10 consecutive sentences, so long factual text is seen too.
    for (let i = 0; i + 3 <= sentences.length; ) {
      const n = 3 + Math.floor(random() * 8);
      push(fact, set.language, sentences.slice(i, i + n).join(' '));
      i += n;
    }
  }
  const shortOpinion = new Map<string, string[]>();
  const shortFact = new Map<string, string[]>();
  // Too few to spare a dev slice: all of the training side is trained on.
  if (!dev) {
    for (const set of datasets.short) {
      for (const s of set.sentences) {
        if (!s.heldOut) push(s.label === 'NEUTRAL' ? shortFact : shortOpinion, set.language, s.text);
      }
    }
  }
  return { opinion, fact, shortOpinion, shortFact };
}

function isSentenceSet(set: PolaritySet): boolean {
  return set.name.includes('sentences');
}

export function trainSubjectivity(datasets: Datasets, config: SentimentTrainingConfig): BinaryModel {
  const data = subjectivityData(datasets, false, seededRandom(config.seed + 1));
  const rows = new SparseRows();
  const labels: number[] = [];
  const weights: number[] = [];
  // Each language's opinion and fact sides get equal total weight, whatever their sizes.
  for (const [language, facts] of data.fact) {
    const opinions = data.opinion.get(language) ?? [];
    if (opinions.length === 0) continue;
    for (const [texts, label] of [
      [opinions, 1],
      [facts, 0],
    ] as const) {
      const weight = 1000 / texts.length;
      for (const text of texts) {
        addText(rows, text, language);
        labels.push(label);
        weights.push(weight);
      }
    }
  }
  for (const [map, label] of [
    [data.shortOpinion, 1],
    [data.shortFact, 0],
  ] as const) {
    for (const [language, texts] of map) {
      const weight = (1000 * config.shortSubjectivityShare) / texts.length;
      for (const text of texts) {
        addText(rows, text, language);
        labels.push(label);
        weights.push(weight);
      }
    }
  }
  rows.seal();
  return trainLogistic(rows, Uint8Array.from(labels), Float32Array.from(weights), {
    bits: config.subjectivityBits,
    epochs: config.epochs,
    learningRate: config.learningRate,
    l2: config.l2,
    seed: config.seed + 2,
  });
}

function toHead(name: string, model: BinaryModel): LinearHead {
  const { scale, weights } = quantize(model.weights);
  return { name, bits: model.bits, classes: 1, scale, biases: [model.bias], weights };
}

/**
 * NEUTRAL starts where at most `targetFactualPolarRate` of the factual dev sentences (averaged
 * over languages) would still get a polar label.
 */
function tuneDecision(
  datasets: Datasets,
  heads: { polarity: LinearHead; subjectivity: LinearHead },
  config: SentimentTrainingConfig,
): DecisionParams {
  const probe = new SentimentModel(heads.polarity, heads.subjectivity, {
    subjectivityOffset: 0,
    polarityTemperature: 1,
  });
  const data = subjectivityData(datasets, true, seededRandom(config.seed + 3));
  const evidence: SentimentEvidence[][] = [];
  for (const [language, facts] of data.fact) evidence.push(facts.map((t) => probe.evidence(t, language)));
  const polarShare = (params: DecisionParams) =>
    evidence.reduce((sum, list) => {
      const polar = list.filter((e) => {
        const label = decide(e, params).sentiment;
        return label === 'POSITIVE' || label === 'NEGATIVE';
      }).length;
      return sum + polar / list.length;
    }, 0) / evidence.length;
  // The largest offset (the fewest opinions lost to NEUTRAL) that keeps facts within target.
  let best = -6;
  for (let o = 3; o >= -6; o -= 0.05) {
    if (polarShare({ subjectivityOffset: o, polarityTemperature: 1 }) <= config.targetFactualPolarRate) {
      best = o;
      break;
    }
  }
  return { subjectivityOffset: Math.round(best * 100) / 100, polarityTemperature: 1 };
}

export interface TrainedSentimentModel {
  model: SentimentModel;
  bytes: Uint8Array;
}

export function trainSentimentModel(
  datasets: Datasets,
  config: SentimentTrainingConfig,
  trainedOn: unknown,
): TrainedSentimentModel {
  const polarity = toHead('polarity', trainPolarity(datasets, config));
  const subjectivity = toHead('subjectivity', trainSubjectivity(datasets, config));
  const decision = tuneDecision(datasets, { polarity, subjectivity }, config);
  const meta: SentimentModelMeta = {
    format: 'pgsage-sentiment',
    featureVersion: FEATURE_VERSION,
    decision,
    trainedOn,
  };
  const bytes = encodeWeightsFile(meta, [polarity, subjectivity]);
  return { model: SentimentModel.fromBytes(bytes), bytes };
}
