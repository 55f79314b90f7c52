/**
 * The one held-out split used by training, tests and benches. A document's side is a pure
 * function of its (whitespace-normalised) text, so exact duplicates — IMDB has a few hundred —
 * always land on the same side and the held-out set is never seen in training.
 */
import { murmur3Finalize } from '../../src/util/hash.js';

/** 32-bit FNV-1a over UTF-16 code units of the text with runs of whitespace collapsed. */
function textHash(text: string): number {
  let h = 0x811c9dc5;
  let lastWasSpace = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const space = c === 32 || c === 9 || c === 10 || c === 13;
    if (space) {
      if (lastWasSpace) continue;
      lastWasSpace = true;
      h = Math.imul(h ^ 32, 0x01000193);
      continue;
    }
    lastWasSpace = false;
    h = Math.imul(h ^ c, 0x01000193);
  }
  // FNV's low bits are weak on their own.
  return murmur3Finalize(h);
}

/** Fraction of each corpus kept out of training. German has only 200 reviews, so it keeps half. */
export const DEFAULT_TEST_FRACTION = 0.2;

/** True when the text belongs to the held-out (test) side of its corpus. */
export function isHeldOut(text: string, testFraction = DEFAULT_TEST_FRACTION): boolean {
  return textHash(text.trim()) / 0x1_0000_0000 < testFraction;
}

export interface Split<T> {
  train: T[];
  test: T[];
}

export function splitHeldOut<T extends { text: string }>(items: T[], testFraction = DEFAULT_TEST_FRACTION): Split<T> {
  const train: T[] = [];
  const test: T[] = [];
  for (const item of items) (isHeldOut(item.text, testFraction) ? test : train).push(item);
  return { train, test };
}
