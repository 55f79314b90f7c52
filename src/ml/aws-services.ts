import { BatchDetectSentimentCommand, ComprehendClient, type LanguageCode } from '@aws-sdk/client-comprehend';
import { InvokeEndpointCommand, SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import { SqlError, SqlState } from '../util/errors.js';
import {
  comprehendItemError,
  everyDocumentAnswered,
  type MlServices,
  oversizeAnswer,
  RESET_CODES,
  requireEndpointName,
  SAGEMAKER_PAYLOAD_LIMIT_BYTES,
  type SentimentItem,
  ThrottledError,
} from './client.js';
import { ANSWER_LIMIT_STEP, AnswerTooLarge, answerLimit } from './sdk-answer-limit.js';

export interface AwsMlServicesOptions {
  region: string;
  /** Unset for real AWS; a URL to point the SDK clients elsewhere (another pgsage, LocalStack). */
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** How long one request may take before it fails with 58030 (as pgsage's own services client). */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;

/** Far more than BatchDetectSentiment answers for its 25 documents (a few KB). */
const COMPREHEND_ANSWER_LIMIT_BYTES = 1024 * 1024;

interface AwsSdkError extends Error {
  name: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string> };
  OriginalMessage?: string;
}

/**
 * The `aws` backend: real Amazon Comprehend and SageMaker Runtime through the
 * AWS SDK v3, with the SDK's usual credential chain unless keys are configured.
 * Errors are mapped to the same SQLSTATEs as pgsage's own services.
 */
export class AwsMlServices implements MlServices {
  private readonly comprehend: ComprehendClient;
  private readonly runtime: SageMakerRuntimeClient;

  private readonly timeoutMs: number;

  constructor(options: AwsMlServicesOptions) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const common = {
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      // Batch mode retries throttling itself, within the statement's budget.
      maxAttempts: 1,
      // Without timeouts the SDK waits on a service that never answers, or stops mid-answer, as long as the statement may run.
      requestHandler: { requestTimeout: this.timeoutMs, socketTimeout: this.timeoutMs, throwOnRequestTimeout: true },
    };
    this.comprehend = new ComprehendClient(common);
    this.runtime = new SageMakerRuntimeClient(common);
    this.comprehend.middlewareStack.add(answerLimit(COMPREHEND_ANSWER_LIMIT_BYTES), ANSWER_LIMIT_STEP);
    this.runtime.middlewareStack.add(answerLimit(SAGEMAKER_PAYLOAD_LIMIT_BYTES), ANSWER_LIMIT_STEP);
  }

  close(): void {
    this.comprehend.destroy();
    this.runtime.destroy();
  }

  async detectSentiment(
    texts: string[],
    languageCode: string,
    signal?: AbortSignal,
  ): Promise<(SentimentItem | SqlError)[]> {
    try {
      const reply = await onceMoreOnReset(() =>
        this.comprehend.send(
          new BatchDetectSentimentCommand({ TextList: texts, LanguageCode: languageCode as LanguageCode }),
          { abortSignal: signal },
        ),
      );
      const out: (SentimentItem | SqlError)[] = new Array(texts.length);
      for (const result of reply.ResultList ?? []) {
        const label = result.Sentiment ?? 'NEUTRAL';
        const key = (label[0] + label.slice(1).toLowerCase()) as 'Positive' | 'Negative' | 'Neutral' | 'Mixed';
        out[result.Index ?? 0] = { sentiment: label, confidence: result.SentimentScore?.[key] ?? 0 };
      }
      for (const failure of reply.ErrorList ?? []) {
        out[failure.Index ?? 0] = comprehendItemError(failure.ErrorCode ?? 'Error', failure.ErrorMessage ?? '');
      }
      return everyDocumentAnswered(out, texts.length);
    } catch (error) {
      if (error instanceof AnswerTooLarge) {
        throw new SqlError(SqlState.ioError, `Comprehend sent an answer larger than ${error.limitBytes} bytes`);
      }
      throw mapError('Comprehend', error, signal, this.timeoutMs);
    }
  }

  async invokeEndpoint(endpointName: string, csvBody: string, signal?: AbortSignal): Promise<string> {
    try {
      const reply = await onceMoreOnReset(() =>
        this.runtime.send(
          new InvokeEndpointCommand({
            EndpointName: requireEndpointName(endpointName),
            ContentType: 'text/csv',
            Accept: 'text/csv',
            Body: Buffer.from(csvBody),
          }),
          { abortSignal: signal },
        ),
      );
      const body = reply.Body ?? new Uint8Array();
      if (body.length > SAGEMAKER_PAYLOAD_LIMIT_BYTES) throw oversizeAnswer(endpointName);
      return Buffer.from(body).toString('utf8');
    } catch (error) {
      if (error instanceof AnswerTooLarge) throw oversizeAnswer(endpointName);
      const mapped = mapError(`SageMaker endpoint ${endpointName}`, error, signal, this.timeoutMs);
      const aws = error as AwsSdkError;
      if (aws.name === 'ModelError') {
        throw new SqlError(
          SqlState.externalRoutineException,
          `model error from endpoint ${endpointName}: ${aws.OriginalMessage ?? aws.message}`,
        );
      }
      if (aws.name === 'ValidationError' && /not found/i.test(aws.message)) {
        throw new SqlError(
          SqlState.undefinedObject,
          `SageMaker endpoint "${endpointName}" does not exist`,
          aws.message,
        );
      }
      throw mapped;
    }
  }
}

/**
 * Sends once more a request whose connection was reset, as a kept-alive one
 * the service has just closed is (maxAttempts is 1, so the SDK does not):
 * these requests change nothing, so a second one is safe.
 */
async function onceMoreOnReset<T>(send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (error) {
    if (!RESET_CODES.has((error as AwsSdkError).code ?? '')) throw error;
    return send();
  }
}

/** An SDK error's message without its advice to programmers, which means nothing to a SQL user. */
function withoutSdkAdvice(message: string): string {
  return message
    .replace(
      /\s*Deserialization error: to see the raw response, inspect the hidden field \{error\}\.\$response on this object\.?/g,
      '',
    )
    .trim();
}

function mapError(service: string, error: unknown, signal: AbortSignal | undefined, timeoutMs: number): SqlError {
  if (error instanceof SqlError) return error;
  const aws = error as AwsSdkError;
  if (signal?.aborted || aws.name === 'AbortError') {
    return new SqlError(SqlState.queryCanceled, 'canceling statement due to user request');
  }
  // (The SDK names a connection reset a TimeoutError too.)
  if (RESET_CODES.has(aws.code ?? '')) {
    return new SqlError(
      SqlState.ioError,
      `${service} closed the connection before answering`,
      withoutSdkAdvice(aws.message),
    );
  }
  if (aws.name === 'TimeoutError') {
    return new SqlError(
      SqlState.ioError,
      `${service} did not answer within ${timeoutMs} ms`,
      withoutSdkAdvice(aws.message),
    );
  }
  const status = aws.$metadata?.httpStatusCode;
  if (status === 429 || /Throttl|TooManyRequests/.test(aws.name)) {
    const retryAfter = Number(aws.$response?.headers?.['retry-after']);
    return new ThrottledError(
      `${service} throttled the request: ${aws.message}`,
      Number.isFinite(retryAfter) ? retryAfter * 1000 : undefined,
    );
  }
  if (status === undefined || status >= 500) {
    return new SqlError(SqlState.ioError, `${service} is unavailable: ${withoutSdkAdvice(aws.message)}`);
  }
  // (An answer of success the SDK could not read is the service's fault, or a proxy's, not the input's.)
  if (status < 300) {
    return new SqlError(
      SqlState.ioError,
      `${service} sent an answer that could not be read (HTTP ${status})`,
      withoutSdkAdvice(aws.message),
    );
  }
  if (
    aws.name === 'UnsupportedLanguageException' ||
    aws.name === 'TextSizeLimitExceededException' ||
    aws.name === 'InvalidRequestException'
  ) {
    return comprehendItemError(aws.name, aws.message);
  }
  return new SqlError(SqlState.invalidParameterValue, `${service} rejected the request: ${aws.message}`);
}
