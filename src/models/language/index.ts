/**
 * Dominant-language detection behind Comprehend's DetectDominantLanguage.
 * See docs/models.md for how the model was trained and how well it does.
 */
import { readFileSync } from 'node:fs';
import { sentimentModelFile } from '../sentiment/model-path.js';
import { LanguageDetector, type LanguageGuess } from './detector.js';

export type { LanguageGuess } from './detector.js';
export { LanguageDetector } from './detector.js';

/** Shipped next to the sentiment weights: the two are trained together from the same corpora. */
export const LANGUAGE_MODEL_FILE = 'language-model.bin';

let cached: LanguageDetector | undefined;

export function loadLanguageDetector(): LanguageDetector {
  if (!cached) {
    const file = sentimentModelFile(LANGUAGE_MODEL_FILE);
    cached = LanguageDetector.fromBytes(readFileSync(file), file);
  }
  return cached;
}

/** Languages of `text`, best first, scores in 0..1 summing to at most 1; empty when it has no letters. */
export function detectDominantLanguage(text: string): LanguageGuess[] {
  return loadLanguageDetector().detect(text);
}
