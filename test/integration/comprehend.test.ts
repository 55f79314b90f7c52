/**
 * The Comprehend operations through the real @aws-sdk/client-comprehend against
 * a real edge and the bundled models.
 */
import {
  BatchDetectDominantLanguageCommand,
  BatchDetectSentimentCommand,
  BatchSizeLimitExceededException,
  ComprehendClient,
  DetectDominantLanguageCommand,
  DetectSentimentCommand,
  InvalidRequestException,
  type LanguageCode,
  type SentimentScore,
  TextSizeLimitExceededException,
  UnsupportedLanguageException,
} from '@aws-sdk/client-comprehend';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SENTIMENT_LANGUAGES } from '../../src/models/sentiment/index.js';
import { sdkConfig, startTestEdge, type TestEdge } from '../support/edge.js';

let edge: TestEdge;
let client: ComprehendClient;

beforeAll(async () => {
  edge = await startTestEdge();
  client = new ComprehendClient(sdkConfig(edge));
});

afterAll(async () => {
  client?.destroy();
  await edge?.close();
});

async function failure(promise: Promise<unknown>) {
  try {
    await promise;
  } catch (error) {
    return error as Error & { $metadata: { httpStatusCode?: number } };
  }
  throw new Error('the call succeeded');
}

function sentiment(Text: string, LanguageCode: string) {
  return client.send(new DetectSentimentCommand({ Text, LanguageCode: LanguageCode as LanguageCode }));
}

function expectScores(score: SentimentScore | undefined): void {
  expect(Object.keys(score ?? {}).sort()).toEqual(['Mixed', 'Negative', 'Neutral', 'Positive']);
  const values = Object.values(score ?? {}) as number[];
  for (const value of values) expect(value).toBeGreaterThanOrEqual(0);
  expect(values.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
}

describe('DetectSentiment', () => {
  it('finds positive and negative opinions, with scores that sum to 1', async () => {
    const good = await sentiment('I absolutely love this product, it works wonderfully and I am very happy!', 'en');
    expect(good.Sentiment).toBe('POSITIVE');
    expectScores(good.SentimentScore);
    expect(good.SentimentScore?.Positive).toBeGreaterThan(0.5);

    const bad = await sentiment(
      'This was a terrible experience. The product broke after a day and support was useless.',
      'en',
    );
    expect(bad.Sentiment).toBe('NEGATIVE');
    expectScores(bad.SentimentScore);
  });

  it('works in every language the bundled model supports', async () => {
    const texts: Record<string, string> = {
      es: 'Me encanta este producto, es excelente y funciona muy bien.',
      fr: "J'adore ce produit, il est excellent et fonctionne très bien.",
      de: 'Ich liebe dieses Produkt, es ist ausgezeichnet und funktioniert sehr gut.',
      it: 'Adoro questo prodotto, è eccellente e funziona molto bene.',
      pt: 'Eu adoro este produto, é excelente e funciona muito bem.',
    };
    for (const [language, text] of Object.entries(texts)) {
      const result = await sentiment(text, language);
      expect(result.Sentiment, language).toBe('POSITIVE');
      expectScores(result.SentimentScore);
    }
  });

  it('refuses Comprehend languages the model does not know, listing the supported codes', async () => {
    for (const language of ['ja', 'zh-TW', 'ar', 'xx']) {
      const error = await failure(sentiment('テキスト', language));
      expect(error).toBeInstanceOf(UnsupportedLanguageException);
      expect(error.$metadata.httpStatusCode).toBe(400);
      expect(error.message).toContain(`'${language}'`);
      expect(error.message).toContain(SENTIMENT_LANGUAGES.join(', '));
    }
  });

  it('counts the 5,000-byte limit in UTF-8 bytes, not characters', async () => {
    const atLimit = `${'é'.repeat(2499)}ab`; // 4,998 + 2 bytes
    expect(Buffer.byteLength(atLimit)).toBe(5000);
    expectScores((await sentiment(atLimit, 'fr')).SentimentScore);

    const over = 'é'.repeat(2501); // 2,501 characters, 5,002 bytes
    const error = await failure(sentiment(over, 'fr'));
    expect(error).toBeInstanceOf(TextSizeLimitExceededException);
    expect(error.message).toMatch(/allowed is 5000 bytes while in this request the text size is 5002 bytes/);
  });

  it('refuses empty text with InvalidRequestException', async () => {
    const error = await failure(sentiment('', 'en'));
    expect(error).toBeInstanceOf(InvalidRequestException);
  });
});

describe('BatchDetectSentiment', () => {
  const texts = [
    'I love it, best purchase of the year!',
    'Awful. It broke immediately and I want my money back.',
    'The package arrived on Tuesday.',
  ];

  it('answers each document by index, exactly as DetectSentiment does', async () => {
    const batch = await client.send(new BatchDetectSentimentCommand({ TextList: texts, LanguageCode: 'en' }));
    expect(batch.ErrorList).toEqual([]);
    expect(batch.ResultList?.map((r) => r.Index)).toEqual([0, 1, 2]);
    for (const [i, text] of texts.entries()) {
      const single = await sentiment(text, 'en');
      expect(batch.ResultList?.[i].Sentiment).toBe(single.Sentiment);
      expect(batch.ResultList?.[i].SentimentScore).toEqual(single.SentimentScore);
    }
    expect(batch.ResultList?.[0].Sentiment).toBe('POSITIVE');
    expect(batch.ResultList?.[1].Sentiment).toBe('NEGATIVE');
  });

  it('accepts 25 documents and refuses 26 with BatchSizeLimitExceededException', async () => {
    const full = Array.from({ length: 25 }, (_, i) => `${texts[i % 3]} (${i})`);
    const batch = await client.send(new BatchDetectSentimentCommand({ TextList: full, LanguageCode: 'en' }));
    expect(batch.ResultList).toHaveLength(25);
    const error = await failure(
      client.send(new BatchDetectSentimentCommand({ TextList: [...full, 'one more'], LanguageCode: 'en' })),
    );
    expect(error).toBeInstanceOf(BatchSizeLimitExceededException);
  });

  it('reports an oversize or empty document in ErrorList and scores the others', async () => {
    const batch = await client.send(
      new BatchDetectSentimentCommand({ TextList: [texts[0], 'x'.repeat(5001), texts[1], ''], LanguageCode: 'en' }),
    );
    expect(batch.ResultList?.map((r) => r.Index)).toEqual([0, 2]);
    expect(batch.ErrorList).toEqual([
      { Index: 1, ErrorCode: 'TEXT_SIZE_LIMIT_EXCEEDED', ErrorMessage: expect.stringMatching(/5001 bytes/) },
      { Index: 3, ErrorCode: 'INVALID_REQUEST', ErrorMessage: expect.stringMatching(/empty/) },
    ]);
  });

  it('refuses the whole batch for an unsupported language', async () => {
    const error = await failure(client.send(new BatchDetectSentimentCommand({ TextList: texts, LanguageCode: 'ko' })));
    expect(error).toBeInstanceOf(UnsupportedLanguageException);
  });
});

describe('DetectDominantLanguage', () => {
  it('names the language of a text, best first', async () => {
    const english = await client.send(
      new DetectDominantLanguageCommand({ Text: 'It is raining today in Seattle, and the coffee is excellent.' }),
    );
    expect(english.Languages?.[0].LanguageCode).toBe('en');
    expect(english.Languages?.[0].Score).toBeGreaterThan(0.5);

    const batch = await client.send(
      new BatchDetectDominantLanguageCommand({
        TextList: [
          'Il pleut aujourd’hui à Paris et le café est excellent.',
          'Hoy llueve en Madrid y el café es excelente.',
        ],
      }),
    );
    expect(batch.ResultList?.map((r) => r.Languages?.[0].LanguageCode)).toEqual(['fr', 'es']);
    expect(batch.ErrorList).toEqual([]);
  });
});
