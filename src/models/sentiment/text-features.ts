/**
 * Text → hashed word unigram and bigram features, in one pass over the UTF-16 code units.
 *
 * Inference must reach tens of thousands of short documents per second, so nothing here builds a
 * string: words are hashed incrementally from lower-cased char codes, and features are written
 * into buffers that are reused from call to call. Training uses the very same function, which is
 * what guarantees that the shipped weights mean at inference what they meant when learned.
 *
 * Every word feature is emitted twice: once in a space shared by all languages (numbers, names,
 * "!", loanwords carry over) and once tagged with the text's language, so each language can
 * also learn what its own words mean where the shared weight is dominated by English. Languages
 * other than English have a few thousand training texts at most, and richer inflection (and
 * German its compounds), so they also get character 3–5-grams of their words ("subwords", as in
 * fastText): an unseen form still shares evidence with the forms that were seen (measured:
 * French reviews 80.5% → 82.7%, Spanish sentences 69.8% → 71.7%).
 *
 * Besides the features, the pass records *segments*: sentences, further cut before a contrastive
 * conjunction ("but", "mais", "aber", …). The model scores each segment on its own to find texts
 * whose parts disagree (MIXED).
 */
import { murmur3Finalize } from '../../util/hash.js';

/** Code units below this get table-driven classification; above it (CJK, …) every char is a word char. */
const TABLE_SIZE = 0x3000;
enum CharClass {
  Separator = 0,
  Word = 1,
  /** `!` and `?`: emitted as tokens (they carry sentiment) and end a sentence. */
  Exclaim = 2,
  /** `.`, `;`, newline, …: end a sentence, emit nothing. */
  SentenceEnd = 3,
}

const charClass = new Uint8Array(TABLE_SIZE);
const lowerCase = new Uint16Array(TABLE_SIZE);
{
  const wordChar = /[\p{L}\p{N}\p{M}]/u;
  for (let c = 0; c < TABLE_SIZE; c++) {
    const ch = String.fromCharCode(c);
    const lower = ch.toLowerCase();
    lowerCase[c] = lower.length === 1 ? lower.charCodeAt(0) : c;
    charClass[c] = wordChar.test(ch) ? CharClass.Word : CharClass.Separator;
  }
  for (const ch of '!?¡¿') charClass[ch.charCodeAt(0)] = CharClass.Exclaim;
  for (const ch of '.;\n\r…') charClass[ch.charCodeAt(0)] = CharClass.SentenceEnd;
}

function classOf(c: number): number {
  if (c < TABLE_SIZE) return charClass[c];
  if (c === 0x3002 || c === 0xff0e || c === 0xff1b) return CharClass.SentenceEnd; // 。．；
  if (c === 0xff01 || c === 0xff1f) return CharClass.Exclaim; // ！？
  if (c >= 0xd800 && c <= 0xdfff) return CharClass.Word; // astral chars (emoji) hash as words
  return c >= 0x3040 ? CharClass.Word : CharClass.Separator;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function hashWord(word: string): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < word.length; i++) {
    const c = word.charCodeAt(i);
    h = Math.imul(h ^ (c < TABLE_SIZE ? lowerCase[c] : c), FNV_PRIME);
  }
  return h;
}

const UNIGRAM_SEED = 0x2545f491;
const BIGRAM_SEED = 0x9e3779b9;

/**
 * Words that turn a sentence around. Text after one of them is scored as a new segment, so
 * "the food was great but the service was slow" yields one positive and one negative segment.
 * This list only cuts text; it does not score anything.
 */
const CONTRAST_WORDS = [
  'but',
  'however',
  'although',
  'though',
  'mais',
  'cependant',
  'pourtant',
  'toutefois',
  'aber',
  'jedoch',
  'allerdings',
  'pero',
  'aunque',
  'embargo',
  'ma',
  'però',
  'tuttavia',
  'mas',
  'porém',
  'contudo',
  'maar',
  'echter',
];
const contrastHashes = new Set(CONTRAST_WORDS.map(hashWord));

/**
 * Negators. Words after one, up to the next punctuation mark, get unigram features of their own
 * ("not … funny" is not "funny"), the classic negation-scope trick of Das & Chen (2001) and
 * Pang et al. (2002); bigrams alone only see the next word. `t` is what "don't" leaves after the
 * apostrophe. Like the contrast list, this only shapes features; the weights are learned.
 */
const NEGATION_WORDS = [
  'not',
  'no',
  'never',
  'nothing',
  'nobody',
  'none',
  'neither',
  'nor',
  'cannot',
  'without',
  't',
  'ne',
  'pas',
  'jamais',
  'rien',
  'aucun',
  'aucune',
  'sans',
  'nicht',
  'kein',
  'keine',
  'keinen',
  'keiner',
  'nie',
  'niemals',
  'ohne',
  'nunca',
  'nada',
  'sin',
  'ni',
  'non',
  'mai',
  'niente',
  'senza',
  'né',
  'não',
  'sem',
  'nem',
  'niet',
  'geen',
  'nooit',
  'niets',
  'zonder',
];
const negationHashes = new Set(NEGATION_WORDS.map(hashWord));
const NEGATED_SEED = 0x3c6ef372;

/** How a language is featurised. */
export interface LanguageFeatures {
  /** Mixed into the hash of the language-tagged copy of each feature. */
  seed: number;
  /** Add within-word character n-grams (for languages with little training data and compounds). */
  subwords: boolean;
}

/** English has 40,000 training reviews and gains nothing from subwords, so it skips their cost. */
const SUBWORD_LANGUAGES = new Set(['de', 'fr', 'es', 'it', 'pt', 'nl']);

/** Feature settings for a language code; any code works, unknown ones get their own seed. */
export function languageFeatures(languageCode: string): LanguageFeatures {
  return { seed: murmur3Finalize(hashWord(`lang:${languageCode}`)), subwords: SUBWORD_LANGUAGES.has(languageCode) };
}

/** Reusable output of {@link extractFeatures}; grows as needed, never shrinks. */
export class FeatureBuffer {
  /** Mixed 32-bit feature hashes; the model masks them to its table size. */
  hashes = new Uint32Array(1024);
  /** Segment index of each feature. */
  segments = new Uint16Array(1024);
  /** Number of features written by the last extraction. */
  count = 0;
  /** Number of segments (sentences / clauses) that received at least one feature. */
  segmentCount = 0;

  /** Adds a feature in the shared space and its language-tagged twin. */
  pushPair(hash: number, languageSeed: number, segment: number): void {
    if (this.count + 2 > this.hashes.length) this.grow();
    const hashes = this.hashes;
    const segments = this.segments;
    const k = this.count;
    hashes[k] = hash;
    hashes[k + 1] = murmur3Finalize(hash ^ languageSeed);
    segments[k] = segment;
    segments[k + 1] = segment;
    this.count = k + 2;
  }

  push(hash: number, segment: number): void {
    if (this.count === this.hashes.length) this.grow();
    this.hashes[this.count] = hash;
    this.segments[this.count] = segment;
    this.count++;
  }

  private grow(): void {
    const hashes = new Uint32Array(this.hashes.length * 2);
    hashes.set(this.hashes);
    this.hashes = hashes;
    const segments = new Uint16Array(this.segments.length * 2);
    segments.set(this.segments);
    this.segments = segments;
  }
}

/** Segments beyond this many share the last index; MIXED only needs to see that parts disagree. */
const MAX_SEGMENT = 0xffff;
const SUBWORD_SEED = 0x7f4a7c15;
/** Longer "words" (URLs, hashes) get no subwords: they are noise and would cost time. */
const MAX_SUBWORD_WORD = 30;

/** Character 3- to 5-grams of text[start, end) with `<` and `>` marking the word's edges. */
function pushSubwords(text: string, start: number, end: number, seed: number, segment: number, out: FeatureBuffer) {
  if (end - start > MAX_SUBWORD_WORD || end - start < 2) return;
  const last = end - start + 1; // positions 0..last in the padded word
  for (let from = 0; from <= last - 2; from++) {
    let h = FNV_OFFSET;
    for (let n = 0; n < 5 && from + n <= last; n++) {
      const p = from + n;
      const c = p === 0 ? 60 : p === last ? 62 : text.charCodeAt(start + p - 1);
      h = Math.imul(h ^ (c < TABLE_SIZE ? lowerCase[c] : c), FNV_PRIME);
      if (n >= 2) out.push(murmur3Finalize(h ^ seed ^ SUBWORD_SEED), segment);
    }
  }
}

/** Fill `out` with the features of `text` in language `language`. Returns `out.count`. */
export function extractFeatures(text: string, language: LanguageFeatures, out: FeatureBuffer): number {
  out.count = 0;
  const seed = language.seed;
  const subwords = language.subwords;
  let segment = 0;
  let segmentUsed = false;
  let previous = 0; // hash of the previous token in this sentence, 0 = none
  let h = FNV_OFFSET;
  let wordStart = -1;
  let negated = false;
  const length = text.length;

  for (let i = 0; i <= length; i++) {
    const c = i < length ? text.charCodeAt(i) : 10;
    const cls = classOf(c);
    if (cls === CharClass.Word) {
      h = Math.imul(h ^ (c < TABLE_SIZE ? lowerCase[c] : c), FNV_PRIME);
      if (wordStart < 0) wordStart = i;
      continue;
    }
    // A full stop between digits ("7.5/10") is part of a number, not the end of a sentence.
    if (c === 46 && wordStart >= 0 && i + 1 < length && (text.charCodeAt(i + 1) - 48) >>> 0 < 10) {
      h = Math.imul(h ^ c, FNV_PRIME);
      continue;
    }
    if (wordStart >= 0) {
      if (contrastHashes.has(h) && segmentUsed) {
        if (segment < MAX_SEGMENT) segment++;
        segmentUsed = false;
        previous = 0;
      }
      out.pushPair(murmur3Finalize(h ^ (negated ? NEGATED_SEED : UNIGRAM_SEED)), seed, segment);
      if (previous !== 0) out.pushPair(murmur3Finalize(Math.imul(previous, BIGRAM_SEED) ^ h), seed, segment);
      if (subwords) pushSubwords(text, wordStart, i, seed, segment, out);
      if (negationHashes.has(h)) negated = true;
      previous = h;
      segmentUsed = true;
      h = FNV_OFFSET;
      wordStart = -1;
    }
    // Any punctuation closes a negation's scope.
    if (negated && cls !== CharClass.Separator) negated = false;
    else if (negated && (c === 44 || c === 58 || c === 40 || c === 41 || c === 34)) negated = false; // , : ( ) "
    if (cls === CharClass.Exclaim) {
      // `!!!` counts once: the run, not its length, is the signal.
      const token = Math.imul(FNV_OFFSET ^ c, FNV_PRIME);
      if (token !== previous) {
        out.pushPair(murmur3Finalize(token ^ UNIGRAM_SEED), seed, segment);
        if (previous !== 0) out.pushPair(murmur3Finalize(Math.imul(previous, BIGRAM_SEED) ^ token), seed, segment);
        previous = token;
        segmentUsed = true;
      }
    }
    if ((cls === CharClass.Exclaim || cls === CharClass.SentenceEnd) && segmentUsed) {
      const next = i + 1 < length ? classOf(text.charCodeAt(i + 1)) : CharClass.Separator;
      if (next !== CharClass.Exclaim && next !== CharClass.SentenceEnd) {
        if (segment < MAX_SEGMENT) segment++;
        segmentUsed = false;
        previous = 0;
      }
    }
  }
  out.segmentCount = segmentUsed ? segment + 1 : segment;
  return out.count;
}
