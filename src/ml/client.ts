import http from 'node:http';
import https from 'node:https';
import type { FeatureMatrix } from '../models/types.js';
import { NAME_MAX_LENGTH, validName } from '../services/sagemaker/names.js';
import { SqlError, SqlState } from '../util/errors.js';

export interface SentimentItem {
  sentiment: string;
  confidence: number;
}

/** Comprehend accepts at most this many documents per BatchDetectSentiment. */
export const COMPREHEND_BATCH_LIMIT = 25;
/** Comprehend's per-document limit for sentiment, in UTF-8 bytes. */
export const COMPREHEND_TEXT_LIMIT_BYTES = 5000;
/** SageMaker's InvokeEndpoint payload limit. */
export const SAGEMAKER_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024;

/**
 * The ML services as the gateway calls them, for both the per-row bridge and
 * batch mode. Failures are SqlErrors: they end up in front of a SQL user.
 */
export interface MlServices {
  /** One BatchDetectSentiment (≤ 25 texts); an entry is a SqlError when that document failed. */
  detectSentiment(texts: string[], languageCode: string, signal?: AbortSignal): Promise<(SentimentItem | SqlError)[]>;
  /** One InvokeEndpoint with a CSV body; resolves with the response body. */
  invokeEndpoint(endpointName: string, csvBody: string, signal?: AbortSignal): Promise<string>;
  /**
   * The same InvokeEndpoint with the CSV rows given as numbers: only where the
   * services live in this process, so that batch mode need not write CSV text
   * for the endpoint to parse again. Answers exactly as `invokeEndpoint` would
   * for the CSV text of those numbers.
   */
  invokeEndpointRows?(endpointName: string, rows: FeatureMatrix, signal?: AbortSignal): Promise<string>;
}

export interface HttpMlServicesOptions {
  /** Base URL of the service edge, e.g. http://127.0.0.1:4566. */
  endpoint: string;
  /** Per-request timeout. */
  timeoutMs?: number;
  /** Adds authentication headers (SigV4) to a request, when the edge enforces it. */
  sign?: (request: { method: string; path: string; headers: Record<string, string>; body: Buffer }) => void;
  /** TLS options for an https:// endpoint (e.g. the edge's pinned certificate). */
  tls?: https.AgentOptions;
  /**
   * Carries requests without HTTP when the services live in this process
   * (ServiceEdge.invokeInProcess): same routing and error shapes, no socket.
   */
  inProcess?: (
    method: string,
    path: string,
    headers: Record<string, string>,
    body: Buffer,
    featureRows?: FeatureMatrix,
  ) => Promise<InProcessReply>;
  /** In-process JSON 1.1 operations, without encoding the request and answer as JSON text. */
  inProcessJson?: (target: string, input: Record<string, unknown>) => Promise<InProcessJsonReply>;
}

export interface InProcessJsonReply {
  status: number;
  headers: Record<string, string>;
  payload: Record<string, unknown>;
}

export interface InProcessReply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

interface HttpReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** Calls pgsage's own service edge over HTTP with kept-alive connections. */
export class HttpMlServices implements MlServices {
  private readonly agent: http.Agent;
  private readonly url: URL;

  /** Only when the services live in this process (see MlServices.invokeEndpointRows). */
  readonly invokeEndpointRows?: MlServices['invokeEndpointRows'];

  constructor(private readonly options: HttpMlServicesOptions) {
    const inProcess = options.inProcess;
    if (inProcess) {
      this.invokeEndpointRows = async (endpointName, rows, signal) => {
        if (signal?.aborted) throw canceled(signal);
        return endpointAnswer(
          endpointName,
          await inProcess('POST', invocationsPath(endpointName), CSV_HEADERS, EMPTY, rows),
        );
      };
    }
    this.url = new URL(options.endpoint);
    this.agent =
      this.url.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, maxSockets: 64, ...options.tls })
        : new http.Agent({ keepAlive: true, maxSockets: 64 });
  }

  close(): void {
    this.agent.destroy();
  }

  async detectSentiment(
    texts: string[],
    languageCode: string,
    signal?: AbortSignal,
  ): Promise<(SentimentItem | SqlError)[]> {
    const { reply, payload } = await this.json(
      'Comprehend_20171127.BatchDetectSentiment',
      { TextList: texts, LanguageCode: languageCode },
      signal,
    );
    if (reply.status !== 200) throw comprehendError(reply, payload);
    const out: (SentimentItem | SqlError)[] = new Array(texts.length);
    for (const result of (payload.ResultList ?? []) as {
      Index: number;
      Sentiment: string;
      SentimentScore: Record<string, number>;
    }[]) {
      const key = result.Sentiment[0] + result.Sentiment.slice(1).toLowerCase();
      out[result.Index] = { sentiment: result.Sentiment, confidence: result.SentimentScore[key] };
    }
    for (const failure of (payload.ErrorList ?? []) as { Index: number; ErrorCode: string; ErrorMessage: string }[]) {
      out[failure.Index] = comprehendItemError(failure.ErrorCode, failure.ErrorMessage);
    }
    return everyDocumentAnswered(out, texts.length);
  }

  async invokeEndpoint(endpointName: string, csvBody: string, signal?: AbortSignal): Promise<string> {
    const limit = { bytes: SAGEMAKER_PAYLOAD_LIMIT_BYTES, error: () => oversizeAnswer(endpointName) };
    return endpointAnswer(
      endpointName,
      await this.post(invocationsPath(endpointName), CSV_HEADERS, Buffer.from(csvBody), signal, limit),
    );
  }

  /** A JSON 1.1 operation, in process when the services live here, else over HTTP. */
  private async json(
    target: string,
    input: Record<string, unknown>,
    signal: AbortSignal | undefined,
  ): Promise<{ reply: HttpReply; payload: Record<string, unknown> }> {
    if (this.options.inProcessJson) {
      if (signal?.aborted) throw canceled(signal);
      const answer = await this.options.inProcessJson(target, input);
      return {
        reply: { status: answer.status, headers: answer.headers, body: Buffer.alloc(0) },
        payload: answer.payload,
      };
    }
    const reply = await this.post(
      '/',
      { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': target },
      Buffer.from(JSON.stringify(input)),
      signal,
    );
    return { reply, payload: parseJson(reply.body) };
  }

  private async post(
    path: string,
    headers: Record<string, string>,
    body: Buffer,
    signal: AbortSignal | undefined,
    limit?: AnswerLimit,
  ): Promise<HttpReply> {
    if (this.options.inProcess) {
      if (signal?.aborted) throw canceled(signal);
      return this.options.inProcess('POST', path, headers, body);
    }
    try {
      return await this.postOnce(path, headers, body, signal, limit);
    } catch (error) {
      // A kept-alive connection the service closed as the request went out (its idle timeout): once more, on a
      // new one (nothing was answered, and scoring changes nothing).
      if (!(error instanceof StaleConnection)) throw error;
      return this.postOnce(path, headers, body, signal, limit).catch((again: unknown) => {
        throw again instanceof StaleConnection ? unavailable(this.url, again.reset) : again;
      });
    }
  }

  private postOnce(
    path: string,
    headers: Record<string, string>,
    body: Buffer,
    signal: AbortSignal | undefined,
    limit?: AnswerLimit,
  ): Promise<HttpReply> {
    const allHeaders: Record<string, string> = { ...headers, 'content-length': String(body.length) };
    this.options.sign?.({ method: 'POST', path, headers: allHeaders, body });
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(canceled(signal));
        return;
      }
      const request = (this.url.protocol === 'https:' ? https : http).request(
        {
          host: this.url.hostname,
          port: this.url.port,
          method: 'POST',
          path,
          headers: allHeaders,
          agent: this.agent,
          timeout: this.options.timeoutMs ?? 60_000,
        },
        (response) => {
          const chunks: Buffer[] = [];
          let received = 0;
          response.on('data', (chunk: Buffer) => {
            received += chunk.length;
            // (Stopped unread: an answer of hundreds of megabytes held the event loop, and every session, for seconds.)
            if (limit && received > limit.bytes) {
              reject(limit.error());
              request.destroy();
              return;
            }
            chunks.push(chunk);
          });
          response.on('end', () =>
            resolve({ status: response.statusCode ?? 500, headers: response.headers, body: Buffer.concat(chunks) }),
          );
          response.on('error', (error) => reject(unavailable(this.url, error)));
        },
      );
      const onAbort = () => request.destroy(canceled(signal!));
      signal?.addEventListener('abort', onAbort, { once: true });
      request.on('close', () => signal?.removeEventListener('abort', onAbort));
      request.on('timeout', () =>
        request.destroy(
          new SqlError(
            SqlState.ioError,
            `the ML service at ${this.url.host} did not answer within ${this.options.timeoutMs ?? 60_000} ms`,
          ),
        ),
      );
      request.on('error', (error: NodeJS.ErrnoException) => {
        if (error instanceof SqlError) reject(error);
        else if (request.reusedSocket && RESET_CODES.has(error.code ?? '')) reject(new StaleConnection(error));
        else reject(unavailable(this.url, error));
      });
      request.end(body);
    });
  }
}

const CSV_HEADERS = { 'content-type': 'text/csv', accept: 'text/csv' };
const EMPTY = Buffer.alloc(0);
const invocationsPath = (endpointName: string) =>
  `/endpoints/${encodeURIComponent(requireEndpointName(endpointName))}/invocations`;

/**
 * An empty endpoint name is refused before any request, with a message that
 * says so (SageMaker's is a 404); a name no endpoint can have is one that does
 * not exist, said without a request and without repeating all of a long one.
 */
export function requireEndpointName(endpointName: string): string {
  if (endpointName === '') {
    throw new SqlError(SqlState.invalidParameterValue, 'endpoint_name must not be empty');
  }
  if (endpointName.length > NAME_MAX_LENGTH || !validName(endpointName)) {
    // (A long one is cut where no name could go on.)
    const long = endpointName.length > NAME_MAX_LENGTH;
    const shown = long ? `${endpointName.slice(0, NAME_MAX_LENGTH)}…` : endpointName;
    throw new SqlError(
      SqlState.undefinedObject,
      `SageMaker endpoint "${shown}" does not exist`,
      `No endpoint can be named so: a SageMaker endpoint name is 1 to 63 letters, digits and hyphens, beginning and ending with a letter or digit${long ? ` (this one has ${endpointName.length} characters)` : ''}.`,
    );
  }
  return endpointName;
}

/** An InvokeEndpoint reply: the body of a 200, else its error as SQL sees it. */
function endpointAnswer(endpointName: string, reply: HttpReply): string {
  if (reply.status === 200) {
    if (reply.body.length > SAGEMAKER_PAYLOAD_LIMIT_BYTES) throw oversizeAnswer(endpointName);
    return reply.body.toString('utf8');
  }
  throw sagemakerError(endpointName, reply, parseJson(reply.body));
}

/** Refuses an answer larger than SageMaker gives (see AnswerLimit). */
interface AnswerLimit {
  bytes: number;
  error: () => SqlError;
}

/** An endpoint's answer over SageMaker's 6 MB (see oversizeAnswer). */
export class OversizeAnswerError extends SqlError {}

/** SageMaker's InvokeEndpoint answers at most 6 MB; an endpoint answering more is refused so. */
export function oversizeAnswer(endpointName: string): SqlError {
  return new OversizeAnswerError(
    SqlState.programLimitExceeded,
    `endpoint ${endpointName} answered more than ${SAGEMAKER_PAYLOAD_LIMIT_BYTES} bytes, the most SageMaker answers to one request (6 MB)`,
  );
}

function canceled(signal: AbortSignal): SqlError {
  const reason = signal.reason instanceof Error ? signal.reason.message : 'canceling statement due to user request';
  return new SqlError(SqlState.queryCanceled, reason);
}

/** The errors of a connection the other side closed (see StaleConnection). */
export const RESET_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE']);

/** A request on a reused keep-alive connection that the service had closed: sent again once (see post). */
class StaleConnection extends Error {
  constructor(readonly reset: Error) {
    super(reset.message);
  }
}

function unavailable(url: URL, error: Error): SqlError {
  return new SqlError(
    SqlState.ioError,
    `the ML service at ${url.host} is unavailable: ${error.message}`,
    undefined,
    'Check that pgsage is running (pgsage up) and that the service edge port is reachable.',
  );
}

function parseJson(body: Buffer): Record<string, unknown> {
  try {
    return JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  } catch {
    return { message: body.toString('utf8').slice(0, 500) };
  }
}

function errorType(reply: HttpReply, payload: Record<string, unknown>): string {
  const header = reply.headers['x-amzn-errortype'];
  const raw = (Array.isArray(header) ? header[0] : header) ?? String(payload.__type ?? payload.code ?? 'Error');
  return raw.split(':')[0].split('#').pop() ?? raw;
}

function messageOf(payload: Record<string, unknown>): string {
  return String(payload.message ?? payload.Message ?? 'no message');
}

/**
 * A BatchDetectSentiment reply with a result or an error for each document
 * sent, at its index; otherwise the service is broken, and the call fails.
 */
export function everyDocumentAnswered(
  out: (SentimentItem | SqlError | undefined)[],
  sent: number,
): (SentimentItem | SqlError)[] {
  let answered = 0;
  for (let i = 0; i < sent; i++) if (out[i] !== undefined) answered += 1;
  if (answered !== sent || out.length !== sent) {
    throw new SqlError(
      SqlState.ioError,
      `Comprehend BatchDetectSentiment answered ${answered} of ${sent} documents${out.length > sent ? ', and documents it was not sent' : ''}`,
    );
  }
  return out as (SentimentItem | SqlError)[];
}

/** Maps a Comprehend error to the SQLSTATE a SQL user sees. */
export function comprehendItemError(type: string, message: string): SqlError {
  switch (type) {
    case 'UnsupportedLanguageException':
    case 'InvalidRequestException':
    case 'ValidationException':
    case 'INVALID_REQUEST':
      return new SqlError(SqlState.invalidParameterValue, message);
    // BatchDetectSentiment reports per-document failures with these ErrorCodes.
    case 'TextSizeLimitExceededException':
    case 'TEXT_SIZE_LIMIT_EXCEEDED':
      return new SqlError(SqlState.stringDataRightTruncation, message);
    default:
      return new SqlError(SqlState.externalRoutineException, `Comprehend ${type}: ${message}`);
  }
}

function comprehendError(reply: HttpReply, payload: Record<string, unknown>): SqlError {
  const type = errorType(reply, payload);
  if (reply.status === 429 || type === 'ThrottlingException' || type === 'TooManyRequestsException') {
    return new ThrottledError(`Comprehend throttled the request: ${messageOf(payload)}`, retryAfter(reply));
  }
  if (reply.status >= 500) return new SqlError(SqlState.ioError, `Comprehend ${type}: ${messageOf(payload)}`);
  return comprehendItemError(type, messageOf(payload));
}

function sagemakerError(endpoint: string, reply: HttpReply, payload: Record<string, unknown>): SqlError {
  const type = errorType(reply, payload);
  const message = messageOf(payload);
  if (reply.status === 429 || type === 'ThrottlingException') {
    return new ThrottledError(`SageMaker endpoint ${endpoint} throttled the request: ${message}`, retryAfter(reply));
  }
  if (type === 'ModelError') {
    const original = payload.OriginalMessage ? String(payload.OriginalMessage) : message;
    return new SqlError(SqlState.externalRoutineException, `model error from endpoint ${endpoint}: ${original}`);
  }
  if (type === 'ValidationError' && /not found/i.test(message)) {
    return new SqlError(
      SqlState.undefinedObject,
      `SageMaker endpoint "${endpoint}" does not exist`,
      message,
      'List endpoints with: pgsage endpoint list',
    );
  }
  if (reply.status >= 500 || type === 'ServiceUnavailable' || type === 'InternalFailure') {
    return new SqlError(SqlState.ioError, `SageMaker endpoint ${endpoint} is unavailable: ${message}`);
  }
  return new SqlError(SqlState.invalidParameterValue, `SageMaker rejected the request to ${endpoint}: ${message}`);
}

function retryAfter(reply: HttpReply): number | undefined {
  const value = reply.headers['retry-after'];
  const seconds = Number(Array.isArray(value) ? value[0] : value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

/** The service asked us to slow down; batch mode retries these with backoff. */
export class ThrottledError extends SqlError {
  constructor(
    message: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(SqlState.ioError, message);
  }
}
