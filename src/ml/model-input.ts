import { SqlError, SqlState } from '../util/errors.js';

/**
 * Turns the JSON array the gateway packs model inputs into
 * (`json_build_array(arg1, arg2, …)`, produced by PostgreSQL) into one CSV line
 * the way Aurora sends rows to SageMaker: values in argument order, NULL as an
 * empty field, one-dimensional arrays flattened in place, text quoted per
 * RFC 4180 when needed.
 *
 * Numbers are copied as PostgreSQL wrote them (never through a JS number), so
 * NUMERIC values keep every digit.
 */
export function modelInputToCsv(json: string): string {
  const flat = flatScalars(json);
  if (flat !== undefined) return flat;
  const scanner = new JsonScanner(json);
  const fields: string[] = [];
  scanner.skipSpace();
  scanner.expect('[');
  scanner.skipSpace();
  if (scanner.peek() === ']') {
    scanner.pos += 1;
  } else {
    for (;;) {
      scanner.readValue(fields, 0);
      scanner.skipSpace();
      const next = scanner.next();
      if (next === ']') break;
      if (next !== ',') throw scanner.error();
    }
  }
  return fields.join(',');
}

const SPACE = 0x20;
const isJsonSpace = (c: number) => c === SPACE || c === 0x09 || c === 0x0a || c === 0x0d;

/**
 * The common case, a row of numbers, NULLs and booleans (`[1.5, null, 2]`):
 * its CSV line is its fields as written. Undefined when the array holds text,
 * arrays or objects, which take the general scanner.
 */
function flatScalars(json: string): string | undefined {
  const end = json.length - 1;
  if (json.charCodeAt(0) !== 0x5b /* [ */ || json.charCodeAt(end) !== 0x5d /* ] */) return undefined;
  let out = '';
  let start = 1;
  for (let i = 1; i <= end; i++) {
    const c = json.charCodeAt(i);
    if (c === 0x22 /* " */ || c === 0x5b || c === 0x7b /* { */) return undefined;
    if (c !== 0x2c /* , */ && i !== end) continue;
    let from = start;
    let to = i;
    while (from < to && isJsonSpace(json.charCodeAt(from))) from += 1;
    while (to > from && isJsonSpace(json.charCodeAt(to - 1))) to -= 1;
    if (from === to) {
      if (i === end && start === 1) return ''; // []
      return undefined;
    }
    const first = json.charCodeAt(from);
    const token = json.slice(from, to);
    if (token === 'null') out += start === 1 ? '' : ',';
    else if (first === 0x2d /* - */ || (first >= 0x30 && first <= 0x39) || token === 'true' || token === 'false') {
      out += start === 1 ? token : `,${token}`;
    } else return undefined;
    start = i + 1;
  }
  return out;
}

export const csvField = (text: string): string => (/[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text);

class JsonScanner {
  pos = 0;
  constructor(private readonly text: string) {}

  error(): SqlError {
    return new SqlError(SqlState.invalidTextRepresentation, `malformed model input at offset ${this.pos}`);
  }

  skipSpace(): void {
    while (this.pos < this.text.length && isJsonSpace(this.text.charCodeAt(this.pos))) this.pos += 1;
  }

  peek(): string {
    return this.text[this.pos];
  }

  next(): string {
    return this.text[this.pos++];
  }

  expect(char: string): void {
    if (this.next() !== char) throw this.error();
  }

  /** Appends the CSV field(s) of one value; depth 1 means "inside an array argument". */
  readValue(fields: string[], depth: number): void {
    this.skipSpace();
    const c = this.peek();
    if (c === '"') {
      fields.push(csvField(this.readString()));
    } else if (c === '[') {
      if (depth > 0) {
        throw new SqlError(
          SqlState.invalidParameterValue,
          'multi-dimensional arrays cannot be sent to a model; pass a one-dimensional array',
        );
      }
      this.pos += 1;
      this.skipSpace();
      if (this.peek() === ']') {
        this.pos += 1;
        return;
      }
      for (;;) {
        this.readValue(fields, depth + 1);
        this.skipSpace();
        const next = this.next();
        if (next === ']') return;
        if (next !== ',') throw this.error();
      }
    } else if (c === '{') {
      throw new SqlError(
        SqlState.featureNotSupported,
        'composite values cannot be sent to a model; pass their fields as separate arguments',
      );
    } else {
      const start = this.pos;
      while (this.pos < this.text.length) {
        const code = this.text.charCodeAt(this.pos);
        if (isJsonSpace(code) || code === 0x2c || code === 0x5d) break;
        this.pos += 1;
      }
      const token = this.text.slice(start, this.pos);
      if (token === 'null') fields.push('');
      else if (token === 'true' || token === 'false' || /^-?\d/.test(token)) fields.push(token);
      else throw this.error();
    }
  }

  readString(): string {
    this.pos += 1;
    let out = '';
    let start = this.pos;
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined) throw this.error();
      if (c === '"') {
        out += this.text.slice(start, this.pos);
        this.pos += 1;
        return out;
      }
      if (c === '\\') {
        out += this.text.slice(start, this.pos);
        const escaped = this.text[this.pos + 1];
        this.pos += 2;
        switch (escaped) {
          case 'n':
            out += '\n';
            break;
          case 't':
            out += '\t';
            break;
          case 'r':
            out += '\r';
            break;
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'u':
            out += String.fromCharCode(Number.parseInt(this.text.slice(this.pos, this.pos + 4), 16));
            this.pos += 4;
            break;
          default:
            out += escaped;
        }
        start = this.pos;
        continue;
      }
      this.pos += 1;
    }
  }
}

const NUMBER_TYPES = new Set([20 /* int8 */, 21 /* int2 */, 23 /* int4 */, 700 /* float4 */, 701 /* float8 */, 1700]);
const TEXT_TYPES = new Set([19 /* name */, 25 /* text */, 1042 /* bpchar */, 1043 /* varchar */]);
const BOOL = 16;

/** Number types: their text output is their JSON (and CSV) form. */
export const isNumberType = (oid: number) => NUMBER_TYPES.has(oid);

/**
 * For model inputs read as separate columns (PostgreSQL's text output, NULL as
 * null): one converter per column to its CSV field, the same field the JSON
 * array would have given; undefined when a column's type has a JSON form that
 * differs from its text output (dates, arrays, composites…).
 */
export function csvFieldConverters(typeOids: number[]): ((value: string | null) => string)[] | undefined {
  const converters: ((value: string | null) => string)[] = [];
  for (const oid of typeOids) {
    // NaN and ±Infinity: JSON quotes them, and CSV writes the same word unquoted.
    if (NUMBER_TYPES.has(oid)) converters.push((value) => value ?? '');
    else if (TEXT_TYPES.has(oid)) converters.push((value) => (value === null ? '' : csvField(value)));
    else if (oid === BOOL) converters.push((value) => (value === null ? '' : value === 't' ? 'true' : 'false'));
    else return undefined;
  }
  return converters;
}
