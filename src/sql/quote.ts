/**
 * Quoting for SQL the gateway writes itself. Identifiers are always quoted, so
 * keywords ("user") and mixed case survive; literals assume
 * standard_conforming_strings (PostgreSQL's default) — see
 * src/export/copy-options.ts for text that may carry backslashes elsewhere.
 */
export const quoteIdentifier = (name: string): string => `"${name.replace(/"/g, '""')}"`;

export const quoteLiteral = (text: string): string => `'${text.replace(/'/g, "''")}'`;

/**
 * A literal read alike whatever standard_conforming_strings says (an
 * E'' string when the text has backslashes): for SQL the gateway runs on a
 * client's session, where the client may have turned that setting off.
 */
export const quoteLiteralAnyStrings = (text: string): string =>
  text.includes('\\') ? `E'${text.replace(/\\/g, '\\\\').replace(/'/g, "''")}'` : quoteLiteral(text);
