import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  COMPREHEND_LANGUAGES,
  isSupportedLanguage,
  loadSentimentModel,
  SENTIMENT_LANGUAGES,
  SentimentModel,
} from '../../src/models/sentiment/index.js';
import { sentimentModelFile } from '../../src/models/sentiment/model-path.js';

const model = loadSentimentModel();

function sum(scores: Record<string, number>): number {
  return Object.values(scores).reduce((a, b) => a + b, 0);
}

describe('sentiment model: contract', () => {
  it('is a cached singleton', () => {
    expect(loadSentimentModel()).toBe(model);
  });

  it('lists the languages it supports and those Comprehend supports', () => {
    for (const code of ['en', 'es', 'fr', 'de', 'it', 'pt', 'nl']) expect(isSupportedLanguage(code)).toBe(true);
    expect(SENTIMENT_LANGUAGES).toContain('nl');
    expect(COMPREHEND_LANGUAGES).toEqual(['en', 'es', 'fr', 'de', 'it', 'pt', 'ar', 'hi', 'ja', 'ko', 'zh', 'zh-TW']);
    for (const code of ['ar', 'ja', 'zh-TW', 'xx', '', 'EN']) expect(isSupportedLanguage(code)).toBe(false);
  });

  it('throws a clear error for an unsupported language', () => {
    expect(() => model.detect('I like it', 'ja')).toThrow(/does not support language 'ja'/);
    expect(() => model.detectBatch(['I like it'], 'ko')).toThrow(/does not support language 'ko'/);
  });

  it('returns one of the four labels with scores that sum to 1', () => {
    const texts = [
      'I like it!',
      'Terrible.',
      'The train leaves at 9.',
      'x',
      'Great food but awful, rude service.',
      '!!!',
      '  ',
      '',
      '😀😀',
      'a'.repeat(20_000),
      'Das ist ein sehr gutes Buch.',
    ];
    for (const text of texts) {
      const r = model.detect(text, 'en');
      expect(['POSITIVE', 'NEGATIVE', 'NEUTRAL', 'MIXED']).toContain(r.sentiment);
      expect(sum({ ...r.scores })).toBeCloseTo(1, 9);
      for (const v of Object.values(r.scores)) {
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(1);
      }
      const best = Object.entries(r.scores)
        .sort((a, b) => b[1] - a[1])[0][0]
        .toUpperCase();
      expect(r.sentiment).toBe(best);
    }
  });

  it('does not crash on blank text and calls it NEUTRAL', () => {
    expect(model.detect('', 'en').sentiment).toBe('NEUTRAL');
    expect(model.detect(' \n\t ', 'fr').sentiment).toBe('NEUTRAL');
    expect(model.detect('...', 'de').sentiment).toBe('NEUTRAL');
  });

  it('is deterministic, across calls and across fresh loads of the weights', () => {
    const texts = ['I like it!', 'Worst purchase ever, it broke after a day.', 'Le film était magnifique.'];
    const first = texts.map((t) => model.detect(t, 'en'));
    const again = texts.map((t) => model.detect(t, 'en'));
    const fresh = SentimentModel.fromBytes(readFileSync(sentimentModelFile('sentiment-model.bin')));
    expect(again).toEqual(first);
    expect(texts.map((t) => fresh.detect(t, 'en'))).toEqual(first);
  });

  it('answers a batch like single calls, in order', () => {
    const texts = ['I love it', 'I hate it', 'It is Tuesday.'];
    expect(model.detectBatch(texts, 'en')).toEqual(texts.map((t) => model.detect(t, 'en')));
    expect(model.detectBatch([], 'en')).toEqual([]);
  });
});

describe('sentiment model: clear examples', () => {
  const cases: [string, string, 'POSITIVE' | 'NEGATIVE'][] = [
    ['en', 'I like it!', 'POSITIVE'],
    ['en', 'This is a wonderful movie, I loved every minute of it.', 'POSITIVE'],
    ['en', 'The worst film I have ever seen. A complete waste of time.', 'NEGATIVE'],
    ['en', 'Terrible product, it broke after two days. Do not buy.', 'NEGATIVE'],
    ['fr', "Un livre magnifique, je l'ai adoré du début à la fin.", 'POSITIVE'],
    ['fr', 'Très décevant, ennuyeux et mal écrit. Je ne le recommande pas.', 'NEGATIVE'],
    ['nl', 'Een prachtig boek, echt een aanrader!', 'POSITIVE'],
    ['nl', 'Wat een saai en slecht boek, zonde van mijn geld.', 'NEGATIVE'],
    ['es', 'Una película excelente, me encantó.', 'POSITIVE'],
    ['es', 'Una película horrible y aburrida.', 'NEGATIVE'],
    ['it', 'Un film bellissimo, mi è piaciuto molto.', 'POSITIVE'],
    ['it', 'Un film orribile e noioso.', 'NEGATIVE'],
    ['pt', 'Um filme excelente, adorei.', 'POSITIVE'],
    ['pt', 'Um filme horrível e chato.', 'NEGATIVE'],
  ];
  for (const [language, text, expected] of cases) {
    it(`${language}: ${text}`, () => {
      const r = model.detect(text, language);
      expect(r.sentiment).toBe(expected);
    });
  }

  it('calls factual statements NEUTRAL', () => {
    for (const [language, text] of [
      ['en', 'The meeting is scheduled for Tuesday at 3 pm in room 204.'],
      ['en', 'The company was founded in 1998 and is headquartered in Seattle.'],
      ['fr', 'Paris est la capitale de la France.'],
      ['es', 'Madrid es la capital de España.'],
      // No German case: with 100 training reviews German's NEUTRAL is unreliable (docs/models.md).
    ]) {
      expect(model.detect(text, language).sentiment, text).toBe('NEUTRAL');
    }
  });

  it('calls a text whose parts clearly disagree MIXED', () => {
    for (const text of [
      'I loved the acting and the music was wonderful, but the story was boring and the ending was awful.',
    ]) {
      expect(model.detect(text, 'en').sentiment, text).toBe('MIXED');
    }
  });

  it('keeps a clearly positive review with one complaint POSITIVE, not MIXED', () => {
    const text =
      'A wonderful film. The acting is superb, the script is witty and the photography is beautiful. ' +
      'The score is moving and the ending is perfect. The first ten minutes are a bit slow. ' +
      'One of the best films of the year, I loved it.';
    expect(model.detect(text, 'en').sentiment).toBe('POSITIVE');
  });
});
