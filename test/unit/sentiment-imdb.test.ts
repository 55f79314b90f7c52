/**
 * Accuracy on the held-out IMDB reviews. `isHeldOut` is the very function training uses to keep
 * these reviews out (scripts/sentiment/split.ts), so this is a genuine held-out figure.
 */
import { describe, expect, it } from 'vitest';
import { loadImdb } from '../../scripts/sentiment/corpora.js';
import { testFractionOf } from '../../scripts/sentiment/datasets.js';
import { isHeldOut } from '../../scripts/sentiment/split.js';
import { loadSentimentModel } from '../../src/models/sentiment/index.js';

describe('sentiment model on held-out IMDB reviews', () => {
  const reviews = loadImdb();
  const fraction = testFractionOf('imdb');
  const heldOut = reviews.filter((r) => isHeldOut(r.text, fraction));

  it('holds out about a fifth of the reviews, duplicates on one side only', () => {
    expect(heldOut.length / reviews.length).toBeGreaterThan(0.18);
    expect(heldOut.length / reviews.length).toBeLessThan(0.22);
    const sides = new Map<string, boolean>();
    for (const r of reviews) {
      const key = r.text.trim().replace(/\s+/g, ' ');
      const side = isHeldOut(r.text, fraction);
      if (sides.has(key)) expect(sides.get(key)).toBe(side);
      sides.set(key, side);
    }
  });

  it('classifies at least 90% of them correctly', () => {
    const model = loadSentimentModel();
    let correct = 0;
    for (const r of heldOut) {
      const { scores } = model.detect(r.text, 'en');
      if ((scores.Positive > scores.Negative ? 1 : 0) === r.label) correct++;
    }
    const accuracy = correct / heldOut.length;
    expect(accuracy).toBeGreaterThanOrEqual(0.9);
  });
});
