import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseCsvFeatures } from '../../src/models/csv-features.js';
import { loadPredictor } from '../../src/models/registry.js';
import { xgboostFixture } from './edge.js';

export interface RemoteBehaviour {
  /** Milliseconds before each answer. */
  latencyMs?: number;
  /** Answer this many requests with 429 ThrottlingException (Retry-After: 0, or retryAfterSeconds) first. */
  throttleFirst?: number;
  /** The Retry-After of throttled answers, in seconds. */
  retryAfterSeconds?: number;
  /** Answer requests from this one on (1-based) with 424 ModelError. */
  failFrom?: number;
  /** Answer requests from this one on (1-based) with 500 InternalFailure: the service itself fails. */
  breakFrom?: number;
  /** Hold the answer to the first request until this settles (a test does something meanwhile). */
  holdFirst?: Promise<void>;
  /**
   * Answer Comprehend's BatchDetectSentiment as a broken service might: every
   * document POSITIVE, but the last one left out of both ResultList and ErrorList.
   */
  comprehendDropsLast?: boolean;
  /** Answer Comprehend with 200 and a body that is not JSON (a broken proxy's page). */
  comprehendGarbled?: boolean;
  /** Put a NUL character into every answer line (which PostgreSQL's text cannot hold). */
  nulInAnswers?: boolean;
  /** Answer an endpoint request with one line fewer than the rows it got (a broken model server). */
  dropsLastLine?: boolean;
  /** Close the connection of this many endpoint requests without an answer (a reset, as a closed keep-alive's). */
  resetFirst?: number;
  /** Milliseconds before each Comprehend answer. */
  comprehendLatencyMs?: number;
  /** Refuse an endpoint request of more rows than this with 413 (a model server with a smaller payload limit). */
  refuseOverRows?: number;
  /** Pad every answer line to about this many bytes with a field of its own (a model answering too much). */
  answerLineBytes?: number;
  /** Answer a row whose first feature is below this with a line of 7 MB (one row a model answers megabytes for). */
  hugeAnswerBelow?: number;
  /** Answer every endpoint request with more than SageMaker's 6 MB, whatever its rows. */
  answerOversize?: boolean;
  /** Answer every endpoint request with a body that never ends (1 MB chunks, up to 2 GB), until the client leaves. */
  answerEndless?: boolean;
  /** Write an endpoint's answer from its lines otherwise than a line each (default: each line, then a newline). */
  answerBody?: (lines: string[]) => string;
}

/** An endless answer's chunks, and where the server gives up on a client that reads on (answerEndless). */
const ENDLESS_CHUNK = Buffer.alloc(1 << 20, 'x');
const ENDLESS_CAP = 2 * 1024 ** 3;

/** An answer over SageMaker's 6 MB (see RemoteBehaviour.answerOversize). */
const OVERSIZE_ANSWER = Buffer.alloc(6 * 1024 * 1024 + 1024, 'x');

/**
 * A stand-in for a remote SageMaker runtime (what the `aws` backend reaches
 * through the AWS SDK): the real 60-tree XGBoost model behind an HTTP server
 * whose latency, throttling and failures a test chooses.
 */
export async function startRemoteEndpoint(behaviour: RemoteBehaviour = {}) {
  const model = await loadPredictor('xgboost', {
    fileName: 'model.tar.gz',
    bytes: readFileSync(xgboostFixture('binary_logistic.json.model.tar.gz')),
  });
  let requests = 0;
  let inFlight = 0;
  let mostInFlight = 0;
  let aborted = 0;
  let endlessBytes = 0;
  let held = false;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      requests += 1;
      const number = requests;
      if (String(req.headers['x-amz-target']).startsWith('Comprehend_20171127.')) {
        const { TextList } = JSON.parse(Buffer.concat(chunks).toString()) as { TextList: string[] };
        if (behaviour.comprehendGarbled) {
          res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
          res.end('<html>gateway page</html>');
          return;
        }
        const kept = behaviour.comprehendDropsLast ? TextList.slice(0, -1) : TextList;
        const ResultList = kept.map((_, Index) => ({
          Index,
          Sentiment: 'POSITIVE',
          SentimentScore: { Positive: 0.9, Negative: 0.05, Neutral: 0.04, Mixed: 0.01 },
        }));
        inFlight += 1;
        mostInFlight = Math.max(mostInFlight, inFlight);
        setTimeout(() => {
          inFlight -= 1;
          res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
          res.end(JSON.stringify({ ResultList, ErrorList: [] }));
        }, behaviour.comprehendLatencyMs ?? 0);
        return;
      }
      if (behaviour.resetFirst && number <= behaviour.resetFirst) {
        req.socket.resetAndDestroy();
        return;
      }
      if (behaviour.throttleFirst && number <= behaviour.throttleFirst) {
        res.writeHead(429, {
          'content-type': 'application/json',
          'x-amzn-errortype': 'ThrottlingException',
          'retry-after': String(behaviour.retryAfterSeconds ?? 0),
        });
        res.end(JSON.stringify({ message: 'Rate exceeded' }));
        return;
      }
      if (behaviour.breakFrom && number >= behaviour.breakFrom) {
        res.writeHead(500, { 'content-type': 'application/json', 'x-amzn-errortype': 'InternalFailure' });
        res.end(JSON.stringify({ message: 'An internal error occurred' }));
        return;
      }
      if (behaviour.failFrom && number >= behaviour.failFrom) {
        res.writeHead(424, { 'content-type': 'application/json', 'x-amzn-errortype': 'ModelError' });
        res.end(
          JSON.stringify({
            Message: 'Received client error (400)',
            OriginalStatusCode: 400,
            OriginalMessage: 'row 3: could not convert string to float',
          }),
        );
        return;
      }
      const features = parseCsvFeatures(Buffer.concat(chunks));
      if (behaviour.refuseOverRows !== undefined && features.rows > behaviour.refuseOverRows) {
        res.writeHead(413, { 'content-type': 'application/json', 'x-amzn-errortype': 'ValidationError' });
        res.end(JSON.stringify({ message: `payload of ${features.rows} rows is over the limit` }));
        return;
      }
      const predicted = (await model.predict(features)).csvLines();
      const answered = behaviour.dropsLastLine ? predicted.slice(0, -1) : predicted;
      const padding = behaviour.answerLineBytes ? `,${'x'.repeat(behaviour.answerLineBytes)}` : '';
      const huge = (row: number) =>
        behaviour.hugeAnswerBelow !== undefined && features.data[row * features.cols] < behaviour.hugeAnswerBelow;
      const lines = answered.map(
        (line, row) =>
          `${line}${behaviour.nulInAnswers ? '\u0000' : ''}${huge(row) ? `,${'x'.repeat(7 << 20)}` : padding}`,
      );
      inFlight += 1;
      mostInFlight = Math.max(mostInFlight, inFlight);
      if (number === 1 && behaviour.holdFirst) {
        held = true;
        await behaviour.holdFirst;
      }
      const timer = setTimeout(() => {
        if (behaviour.answerEndless) {
          // (Still in flight until the client closes the connection: see 'close' below.)
          res.writeHead(200, { 'content-type': 'text/csv' });
          const pump = () => {
            while (!res.destroyed && endlessBytes < ENDLESS_CAP) {
              endlessBytes += ENDLESS_CHUNK.length;
              if (!res.write(ENDLESS_CHUNK)) {
                res.once('drain', pump);
                return;
              }
            }
          };
          pump();
          return;
        }
        inFlight -= 1;
        res.writeHead(200, { 'content-type': 'text/csv' });
        if (behaviour.answerOversize) res.end(OVERSIZE_ANSWER);
        else res.end(behaviour.answerBody ? behaviour.answerBody(lines) : `${lines.join('\n')}\n`);
      }, behaviour.latencyMs ?? 0);
      res.on('close', () => {
        if (!res.writableEnded) {
          clearTimeout(timer);
          inFlight -= 1;
          aborted += 1;
        }
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get requests() {
      return requests;
    },
    get inFlight() {
      return inFlight;
    },
    /** The most requests it has had in flight at once. */
    get mostInFlight() {
      return mostInFlight;
    },
    /** The first request is being held (see holdFirst). */
    get holding() {
      return held;
    },
    get aborted() {
      return aborted;
    },
    /** Bytes of endless answers written so far (see answerEndless). */
    get endlessBytes() {
      return endlessBytes;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
