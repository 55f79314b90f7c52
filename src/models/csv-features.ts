/**
 * text/csv request bodies → FeatureMatrix, the way SageMaker's built-in containers
 * read them: one row per line, an empty field is a missing value (NaN), no header.
 *
 * The parser works on bytes, not on a decoded string, and converts the common
 * number shapes (up to 15 significant digits, small exponents) itself; both are
 * what keeps it well ahead of scoring (see bench/xgboost-predict.ts).
 */
import { type FeatureMatrix, ModelInputError } from './types.js';

const COMMA = 0x2c;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const SPACE = 0x20;
const TAB = 0x09;

/** Exact powers of ten: dividing an exact integer below 2^53 by one of them rounds correctly. */
const EXACT_POWERS_OF_TEN = Array.from({ length: 23 }, (_, i) => 10 ** i);
const MAX_EXACT_MANTISSA = 2 ** 53;

export function parseCsvFeatures(body: string | Buffer, expectedCols?: number): FeatureMatrix {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return new CsvFeatureParser(bytes, expectedCols).parse();
}

function isBlank(byte: number): boolean {
  return byte === LF || byte === CR || byte === SPACE || byte === TAB;
}

class CsvFeatureParser {
  private values: Float64Array;
  private count = 0;
  private cols: number | undefined;
  private row = 0;
  private colInRow = 0;
  private end = 0;

  constructor(
    private readonly bytes: Buffer,
    expectedCols: number | undefined,
  ) {
    this.cols = expectedCols;
    // A field takes at least one byte plus a separator, so this rarely needs to grow.
    this.values = new Float64Array(Math.max(16, (bytes.length >> 1) + 1));
  }

  parse(): FeatureMatrix {
    const { bytes } = this;
    // The containers strip() the payload first, so blank lines and whitespace at either end never make rows.
    let end = bytes.length;
    while (end > 0 && isBlank(bytes[end - 1])) end--;
    let pos = 0;
    while (pos < end && isBlank(bytes[pos])) pos++;
    this.end = end;
    if (pos === end) return this.result();
    while (pos < end) {
      pos = this.field(pos);
      // `pos` now sits on a separator, a line end, or the end of input.
      if (pos >= end) {
        this.endRow();
        break;
      }
      const c = bytes[pos];
      if (c === COMMA) {
        pos++;
        if (pos >= end) {
          // "1,2," at the very end: the row ends with an empty (missing) field.
          this.push(Number.NaN);
          this.endRow();
        }
        continue;
      }
      // Line end: \n or \r\n (a lone \r is treated as a line end too).
      pos += c === CR && pos + 1 < end && bytes[pos + 1] === LF ? 2 : 1;
      this.endRow();
    }
    return this.result();
  }

  /** Reads one field starting at `start`; returns the index of the byte after it. */
  private field(start: number): number {
    const { bytes, end } = this;
    if (start < end && bytes[start] === QUOTE) return this.quotedField(start);
    let pos = start;
    while (pos < end) {
      const c = bytes[pos];
      if (c === COMMA || c === LF || c === CR) break;
      pos++;
    }
    this.push(this.numberAt(start, pos));
    return pos;
  }

  private quotedField(start: number): number {
    const { bytes, end } = this;
    let text = '';
    let chunkStart = start + 1;
    let pos = chunkStart;
    for (;;) {
      if (pos >= end) throw this.error(`unterminated quoted field`);
      if (bytes[pos] === QUOTE) {
        text += bytes.toString('utf8', chunkStart, pos);
        if (pos + 1 < end && bytes[pos + 1] === QUOTE) {
          // RFC 4180 escaped quote.
          text += '"';
          pos += 2;
          chunkStart = pos;
          continue;
        }
        pos++;
        break;
      }
      pos++;
    }
    // Tolerate spaces between the closing quote and the separator.
    while (pos < end && (bytes[pos] === SPACE || bytes[pos] === TAB)) pos++;
    if (pos < end && bytes[pos] !== COMMA && bytes[pos] !== LF && bytes[pos] !== CR) {
      throw this.error(`unexpected text after a quoted field`);
    }
    this.push(this.numberFromText(text));
    return pos;
  }

  /** Fast path for plain decimal numbers; anything unusual goes through numberFromText. */
  private numberAt(start: number, end: number): number {
    const { bytes } = this;
    while (start < end && (bytes[start] === SPACE || bytes[start] === TAB)) start++;
    while (end > start && (bytes[end - 1] === SPACE || bytes[end - 1] === TAB)) end--;
    if (start === end) return Number.NaN;
    let pos = start;
    let negative = false;
    if (bytes[pos] === 0x2d /* - */) {
      negative = true;
      pos++;
    } else if (bytes[pos] === 0x2b /* + */) {
      pos++;
    }
    let mantissa = 0;
    let digits = 0;
    let scale = 0;
    let sawDigit = false;
    while (pos < end) {
      const d = bytes[pos] - 0x30;
      if (d < 0 || d > 9) break;
      sawDigit = true;
      if (mantissa !== 0 || d !== 0) digits++;
      mantissa = mantissa * 10 + d;
      pos++;
    }
    if (pos < end && bytes[pos] === 0x2e /* . */) {
      pos++;
      while (pos < end) {
        const d = bytes[pos] - 0x30;
        if (d < 0 || d > 9) break;
        sawDigit = true;
        if (mantissa !== 0 || d !== 0) digits++;
        mantissa = mantissa * 10 + d;
        scale++;
        pos++;
      }
    }
    if (
      pos === end &&
      sawDigit &&
      digits <= 15 &&
      scale < EXACT_POWERS_OF_TEN.length &&
      mantissa < MAX_EXACT_MANTISSA
    ) {
      const value = scale === 0 ? mantissa : mantissa / EXACT_POWERS_OF_TEN[scale];
      return negative ? -value : value;
    }
    return this.numberFromText(bytes.toString('latin1', start, end));
  }

  /** Numbers in the forms Python's float() accepts (what the real containers use), and nothing else. */
  private numberFromText(raw: string): number {
    const text = raw.trim();
    if (text === '') return Number.NaN;
    if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return Number(text);
    const word = text.toLowerCase().replace(/^[+-]/, '');
    if (word === 'nan') return Number.NaN;
    if (word === 'inf' || word === 'infinity') return text.startsWith('-') ? -Infinity : Infinity;
    throw this.error(`could not convert ${JSON.stringify(raw.length > 40 ? raw.slice(0, 40) + '…' : raw)} to a number`);
  }

  private push(value: number): void {
    if (this.count === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.count++] = value;
    this.colInRow++;
  }

  private endRow(): void {
    if (this.cols === undefined) {
      this.cols = this.colInRow;
    } else if (this.colInRow !== this.cols) {
      throw new ModelInputError(
        `CSV row ${this.row + 1} has ${this.colInRow} columns, expected ${this.cols}`,
        this.row,
      );
    }
    this.row++;
    this.colInRow = 0;
  }

  private error(problem: string): ModelInputError {
    return new ModelInputError(`CSV row ${this.row + 1}, column ${this.colInRow + 1}: ${problem}`, this.row);
  }

  private result(): FeatureMatrix {
    return { data: this.values.subarray(0, this.count), rows: this.row, cols: this.cols ?? 0 };
  }
}
