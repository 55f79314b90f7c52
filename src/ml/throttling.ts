import { ThrottledError } from './client.js';

/** A statement's time budget for throttled retries when statement_timeout is 0 (none). */
export const UNTIMED_STATEMENT_BUDGET_MS = 15 * 60_000;

/** Throttled calls of one request retried at most this often (up to about a minute of waiting in all). */
const MAX_THROTTLED_RETRIES = 20;

/**
 * Runs `attempt`, and again while the service throttles it: exponential
 * backoff with jitter (100 ms doubling, at most 5 s), never shorter than the
 * service's Retry-After (a 0 does not make the retries immediate), at most
 * MAX_THROTTLED_RETRIES times, and not where the wait and another try as
 * long as the last would end past `deadline`, nor after an abort. The last
 * throttling error is thrown when it gives up.
 */
export async function retryingThrottled<T>(
  attempt: () => Promise<T>,
  { signal, deadline, onRetry }: { signal?: AbortSignal; deadline?: number; onRetry?: () => void },
): Promise<T> {
  for (let tries = 0; ; tries++) {
    const started = Date.now();
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof ThrottledError)) throw error;
      const exponential = Math.min(5000, 100 * 2 ** tries) * (0.5 + Math.random() / 2);
      const backoff = Math.max(error.retryAfterMs ?? 0, exponential);
      // (Time for the wait and for another try as long as this one: a try still out at the deadline would end
      // in statement_timeout's cancel instead of the throttling error.)
      const late = deadline !== undefined && Date.now() + backoff + (Date.now() - started) > deadline;
      if (tries >= MAX_THROTTLED_RETRIES || late || signal?.aborted) throw error;
      onRetry?.();
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, backoff);
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  }
}
