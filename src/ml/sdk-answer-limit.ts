import { pipeline, Readable, Transform } from 'node:stream';

/** An answer's body passed `AnswerTooLarge.limitBytes` while it came: the rest was not read. */
export class AnswerTooLarge extends Error {
  constructor(readonly limitBytes: number) {
    super(`the answer is larger than ${limitBytes} bytes`);
    this.name = 'AnswerTooLarge';
  }
}

/** Where answerLimit goes in a client's middleware stack: right after the HTTP handler, before the deserializer. */
export const ANSWER_LIMIT_STEP = { step: 'deserialize', priority: 'low', name: 'pgsageAnswerLimit' } as const;

/**
 * A middleware (at ANSWER_LIMIT_STEP) that has an AWS SDK client stop reading an answer once it passes
 * `limitBytes`, as it arrives: the SDK reads a body whole before its deserializer looks at it, and a service (or
 * anything at the endpoint URL) that sends gigabytes would fill the gateway's memory, or past 4 GiB crash it. The
 * socket is closed at the limit, and the client's send rejects with AnswerTooLarge (the SDK may add its fields).
 */
export function answerLimit(limitBytes: number) {
  return <A, R extends { response: unknown }>(next: (args: A) => Promise<R>) =>
    async (args: A): Promise<R> => {
      const result = await next(args);
      const response = result.response as { body?: unknown; headers?: Record<string, string | undefined> };
      const body = response.body;
      if (!(body instanceof Readable)) return result;
      if (Number(response.headers?.['content-length'] ?? 0) > limitBytes) {
        body.destroy();
        throw new AnswerTooLarge(limitBytes);
      }
      let seen = 0;
      const limited = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          seen += chunk.length;
          done(seen > limitBytes ? new AnswerTooLarge(limitBytes) : null, chunk);
        },
      });
      // (pipeline destroys the body, and so its socket, when the limit fails the transform.)
      pipeline(body, limited, () => undefined);
      response.body = limited;
      return result;
    };
}
