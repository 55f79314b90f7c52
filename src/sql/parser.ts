import { loadModule, parseSync, type ScanToken, scanSync } from 'libpg-query';

let loaded: Promise<void> | undefined;

/** Loads the PostgreSQL parser (WASM, ~60 ms) once per process. */
export function loadParser(): Promise<void> {
  loaded ??= loadModule();
  return loaded;
}

export type { ScanToken };

/** The real PostgreSQL lexer; undefined when the text does not lex (PostgreSQL will report it). */
export function scan(sql: string): ScanToken[] | undefined {
  try {
    return scanSync(sql).tokens;
  } catch {
    return undefined;
  }
}

// biome-ignore lint/suspicious/noExplicitAny: libpg-query's AST is a deep JSON tree handled generically.
export type AstNode = any;

export interface ParsedStatement {
  stmt: AstNode;
  /** Byte offset and length of the statement in the original text. */
  location: number;
  length: number | undefined;
}

/** Parses SQL into statements; throws the parser's error for invalid SQL. */
export function parse(sql: string): ParsedStatement[] {
  const result = parseSync(sql) as { stmts?: { stmt: AstNode; stmt_location?: number; stmt_len?: number }[] };
  return (result.stmts ?? []).map((s) => ({ stmt: s.stmt, location: s.stmt_location ?? 0, length: s.stmt_len }));
}
