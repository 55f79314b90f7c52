import { type DecisionParams, decide, type SentimentResult } from './decision.js';
import { EvidenceReader, type SentimentEvidence } from './evidence.js';
import { isSupportedLanguage, UnsupportedLanguageError } from './languages.js';
import { type LanguageFeatures, languageFeatures } from './text-features.js';
import { decodeWeightsFile, type LinearHead } from './weights-file.js';

/** What the weights file records besides the tables. */
export interface SentimentModelMeta {
  format: 'pgsage-sentiment';
  /** Bumped whenever text-features.ts changes what a feature is: old weights would then be garbage. */
  featureVersion: number;
  decision: DecisionParams;
  /** Provenance: data, seeds, held-out figures. Free-form, for people. */
  trainedOn?: unknown;
}

export const FEATURE_VERSION = 3;

/**
 * One multilingual model: every feature lives both in a space the languages share and in one
 * tagged with the language code (see text-features.ts), all in one hashed table.
 */
export class SentimentModel {
  private readonly reader: EvidenceReader;
  private readonly features = new Map<string, LanguageFeatures>();

  constructor(
    polarity: LinearHead,
    subjectivity: LinearHead,
    readonly decision: DecisionParams,
  ) {
    this.reader = new EvidenceReader(polarity, subjectivity);
  }

  static fromBytes(bytes: Uint8Array, source = 'sentiment model'): SentimentModel {
    const file = decodeWeightsFile<SentimentModelMeta>(bytes, source);
    if (file.meta.format !== 'pgsage-sentiment') throw new Error(`${source}: not a sentiment model`);
    if (file.meta.featureVersion !== FEATURE_VERSION) {
      throw new Error(`${source}: built for feature version ${file.meta.featureVersion}, code has ${FEATURE_VERSION}`);
    }
    const polarity = file.heads.get('polarity');
    const subjectivity = file.heads.get('subjectivity');
    if (!polarity || !subjectivity) throw new Error(`${source}: missing a head`);
    return new SentimentModel(polarity, subjectivity, file.meta.decision);
  }

  /** Sentiment of one text. Throws for a language the model does not support. */
  detect(text: string, languageCode: string): SentimentResult {
    return decide(this.reader.read(text, this.featuresOf(languageCode)), this.decision);
  }

  detectBatch(texts: string[], languageCode: string): SentimentResult[] {
    const features = this.featuresOf(languageCode);
    return texts.map((text) => decide(this.reader.read(text, features), this.decision));
  }

  /** The raw head outputs, for evaluation and for tuning the decision rule. */
  evidence(text: string, languageCode: string): SentimentEvidence {
    return this.reader.read(text, this.featuresOf(languageCode));
  }

  private featuresOf(languageCode: string): LanguageFeatures {
    let features = this.features.get(languageCode);
    if (!features) {
      if (!isSupportedLanguage(languageCode)) throw new UnsupportedLanguageError(languageCode);
      features = languageFeatures(languageCode);
      this.features.set(languageCode, features);
    }
    return features;
  }
}
