import { describe, expect, it } from 'vitest';
import { extractFeatures, FeatureBuffer, languageFeatures } from '../../src/models/sentiment/text-features.js';
import { decodeWeightsFile, encodeWeightsFile, quantize } from '../../src/models/sentiment/weights-file.js';

const en = languageFeatures('en');

function features(text: string, language = en): { hashes: number[]; segments: number[]; segmentCount: number } {
  const buffer = new FeatureBuffer();
  const n = extractFeatures(text, language, buffer);
  return {
    hashes: Array.from(buffer.hashes.subarray(0, n)),
    segments: Array.from(buffer.segments.subarray(0, n)),
    segmentCount: buffer.segmentCount,
  };
}

describe('sentiment text features', () => {
  it('are case-insensitive and ignore spacing and most punctuation', () => {
    expect(features('Great  Movie').hashes).toEqual(features('great movie').hashes);
    expect(features('great, movie').hashes).toEqual(features('great movie').hashes);
  });

  it('emit a shared and a language-tagged copy of each unigram and bigram', () => {
    // two words: 2 unigrams + 1 bigram, twice
    expect(features('great movie').hashes).toHaveLength(6);
    // 'xx' is no real language: it gets a tag of its own and, like English, no subwords.
    const other = features('great movie', languageFeatures('xx')).hashes;
    const ours = features('great movie').hashes;
    const shared = (hashes: number[]) => hashes.filter((_, i) => i % 2 === 0);
    const tagged = (hashes: number[]) => hashes.filter((_, i) => i % 2 === 1);
    expect(shared(other)).toEqual(shared(ours));
    expect(tagged(other)).not.toEqual(tagged(ours));
  });

  it('gives languages other than English within-word character n-grams', () => {
    const english = features('Lieblingsbuch', en).hashes.length;
    for (const code of ['de', 'fr', 'es', 'it', 'pt', 'nl']) {
      // 'lieblingsbuch' padded to 15 chars: 13 + 12 + 11 n-grams of lengths 3, 4, 5
      expect(features('Lieblingsbuch', languageFeatures(code)).hashes.length).toBe(english + 36);
    }
  });

  it('mark words after a negator, up to the next punctuation mark', () => {
    const funny = features('funny').hashes[0];
    // "not" yields 2 features; "funny" then starts with its (shared) unigram
    expect(features('not funny').hashes[2]).not.toBe(funny);
    expect(features("isn't really funny").hashes.includes(funny)).toBe(false);
    expect(features('not bad, funny').hashes.includes(funny)).toBe(true);
    expect(features('Not bad. Funny').hashes.includes(funny)).toBe(true);
  });

  it('keep ! and ? as tokens, once per run', () => {
    expect(features('good!!!').hashes).toHaveLength(features('good!').hashes.length);
    expect(features('good!').hashes.length).toBeGreaterThan(features('good').hashes.length);
  });

  it('cut segments at sentence ends and before contrastive conjunctions', () => {
    expect(features('Good. Bad! Fine?').segmentCount).toBe(3);
    expect(features('The food was great but the service was slow').segmentCount).toBe(2);
    expect(features('Rated 7.5 out of 10').segmentCount).toBe(1);
    expect(features('Wow!!! Really?!').segmentCount).toBe(2);
    expect(features('').segmentCount).toBe(0);
    expect(features('   ...  ').hashes).toHaveLength(0);
  });

  it('grow the buffer for long texts and reuse it', () => {
    const buffer = new FeatureBuffer();
    const long = 'word '.repeat(5000);
    expect(extractFeatures(long, en, buffer)).toBe(4 * 5000 - 2);
    expect(extractFeatures('short text', en, buffer)).toBe(6);
  });
});

describe('weights file', () => {
  it('round-trips heads and metadata', () => {
    const weights = new Float32Array(1 << 4).map((_, i) => (i - 8) / 4);
    const q = quantize(weights, 1);
    const bytes = encodeWeightsFile({ hello: 'world' }, [
      { name: 'h', bits: 4, classes: 1, scale: q.scale, biases: [0.5], weights: q.weights },
    ]);
    const file = decodeWeightsFile<{ hello: string }>(bytes);
    expect(file.meta.hello).toBe('world');
    const head = file.heads.get('h');
    expect(head?.biases).toEqual([0.5]);
    expect(Array.from(head?.weights ?? [])).toEqual(Array.from(q.weights));
    for (let i = 0; i < weights.length; i++) expect((head?.weights[i] ?? 0) * q.scale).toBeCloseTo(weights[i], 1);
  });

  it('rejects what is not a weights file', () => {
    expect(() => decodeWeightsFile(new Uint8Array(16))).toThrow(/not a pgsage weights file/);
  });
});
