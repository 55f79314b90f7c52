import { describe, expect, it } from 'vitest';
import { detectDominantLanguage } from '../../src/models/language/index.js';

function top(text: string): string | undefined {
  return detectDominantLanguage(text)[0]?.LanguageCode;
}

describe('dominant language detection', () => {
  const latin: [string, string][] = [
    ['en', 'The weather is nice today and I am going for a walk in the park.'],
    ['es', 'El tiempo es agradable hoy y voy a dar un paseo por el parque.'],
    ['fr', "Il fait beau aujourd'hui et je vais me promener dans le parc."],
    ['de', 'Das Wetter ist heute schön und ich gehe im Park spazieren.'],
    ['it', 'Oggi il tempo è bello e vado a fare una passeggiata nel parco.'],
    ['pt', 'O tempo está bom hoje e vou dar um passeio no parque.'],
    ['nl', 'Het weer is vandaag mooi en ik ga een wandeling maken in het park.'],
  ];
  for (const [code, text] of latin) {
    it(`recognises ${code}`, () => expect(top(text)).toBe(code));
  }

  it('recognises languages by their script', () => {
    expect(top('مرحبا بكم في موقعنا')).toBe('ar');
    expect(top('यह एक अच्छा दिन है')).toBe('hi');
    expect(top('今日はとても良い天気ですね')).toBe('ja');
    expect(top('오늘 날씨가 정말 좋네요')).toBe('ko');
    expect(top('我们今天去公园散步，这个天气很好')).toBe('zh');
    expect(top('我們今天去公園散步，這個天氣很好')).toBe('zh-TW');
    expect(top('Привет, как дела?')).toBe('ru');
  });

  it('returns scores in 0..1, best first', () => {
    const guesses = detectDominantLanguage('Hello world, this is English mixed with ein bisschen Deutsch.');
    expect(guesses.length).toBeGreaterThan(0);
    let total = 0;
    for (let i = 0; i < guesses.length; i++) {
      expect(guesses[i].Score).toBeGreaterThan(0);
      expect(guesses[i].Score).toBeLessThanOrEqual(1);
      if (i > 0) expect(guesses[i].Score).toBeLessThanOrEqual(guesses[i - 1].Score);
      total += guesses[i].Score;
    }
    expect(total).toBeLessThanOrEqual(1 + 1e-9);
  });

  it('splits the score between scripts by how much text each has', () => {
    const guesses = detectDominantLanguage('これは日本語です。This part is written in English, and it is longer.');
    const codes = guesses.map((g) => g.LanguageCode);
    expect(codes).toContain('ja');
    expect(codes).toContain('en');
  });

  it('is empty for text without letters, and deterministic', () => {
    expect(detectDominantLanguage('')).toEqual([]);
    expect(detectDominantLanguage('12345 !!! ...')).toEqual([]);
    const text = 'Ceci est une phrase en français.';
    expect(detectDominantLanguage(text)).toEqual(detectDominantLanguage(text));
  });
});
