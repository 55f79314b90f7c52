/**
 * The bundled, offline sentiment model behind the Comprehend-compatible service.
 * See docs/models.md for how it was trained and how well it does.
 */
import { readFileSync } from 'node:fs';
import { SentimentModel } from './model.js';
import { sentimentModelFile } from './model-path.js';

export type { SentimentLabel, SentimentResult, SentimentScore } from './decision.js';
export {
  COMPREHEND_LANGUAGES,
  isSupportedLanguage,
  SENTIMENT_LANGUAGES,
  UnsupportedLanguageError,
} from './languages.js';
export { SentimentModel } from './model.js';

export const SENTIMENT_MODEL_FILE = 'sentiment-model.bin';

let cached: SentimentModel | undefined;

/** The shipped model, read from models/sentiment/ on first use and shared afterwards. */
export function loadSentimentModel(): SentimentModel {
  if (!cached) {
    const file = sentimentModelFile(SENTIMENT_MODEL_FILE);
    cached = SentimentModel.fromBytes(readFileSync(file), file);
  }
  return cached;
}
