import { afterAll, describe, expect, it } from 'vitest';
import { loadSentimentModel } from '../../src/models/sentiment/index.js';
import { comprehendOperations } from '../../src/services/comprehend/operations.js';
import { SentimentPool } from '../../src/services/comprehend/sentiment-pool.js';
import { SENTIMENT_LABELS } from '../../src/services/comprehend/sentiment-protocol.js';

const documents = (count: number) =>
  Array.from({ length: count }, (_, i) => `review ${i}: ${i % 3 ? 'a dull, slow film' : 'simply wonderful'}`);

describe('SentimentPool', () => {
  const pool = new SentimentPool(1);
  afterAll(() => pool.close());

  it('answers as the model does on the event loop', async () => {
    const texts = documents(600);
    const scored = await pool.detect(texts, 'en');
    const expected = loadSentimentModel().detectBatch(texts, 'en');
    expected.forEach((result, i) => {
      expect(SENTIMENT_LABELS[scored.labels[i]]).toBe(result.sentiment);
      expect(Array.from(scored.scores.subarray(i * 4, i * 4 + 4))).toEqual([
        result.scores.Positive,
        result.scores.Negative,
        result.scores.Neutral,
        result.scores.Mixed,
      ]);
    });
  });

  it('serves calls in turn, so a small call does not wait for a large one', async () => {
    const order: string[] = [];
    const large = pool.detect(documents(20_000), 'en').then(() => order.push('large'));
    const small = pool.detect(documents(10), 'en').then(() => order.push('small'));
    await Promise.all([large, small]);
    expect(order).toEqual(['small', 'large']);
  });

  it('stops a call whose signal aborts, and stays usable', async () => {
    const controller = new AbortController();
    const call = pool.detect(documents(50_000), 'en', controller.signal);
    controller.abort(new Error('statement canceled'));
    await expect(call).rejects.toThrow('statement canceled');
    const after = await pool.detect(documents(5), 'en');
    expect(after.labels).toHaveLength(5);
  });

  it('settles running and waiting calls when it closes', async () => {
    const closing = new SentimentPool(1);
    const outcomes = Promise.allSettled([
      closing.detect(documents(5_000), 'en'),
      closing.detect(documents(5_000), 'en'),
    ]);
    await closing.close();
    for (const outcome of await outcomes) {
      expect(outcome.status).toBe('rejected');
      expect(String((outcome as PromiseRejectedResult).reason)).toMatch(/shut down/);
    }
  });
});

describe('BatchDetectSentiment for many requests at once', () => {
  it('answers on the event loop, as one by one, when the workers cannot', async () => {
    const closed = new SentimentPool(1);
    await closed.close();
    const operation = comprehendOperations(closed).BatchDetectSentiment;
    const inputs = [
      { TextList: documents(25), LanguageCode: 'en' },
      { TextList: ['', 'x'.repeat(5001), 'fine'], LanguageCode: 'en' },
      { TextList: ['hola'], LanguageCode: 'xx' },
    ];
    const many = await operation.many!(inputs);
    const oneByOne = inputs.map((input) => {
      try {
        return operation(input, {} as never);
      } catch (error) {
        return error;
      }
    });
    expect(many).toEqual(oneByOne);
  });
});
