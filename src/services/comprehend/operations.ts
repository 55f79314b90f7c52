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
import { AwsError, internalFailure } from '../errors.js';
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
import type { ScoredDocuments, SentimentPool } from './sentiment-pool.js';
import { SENTIMENT_LABELS } from './sentiment-protocol.js';

export const COMPREHEND_TARGET_PREFIX = 'Comprehend_20171127';

interface BatchItemError {
  Index: number;
  ErrorCode: string;
  ErrorMessage: string;
}

/**
 * The operations; with a pool, BatchDetectSentiment also takes many requests
 * at once (JsonOperation.many), scored together in the pool's workers.
 */
export function comprehendOperations(pool?: SentimentPool): Record<string, JsonOperation> {
  const batchDetectSentiment: JsonOperation = (input) => {
    const texts = requireTextList(input);
    const language = sentimentLanguage(input);
    const model = sentimentModel();
    return batchResults(texts, (text) => sentimentOutput(model.detect(text, language)));
  };
  if (pool) batchDetectSentiment.many = (inputs, signal) => batchDetectSentimentMany(pool, inputs, signal);
  return {
    DetectSentiment: (input) => {
      const text = requireText(input);
      const language = sentimentLanguage(input);
      checkDocument(text, DOCUMENT_LIMIT_BYTES);
      return sentimentOutput(sentimentModel().detect(text, language));
    },

    BatchDetectSentiment: batchDetectSentiment,

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
 * BatchDetectSentiment for many requests: each is checked as the operation
 * checks it, and the documents of all of them are scored in the pool's
 * workers (on the event loop if a worker fails). Every answer equals the
 * operation's for its input.
 */
async function batchDetectSentimentMany(
  pool: SentimentPool,
  inputs: Record<string, unknown>[],
  signal?: AbortSignal,
): Promise<(Record<string, unknown> | AwsError)[]> {
  const answers: (Record<string, unknown> | AwsError)[] = new Array(inputs.length);
  const byLanguage = new Map<string, { texts: string[]; documents: { input: number; index: number }[] }>();
  const outputs: { ResultList: Record<string, unknown>[]; ErrorList: BatchItemError[] }[] = [];
  inputs.forEach((input, i) => {
    let texts: string[];
    let language: string;
    try {
      texts = requireTextList(input);
      language = sentimentLanguage(input);
    } catch (error) {
      answers[i] = error instanceof AwsError ? error : internalFailure();
      return;
    }
    const output = { ResultList: new Array<Record<string, unknown>>(texts.length), ErrorList: [] as BatchItemError[] };
    outputs[i] = output;
    answers[i] = output;
    const work = byLanguage.get(language) ?? { texts: [], documents: [] };
    byLanguage.set(language, work);
    texts.forEach((text, index) => {
      const problem = documentProblem(text, DOCUMENT_LIMIT_BYTES);
      if (problem) {
        output.ErrorList.push({
          Index: index,
          ErrorCode: BATCH_ERROR_CODES[problem.type],
          ErrorMessage: problem.message,
        });
      } else {
        work.texts.push(text);
        work.documents.push({ input: i, index });
      }
    });
  });
  if (byLanguage.size > 0) {
    // As the operation does: a model that cannot load fails the requests that passed their checks.
    let model: SentimentModel;
    try {
      model = sentimentModel();
    } catch (error) {
      outputs.forEach((output, i) => {
        if (output) answers[i] = error as AwsError;
      });
      return answers;
    }
    await Promise.all(
      [...byLanguage].map(([language, work]) => scoreInPool(pool, model, language, work, outputs, signal)),
    );
  }
  // Documents with errors leave holes; ResultList lists the others in order, as batchResults does.
  for (const output of outputs) if (output?.ErrorList.length) output.ResultList = output.ResultList.filter(Boolean);
  return answers;
}

async function scoreInPool(
  pool: SentimentPool,
  model: SentimentModel,
  language: string,
  { texts, documents }: { texts: string[]; documents: { input: number; index: number }[] },
  outputs: { ResultList: Record<string, unknown>[] }[],
  signal: AbortSignal | undefined,
): Promise<void> {
  if (texts.length === 0) return;
  let scored: ScoredDocuments;
  try {
    scored = await pool.detect(texts, language, signal);
  } catch (error) {
    if (signal?.aborted) throw error;
    // A worker that failed must not fail the requests: the event loop scores them the same way.
    const results = model.detectBatch(texts, language);
    scored = { labels: new Uint8Array(results.length), scores: new Float64Array(results.length * 4) };
    results.forEach(({ sentiment, scores: s }, k) => {
      scored.labels[k] = SENTIMENT_LABELS.indexOf(sentiment);
      scored.scores.set([s.Positive, s.Negative, s.Neutral, s.Mixed], k * 4);
    });
  }
  documents.forEach(({ input, index }, k) => {
    const s = scored.scores.subarray(k * 4, k * 4 + 4);
    outputs[input].ResultList[index] = {
      Index: index,
      Sentiment: SENTIMENT_LABELS[scored.labels[k]],
      SentimentScore: { Positive: s[0], Negative: s[1], Neutral: s[2], Mixed: s[3] },
    };
  });
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
