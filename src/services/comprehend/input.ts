/**
 * Request validation for the Comprehend operations, with the exception names
 * and limits Amazon Comprehend uses, so callers see the same failures here as
 * against the real service.
 */
import { AwsError } from '../errors.js';

/** DetectSentiment and every document of a Batch* call: at most this many UTF-8 bytes. */
export const DOCUMENT_LIMIT_BYTES = 5000;
/** DetectDominantLanguage alone accepts longer text. */
export const DOMINANT_LANGUAGE_LIMIT_BYTES = 100_000;
/** Documents per Batch* request. */
export const BATCH_LIMIT = 25;

/** A 400 whose `__type` the Comprehend SDK maps to its modeled exception of that name. */
export function comprehendError(type: string, message: string, status = 400): AwsError {
  return new AwsError(type, message, status);
}

/** What Comprehend answers for a missing or mistyped member (the service-side model validation). */
function memberError(member: string, constraint: string): AwsError {
  return comprehendError('ValidationException', `1 validation error detected: Value at '${member}' ${constraint}`);
}

export function requireText(input: Record<string, unknown>, member = 'Text'): string {
  const text = input[member];
  if (text === undefined || text === null)
    throw memberError(lowerFirst(member), 'failed to satisfy constraint: Member must not be null');
  if (typeof text !== 'string') throw comprehendError('SerializationException', `${member} must be a string`);
  return text;
}

export function requireTextList(input: Record<string, unknown>): string[] {
  const list = input.TextList;
  if (list === undefined || list === null)
    throw memberError('textList', 'failed to satisfy constraint: Member must not be null');
  if (!Array.isArray(list) || list.some((item) => typeof item !== 'string')) {
    throw comprehendError('SerializationException', 'TextList must be a list of strings');
  }
  if (list.length === 0) {
    throw memberError('textList', 'failed to satisfy constraint: Member must have length greater than or equal to 1');
  }
  if (list.length > BATCH_LIMIT) {
    throw comprehendError(
      'BatchSizeLimitExceededException',
      `The number of documents in the request exceeds the limit of ${BATCH_LIMIT}: this request has ${list.length}. Split it into batches of ${BATCH_LIMIT} or fewer.`,
    );
  }
  return list as string[];
}

export function requireLanguageCode(input: Record<string, unknown>): string {
  const code = input.LanguageCode;
  if (code === undefined || code === null)
    throw memberError('languageCode', 'failed to satisfy constraint: Member must not be null');
  if (typeof code !== 'string') throw comprehendError('SerializationException', 'LanguageCode must be a string');
  return code;
}

/** Why one document cannot be scored, or undefined when it can. */
export type DocumentProblem = { type: 'InvalidRequestException' | 'TextSizeLimitExceededException'; message: string };

export function documentProblem(text: string, limitBytes: number): DocumentProblem | undefined {
  if (text.length === 0) {
    return { type: 'InvalidRequestException', message: 'Invalid request: the input text is empty.' };
  }
  // A JS string's UTF-8 size is at most 3 bytes per UTF-16 unit; skip the count when it cannot exceed the limit.
  if (text.length * 3 > limitBytes) {
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > limitBytes) {
      return {
        type: 'TextSizeLimitExceededException',
        message: `Input text size exceeds limit. Max length of request text allowed is ${limitBytes} bytes while in this request the text size is ${bytes} bytes`,
      };
    }
  }
  return undefined;
}

/** The whole request fails with the document's problem (single-document operations). */
export function checkDocument(text: string, limitBytes: number): void {
  const problem = documentProblem(text, limitBytes);
  if (problem) throw comprehendError(problem.type, problem.message);
}

/**
 * BatchItemError.ErrorCode for a document-level problem. The API reference only
 * says "a string"; these upper-snake codes are the ones Comprehend is seen to return.
 */
export const BATCH_ERROR_CODES: Record<DocumentProblem['type'] | 'InternalServerException', string> = {
  InvalidRequestException: 'INVALID_REQUEST',
  TextSizeLimitExceededException: 'TEXT_SIZE_LIMIT_EXCEEDED',
  InternalServerException: 'INTERNAL_SERVER_ERROR',
};

function lowerFirst(name: string): string {
  return name[0].toLowerCase() + name.slice(1);
}
