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

export const csvField = (text: string): string => (/[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text);

class JsonScanner {
  pos = 0;
  constructor(private readonly text: string) {}

  error(): SqlError {
    return new SqlError(SqlState.invalidTextRepresentation, `malformed model input at offset ${this.pos}`);
  }

  skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos])) this.pos += 1;
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
      while (this.pos < this.text.length && !/[\s,\]]/.test(this.text[this.pos])) this.pos += 1;
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
