import { isUtf8 } from 'node:buffer';
import { scan } from './parser.js';
import { applyEdits, type Edit } from './rewrite.js';

/** The values a client bound to a statement's parameters, as they came in a Bind message. */
export interface BoundValues {
  values: (Buffer | null)[];
  /** Bind's format codes: none (all text), one for all, or one per parameter; 1 is binary. */
  formats: number[];
  /** The SQL name of each parameter's type, as `format_type` writes it. */
  typeNames: string[];
  /** The same, for a domain the type it is over (default: typeNames). */
  baseTypeNames?: string[];
}

const formatOf = (formats: number[], index: number) =>
  formats.length === 0 ? 0 : formats.length === 1 ? formats[0] : (formats[index] ?? 0);

/**
 * A typed literal that reads as the parameter would: PostgreSQL parses a
 * text-format parameter with its type's input function, as it does the
 * literal. The E'' form means the same whatever standard_conforming_strings is.
 */
function literal(value: Buffer | null, typeName: string): string {
  if (value === null) return `(NULL::${typeName})`;
  const text = value.toString('utf8').replace(/\\/g, '\\\\').replace(/'/g, "''");
  return `(E'${text}'::${typeName})`;
}

/**
 * `sql` with every `$n` replaced by the value bound to it, so that a query the
 * gateway derived from a prepared statement can run as COPY, which takes no
 * parameters. Undefined when a parameter it uses was bound in binary (its
 * bytes have no SQL spelling here), is not valid UTF-8 text, or is missing,
 * or the text does not lex.
 */
export function inlineParameters(sql: string, bound: BoundValues): string | undefined {
  if (!sql.includes('$')) return sql;
  const tokens = scan(sql);
  if (!tokens) return undefined;
  const edits: Edit[] = [];
  for (const token of tokens) {
    if (token.tokenName !== 'PARAM') continue;
    const index = Number(token.text.slice(1)) - 1;
    const typeName = bound.typeNames[index];
    if (index < 0 || index >= bound.values.length || typeName === undefined) return undefined;
    if (formatOf(bound.formats, index) !== 0) return undefined;
    // Left to the Bind, which rejects them with PostgreSQL's own error (a NUL would cut the query text short).
    const value = bound.values[index];
    if (value !== null && (value.includes(0) || !isUtf8(value))) return undefined;
    edits.push({ start: token.start, end: token.end, text: literal(bound.values[index], typeName) });
  }
  return applyEdits(Buffer.from(sql), edits);
}

/** Date and time input that names a moment relative to when it is read ('now', 'today', …). */
const RELATIVE_TIME = /now|today|tomorrow|yesterday/i;
const TIME_TYPE = /date|time|^ts/;

/**
 * Whether every text value reads the same in a later statement as in this
 * one. `'now'::timestamptz` reads differently in each transaction; a value
 * bound in binary is read once, by the Bind.
 */
export function readsTheSameLater(bound: BoundValues): boolean {
  return bound.values.every(
    (value, index) =>
      value === null ||
      formatOf(bound.formats, index) !== 0 ||
      !TIME_TYPE.test((bound.baseTypeNames ?? bound.typeNames)[index] ?? '') ||
      !RELATIVE_TIME.test(value.toString('utf8')),
  );
}
