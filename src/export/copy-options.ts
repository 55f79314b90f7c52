import { type AstNode, nodeType } from '../sql/ast.js';
import { parse } from '../sql/parser.js';
import { quoteIdentifier } from '../sql/quote.js';
import { SqlError, SqlState } from '../util/errors.js';

/**
 * The `options` argument of aws_s3.query_export_to_s3 is COPY's option list
 * ("format csv, delimiter $$:$$, header true"). It is never spliced into SQL:
 * PostgreSQL's own grammar parses it (inside a dummy COPY statement), and
 * only the known options are written back, each value quoted by us.
 */

export interface CopyOptions {
  /** The `WITH (…)` clause to append to `COPY (query) TO STDOUT`, or '' for COPY's defaults. */
  clause: string;
  format: 'text' | 'csv' | 'binary';
}

/** COPY options that make sense for COPY TO (FREEZE, DEFAULT, FORCE_NULL… only apply to COPY FROM). */
const SUPPORTED = ['format', 'delimiter', 'null', 'header', 'quote', 'escape', 'force_quote', 'encoding'];
const STRING_OPTIONS = new Set(['delimiter', 'null', 'quote', 'escape', 'encoding']);
const FORMATS = new Set(['text', 'csv', 'binary']);

const PLACEHOLDER = 'pgsage_export_options';

function invalid(message: string, detail?: string): SqlError {
  return new SqlError(
    SqlState.invalidParameterValue,
    message,
    detail,
    `aws_s3.query_export_to_s3 accepts the COPY options ${SUPPORTED.map((o) => o.toUpperCase()).join(', ')}, e.g. 'format csv, header true'.`,
  );
}

/** A SQL string literal for any text, as quote_literal writes it. */
export function quoteLiteral(value: string): string {
  const quoted = `'${value.replace(/'/g, "''")}'`;
  return value.includes('\\') ? `E${quoted.replace(/\\/g, '\\\\')}` : quoted;
}

function parseOptionList(text: string): AstNode[] | undefined {
  // The modern form first ("format csv, header"), then COPY's older one ("CSV HEADER DELIMITER ','").
  for (const sql of [
    `COPY ${PLACEHOLDER} TO STDOUT WITH (${text}\n)`,
    `COPY ${PLACEHOLDER} TO STDOUT WITH ${text}\n`,
  ]) {
    let statements: { stmt: AstNode }[];
    try {
      statements = parse(sql);
    } catch {
      continue;
    }
    if (statements.length !== 1) continue;
    const copy = statements[0].stmt.CopyStmt;
    if (
      !copy ||
      copy.is_from ||
      copy.filename ||
      copy.query ||
      copy.attlist ||
      copy.whereClause ||
      copy.relation?.relname !== PLACEHOLDER ||
      copy.relation?.schemaname
    ) {
      continue;
    }
    return copy.options ?? [];
  }
  return undefined;
}

function stringValue(name: string, arg: AstNode): string {
  switch (nodeType(arg)) {
    case 'String':
      return arg.String.sval ?? '';
    case 'Integer':
      return String(arg.Integer.ival ?? 0);
    case 'Float':
      return String(arg.Float.fval);
    case 'Boolean':
      return arg.Boolean.boolval ? 'true' : 'false';
    default:
      throw invalid(`COPY option ${name.toUpperCase()} needs a single value`);
  }
}

function booleanValue(name: string, arg: AstNode | undefined): boolean {
  if (arg === undefined) return true;
  const text = stringValue(name, arg).toLowerCase();
  if (['true', 'on', '1', 't', 'yes'].includes(text)) return true;
  if (['false', 'off', '0', 'f', 'no'].includes(text)) return false;
  throw invalid(`COPY option ${name.toUpperCase()} requires a Boolean value`, `got "${text}"`);
}

/** Validates the options text and returns the COPY clause to use. Throws SqlError 22023 for anything else. */
export function parseCopyOptions(text: string | null | undefined): CopyOptions {
  if (text === null || text === undefined || text.trim() === '') return { clause: '', format: 'text' };
  const list = parseOptionList(text);
  if (list === undefined) {
    throw invalid(`invalid options for aws_s3.query_export_to_s3: ${text}`, 'The options must be COPY options.');
  }
  const out: string[] = [];
  let format: CopyOptions['format'] = 'text';
  for (const item of list) {
    const option = item.DefElem;
    const name = String(option?.defname ?? '').toLowerCase();
    const arg = option?.arg;
    if (!SUPPORTED.includes(name)) {
      throw invalid(`COPY option "${name}" is not supported by aws_s3.query_export_to_s3`);
    }
    if (name === 'format') {
      const value = arg === undefined ? '' : stringValue(name, arg).toLowerCase();
      if (!FORMATS.has(value)) throw invalid(`COPY format "${value}" not recognized`);
      format = value as CopyOptions['format'];
      out.push(`FORMAT ${value}`);
    } else if (name === 'header') {
      out.push(`HEADER ${booleanValue(name, arg)}`);
    } else if (name === 'force_quote') {
      if (nodeType(arg) === 'A_Star') {
        out.push('FORCE_QUOTE *');
      } else if (nodeType(arg) === 'List') {
        const columns = (arg.List.items ?? []).map((c: AstNode) => quoteIdentifier(stringValue(name, c)));
        if (columns.length === 0) throw invalid('COPY option FORCE_QUOTE needs * or a list of columns');
        out.push(`FORCE_QUOTE (${columns.join(', ')})`);
      } else {
        throw invalid('COPY option FORCE_QUOTE needs * or a list of columns');
      }
    } else if (STRING_OPTIONS.has(name)) {
      if (arg === undefined) throw invalid(`COPY option ${name.toUpperCase()} needs a value`);
      out.push(`${name.toUpperCase()} ${quoteLiteral(stringValue(name, arg))}`);
    }
  }
  return { clause: out.length ? ` WITH (${out.join(', ')})` : '', format };
}

/** Statement kinds COPY ( … ) TO accepts. */
const COPYABLE = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

/**
 * The query argument as text safe to put between `COPY (` and `) TO STDOUT`:
 * exactly one statement, parsed by PostgreSQL's grammar, without a trailing
 * semicolon (a trailing comment is closed by the newline the caller adds).
 */
export function copyableQuery(query: string): string {
  let statements: { stmt: AstNode; location: number; length: number | undefined }[];
  try {
    statements = parse(query);
  } catch (error) {
    throw new SqlError(
      '42601',
      `${(error as Error).message} (in the query of aws_s3.query_export_to_s3)`,
      undefined,
      undefined,
    );
  }
  if (statements.length !== 1) {
    throw new SqlError(
      '42601',
      statements.length === 0
        ? 'the query of aws_s3.query_export_to_s3 is empty'
        : 'the query of aws_s3.query_export_to_s3 must be a single statement',
    );
  }
  const [statement] = statements;
  const kind = nodeType(statement.stmt) ?? '';
  if (!COPYABLE.has(kind)) {
    throw new SqlError(
      '42601',
      'the query of aws_s3.query_export_to_s3 must be a SELECT, VALUES or TABLE query, or INSERT/UPDATE/DELETE/MERGE with RETURNING',
    );
  }
  const bytes = Buffer.from(query, 'utf8');
  const end = statement.length ? statement.location + statement.length : bytes.length;
  return bytes.subarray(statement.location, end).toString('utf8').trimEnd();
}
