/**
 * Short plain sentences, the kind users type first ("I hate it!", "The weather is cloudy
 * today."): a held-out list written apart from the model's short training sentences
 * (scripts/sentiment/short-sentences.ts), scored with three labels — POSITIVE, NEGATIVE, or
 * NEUTRAL for a plain fact. The model before the short training sentences scored 67.3% here
 * (68.9% in English); the thresholds leave the retrained model a few sentences of margin.
 */
import { describe, expect, it } from 'vitest';
import { scoreShortHeldOut } from '../../scripts/sentiment/evaluate.js';
import {
  leakedSentences,
  loadShortSentences,
  SHORT_HELD_OUT_FILE,
  SHORT_TRAINING_FILE,
} from '../../scripts/sentiment/short-sentences.js';
import { loadSentimentModel } from '../../src/models/sentiment/index.js';

const heldOut = loadShortSentences(SHORT_HELD_OUT_FILE);
const training = loadShortSentences(SHORT_TRAINING_FILE);

describe('sentiment model on held-out short sentences', () => {
  it('has a varied held-out list that the training list does not contain', () => {
    expect(heldOut.length).toBeGreaterThanOrEqual(150);
    for (const label of ['POSITIVE', 'NEGATIVE', 'NEUTRAL']) {
      expect(heldOut.filter((s) => s.language === 'en' && s.label === label).length).toBeGreaterThanOrEqual(30);
    }
    expect(leakedSentences(training, heldOut)).toEqual([]);
  });

  it('labels at least 80% of them right, in all and in English', () => {
    const [all, ...languages] = scoreShortHeldOut(loadSentimentModel(), heldOut);
    const english = languages.find((f) => f.language === 'en');
    expect(all.accuracy, JSON.stringify(all.confusion)).toBeGreaterThanOrEqual(0.8);
    expect(english?.accuracy, JSON.stringify(english?.confusion)).toBeGreaterThanOrEqual(0.8);
  });

  it('gets the examples from the bug report right', () => {
    const model = loadSentimentModel();
    expect(model.detect('I hate it!', 'en').sentiment).toBe('NEGATIVE');
    expect(model.detect('I do not like it.', 'en').sentiment).toBe('NEGATIVE');
    expect(model.detect('The weather is cloudy today.', 'en').sentiment).toBe('NEUTRAL');
  });
});
