/**
 * PostgreSQL COPY text format (the default): tab-separated, `\N` for NULL,
 * backslash escapes for tab, newline, carriage return and backslash.
 */

const ESCAPES: Record<string, string> = { t: '\t', n: '\n', r: '\r', b: '\b', f: '\f', v: '\v', '\\': '\\' };

/** The value of a (non-NULL) field's text: backslash escapes resolved. */
export function unescapeCopyText(field: string): string {
  return field.replace(/\\(.)/g, (_, c: string) => ESCAPES[c] ?? c);
}

/** Escapes one value for a COPY text row. */
export function copyField(value: string | number | null): string {
  if (value === null) return '\\N';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '\\N';
  return /[\\\t\n\r]/.test(value)
    ? value.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r')
    : value;
}
