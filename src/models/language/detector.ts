/**
 * Dominant-language detection: script counts split a text's letters between writing systems,
 * and Latin-script letters are classified among the Latin languages by a softmax over hashed
 * character n-grams, trained on the same offline corpora as the sentiment model.
 */
import { decodeWeightsFile, type LinearHead } from '../sentiment/weights-file.js';
import { extractNgrams, NgramBuffer } from './char-ngrams.js';
import { countScripts, SCRIPT_LANGUAGE, type Script } from './scripts.js';

export interface LanguageGuess {
  LanguageCode: string;
  Score: number;
}

export interface LanguageModelMeta {
  format: 'pgsage-language';
  featureVersion: number;
  /** Class order of the `latin` head. */
  languages: string[];
}

export const LANGUAGE_FEATURE_VERSION = 1;

/** Guesses below this score are left out of the answer (Comprehend lists only plausible ones). */
const MIN_SCORE = 0.01;

export class LanguageDetector {
  private readonly buffer = new NgramBuffer();
  private readonly logits: Float64Array;
  private readonly mask: number;

  constructor(
    private readonly head: LinearHead,
    readonly languages: readonly string[],
  ) {
    if (head.classes !== languages.length) throw new Error('language head and language list disagree');
    this.logits = new Float64Array(head.classes);
    this.mask = (1 << head.bits) - 1;
  }

  static fromBytes(bytes: Uint8Array, source = 'language model'): LanguageDetector {
    const file = decodeWeightsFile<LanguageModelMeta>(bytes, source);
    if (file.meta.format !== 'pgsage-language') throw new Error(`${source}: not a language model`);
    if (file.meta.featureVersion !== LANGUAGE_FEATURE_VERSION) throw new Error(`${source}: feature version mismatch`);
    const head = file.heads.get('latin');
    if (!head) throw new Error(`${source}: missing the latin head`);
    return new LanguageDetector(head, file.meta.languages);
  }

  /** Probability of each Latin-script language for the Latin letters of `text`. */
  latinProbabilities(text: string): Float64Array {
    const count = extractNgrams(text, this.buffer);
    const { head, logits, mask } = this;
    const classes = head.classes;
    const weights = head.weights;
    const hashes = this.buffer.hashes;
    logits.fill(0);
    for (let k = 0; k < count; k++) {
      const base = (hashes[k] & mask) * classes;
      for (let c = 0; c < classes; c++) logits[c] += weights[base + c];
    }
    const norm = count > 0 ? head.scale / Math.sqrt(count) : 0;
    let max = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < classes; c++) {
      logits[c] = head.biases[c] + logits[c] * norm;
      if (logits[c] > max) max = logits[c];
    }
    let sum = 0;
    for (let c = 0; c < classes; c++) {
      logits[c] = Math.exp(logits[c] - max);
      sum += logits[c];
    }
    for (let c = 0; c < classes; c++) logits[c] /= sum;
    return logits;
  }

  detect(text: string): LanguageGuess[] {
    const scripts = countScripts(text);
    if (scripts.total === 0) return [];
    const scores = new Map<string, number>();
    const add = (code: string, score: number) => scores.set(code, (scores.get(code) ?? 0) + score);
    for (const [script, n] of scripts.counts) {
      const share = n / scripts.total;
      if (script === 'latin') {
        const probabilities = this.latinProbabilities(text);
        for (let i = 0; i < this.languages.length; i++) add(this.languages[i], share * probabilities[i]);
      } else if (script === 'han') {
        // Han next to kana is Japanese; alone it is Chinese, traditional if its characters say so.
        if ((scripts.counts.get('kana') ?? 0) > 0) add('ja', share);
        else add(scripts.traditional > scripts.simplified ? 'zh-TW' : 'zh', share);
      } else {
        add(SCRIPT_LANGUAGE[script as Exclude<Script, 'latin' | 'han'>], share);
      }
    }
    return [...scores]
      .filter(([, score]) => score >= MIN_SCORE)
      .sort((a, b) => b[1] - a[1])
      .map(([LanguageCode, Score]) => ({ LanguageCode, Score }));
  }
}
