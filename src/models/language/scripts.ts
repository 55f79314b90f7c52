/**
 * Writing-system detection by Unicode block. For languages that own their script this is the
 * whole answer (Hangul is Korean, Devanagari is taken as Hindi); for Han characters, kana
 * decides Japanese, and a short list of characters that differ between the simplified and
 * traditional forms decides zh vs zh-TW.
 */

export type Script =
  | 'latin'
  | 'arabic'
  | 'devanagari'
  | 'kana'
  | 'han'
  | 'hangul'
  | 'cyrillic'
  | 'greek'
  | 'hebrew'
  | 'thai';

export function scriptOf(c: number): Script | undefined {
  if (c < 0x80) return (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a ? 'latin' : undefined;
  if (c < 0x250) return c >= 0xc0 && c !== 0xd7 && c !== 0xf7 ? 'latin' : undefined;
  if (c >= 0x370 && c < 0x400) return 'greek';
  if (c >= 0x400 && c < 0x530) return 'cyrillic';
  if (c >= 0x590 && c < 0x600) return 'hebrew';
  if ((c >= 0x600 && c < 0x780) || (c >= 0xfb50 && c < 0xfe00) || (c >= 0xfe70 && c < 0xff00)) return 'arabic';
  if (c >= 0x900 && c < 0x980) return 'devanagari';
  if (c >= 0xe00 && c < 0xe80) return 'thai';
  if (c >= 0x1100 && c < 0x1200) return 'hangul';
  if (c >= 0x1e00 && c < 0x1f00) return 'latin';
  if (c >= 0x3040 && c < 0x3100) return 'kana';
  if (c >= 0x3130 && c < 0x3190) return 'hangul';
  if ((c >= 0x3400 && c < 0x4dc0) || (c >= 0x4e00 && c < 0xa000) || (c >= 0xf900 && c < 0xfb00)) return 'han';
  if (c >= 0xac00 && c < 0xd7b0) return 'hangul';
  return undefined;
}

/** Script → the language Comprehend would name for it (Han is resolved separately). */
export const SCRIPT_LANGUAGE: Record<Exclude<Script, 'latin' | 'han'>, string> = {
  arabic: 'ar',
  devanagari: 'hi',
  kana: 'ja',
  hangul: 'ko',
  cyrillic: 'ru',
  greek: 'el',
  hebrew: 'he',
  thai: 'th',
};

// Frequent characters whose simplified and traditional forms differ (simplified first).
const SIMPLIFIED = '们这说个会来时为国学对发经过还后么样边长问开门见现车东书话实点买电写让语认';
const TRADITIONAL = '們這說個會來時為國學對發經過還後麼樣邊長問開門見現車東書話實點買電寫讓語認';
const simplifiedSet = new Set(Array.from(SIMPLIFIED, (ch) => ch.charCodeAt(0)));
const traditionalSet = new Set(Array.from(TRADITIONAL, (ch) => ch.charCodeAt(0)));

/** Counts, per script, the letters of a text; plus simplified/traditional Han evidence. */
export interface ScriptCounts {
  counts: Map<Script, number>;
  simplified: number;
  traditional: number;
  total: number;
}

export function countScripts(text: string): ScriptCounts {
  const counts = new Map<Script, number>();
  let simplified = 0;
  let traditional = 0;
  let total = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const script = scriptOf(c);
    if (!script) continue;
    total++;
    counts.set(script, (counts.get(script) ?? 0) + 1);
    if (script === 'han') {
      if (simplifiedSet.has(c)) simplified++;
      else if (traditionalSet.has(c)) traditional++;
    }
  }
  return { counts, simplified, traditional, total };
}
