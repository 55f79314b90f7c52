/**
 * Amazon Comprehend's JSON 1.1 operations (`X-Amz-Target: Comprehend_20171127.*`)
 * backed by the bundled sentiment and language models.
 */
import { detectDominantLanguage } from '../../models/language/index.js';
import {
  isSupportedLanguage,
  loadSentimentModel,
  SENTIMENT_LANGUAGES,
  type SentimentModel,
  type SentimentResult,
} from '../../models/sentiment/index.js';
import type { JsonOperation } from '../edge.js';
import { AwsError } from '../errors.js';
import {
  BATCH_ERROR_CODES,
  checkDocument,
  comprehendError,
  DOCUMENT_LIMIT_BYTES,
  DOMINANT_LANGUAGE_LIMIT_BYTES,
  documentProblem,
  requireLanguageCode,
  requireText,
  requireTextList,
} from './input.js';

export const COMPREHEND_TARGET_PREFIX = 'Comprehend_20171127';

interface BatchItemError {
  Index: number;
  ErrorCode: string;
  ErrorMessage: string;
}

export function comprehendOperations(): Record<string, JsonOperation> {
  return {
    DetectSentiment: (input) => {
      const text = requireText(input);
      const language = sentimentLanguage(input);
      checkDocument(text, DOCUMENT_LIMIT_BYTES);
      return sentimentOutput(sentimentModel().detect(text, language));
    },

    BatchDetectSentiment: (input) => {
      const texts = requireTextList(input);
      const language = sentimentLanguage(input);
      const model = sentimentModel();
      return batchResults(texts, (text) => sentimentOutput(model.detect(text, language)));
    },

    DetectDominantLanguage: (input) => {
      const text = requireText(input);
      checkDocument(text, DOMINANT_LANGUAGE_LIMIT_BYTES);
      return { Languages: languages(text) };
    },

    BatchDetectDominantLanguage: (input) => {
      const texts = requireTextList(input);
      return batchResults(texts, (text) => ({ Languages: languages(text) }));
    },
  };
}

/**
 * A Batch* operation's answer: each document's result, or its own error (too
 * long, empty, …) in ErrorList without failing the others, as Comprehend does.
 */
function batchResults(
  texts: readonly string[],
  result: (text: string) => Record<string, unknown>,
): { ResultList: Record<string, unknown>[]; ErrorList: BatchItemError[] } {
  const ResultList: Record<string, unknown>[] = [];
  const ErrorList: BatchItemError[] = [];
  texts.forEach((text, index) => {
    const problem = documentProblem(text, DOCUMENT_LIMIT_BYTES);
    if (problem) {
      ErrorList.push({ Index: index, ErrorCode: BATCH_ERROR_CODES[problem.type], ErrorMessage: problem.message });
      return;
    }
    ResultList.push({ Index: index, ...result(text) });
  });
  return { ResultList, ErrorList };
}

/**
 * Loads the bundled model now rather than on the first request, so the first
 * caller does not pay for it. A missing model file is logged, not fatal: the
 * other services keep working and Comprehend calls say what is wrong.
 */
export function warmComprehendModels(): Error | undefined {
  try {
    loadSentimentModel();
    detectDominantLanguage('warm up');
    return undefined;
  } catch (error) {
    return error as Error;
  }
}

function sentimentLanguage(input: Record<string, unknown>): string {
  const code = requireLanguageCode(input);
  if (!isSupportedLanguage(code)) {
    throw comprehendError(
      'UnsupportedLanguageException',
      `The language code '${code}' is not supported for sentiment detection by pgsage's bundled model. Supported language codes: ${SENTIMENT_LANGUAGES.join(', ')}.`,
    );
  }
  return code;
}

function sentimentModel(): SentimentModel {
  try {
    return loadSentimentModel();
  } catch (error) {
    throw new AwsError(
      'InternalServerException',
      `The sentiment model could not be loaded: ${(error as Error).message}`,
      500,
    );
  }
}

function sentimentOutput(result: SentimentResult): Record<string, unknown> {
  const { Positive, Negative, Neutral, Mixed } = result.scores;
  return { Sentiment: result.sentiment, SentimentScore: { Positive, Negative, Neutral, Mixed } };
}

function languages(text: string): { LanguageCode: string; Score: number }[] {
  try {
    return detectDominantLanguage(text).map(({ LanguageCode, Score }) => ({ LanguageCode, Score }));
  } catch (error) {
    throw new AwsError(
      'InternalServerException',
      `The language model could not be loaded: ${(error as Error).message}`,
      500,
    );
  }
}
