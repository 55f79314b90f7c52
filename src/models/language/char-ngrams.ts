/**
 * Hashed character 1- to 4-grams of letter runs, the classic features for telling languages
 * apart (Cavnar & Trenkle 1994; CLD and fastText's lid models use the same idea). Words are
 * padded with a space on each side, so " de " and "ing " are n-grams of their own.
 * Like the sentiment features, this allocates nothing per call.
 */
import { murmur3Finalize } from '../../util/hash.js';

const TABLE_SIZE = 0x3000;
/** Lower-cased code of a letter (0 for anything that is not part of a word). */
const letterCode = new Uint16Array(TABLE_SIZE);
{
  const letter = /[\p{L}\p{M}]/u;
  for (let c = 0; c < TABLE_SIZE; c++) {
    const ch = String.fromCharCode(c);
    if (!letter.test(ch)) continue;
    const lower = ch.toLowerCase();
    letterCode[c] = lower.length === 1 ? lower.charCodeAt(0) : c;
  }
  // Elision and contraction ("l'homme", "dell'arte", "don't") is itself a strong cue.
  letterCode[0x27] = 0x27;
  letterCode[0x2019] = 0x27;
}

const SPACE = 32;

export class NgramBuffer {
  hashes = new Uint32Array(4096);
  count = 0;
  /** Letters seen (a text with none has no language to detect). */
  letters = 0;

  push(hash: number): void {
    if (this.count === this.hashes.length) {
      const grown = new Uint32Array(this.count * 2);
      grown.set(this.hashes);
      this.hashes = grown;
    }
    this.hashes[this.count++] = hash;
  }
}

/**
 * Fill `out` with the n-gram hashes of the Latin/Greek/Cyrillic letters of `text` (chars past
 * U+3000 are left to script detection). Stops after `maxChars` letters: a few hundred characters
 * decide a language as well as a whole book does.
 */
export function extractNgrams(text: string, out: NgramBuffer, maxChars = 2000): number {
  out.count = 0;
  out.letters = 0;
  // The last four codes, most recent in w0; a space stands for any run of non-letters.
  let w0 = SPACE;
  let w1 = 0;
  let w2 = 0;
  let w3 = 0;
  const length = Math.min(text.length, maxChars);
  for (let i = 0; i <= length; i++) {
    const c = i < length ? text.charCodeAt(i) : SPACE;
    let code = c < TABLE_SIZE ? letterCode[c] : 0;
    if (code === 0) {
      if (w0 === SPACE) continue;
      code = SPACE;
    } else out.letters++;
    w3 = w2;
    w2 = w1;
    w1 = w0;
    w0 = code;
    // n-grams ending here: (w0), (w1 w0), (w2 w1 w0), (w3 w2 w1 w0); a lone space is no n-gram.
    let h = Math.imul(0x811c9dc5 ^ w0, 0x01000193);
    if (w0 !== SPACE) out.push(murmur3Finalize(h + 1));
    if (w1 === 0) continue;
    h = Math.imul(h ^ w1, 0x01000193);
    out.push(murmur3Finalize(h + 2));
    if (w2 === 0) continue;
    h = Math.imul(h ^ w2, 0x01000193);
    out.push(murmur3Finalize(h + 3));
    if (w3 === 0) continue;
    h = Math.imul(h ^ w3, 0x01000193);
    out.push(murmur3Finalize(h + 4));
  }
  return out.count;
}
