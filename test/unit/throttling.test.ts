/**
 * Throttled calls retried within a time budget: a retry is made only when its
 * wait and another try as long as the last fit before the deadline.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ThrottledError } from '../../src/ml/client.js';
import { retryingThrottled } from '../../src/ml/throttling.js';

describe('retryingThrottled', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('gives up when the wait and another try as long as the last would end past the deadline', async () => {
    // (Only the clock is faked: each try "takes" 600 ms by moving it.)
    vi.useFakeTimers({ toFake: ['Date'] });
    const deadline = Date.now() + 1000;
    let tries = 0;
    const slowThrottled = async () => {
      tries += 1;
      vi.setSystemTime(Date.now() + 600);
      throw new ThrottledError('throttled', 0);
    };
    await expect(retryingThrottled(slowThrottled, { deadline })).rejects.toBeInstanceOf(ThrottledError);
    expect(tries).toBe(1);
  });

  it('retries a quick try while there is time, and answers once the service does', async () => {
    let tries = 0;
    const answer = await retryingThrottled(
      async () => {
        tries += 1;
        if (tries < 3) throw new ThrottledError('throttled', 0);
        return 'scored';
      },
      { deadline: Date.now() + 60_000 },
    );
    expect({ answer, tries }).toEqual({ answer: 'scored', tries: 3 });
  });
});
