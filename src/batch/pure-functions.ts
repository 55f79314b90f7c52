import { type AstNode, functionName, inner, nodeType, some } from '../sql/ast.js';

/**
 * Built-in functions by how their values depend on their arguments.
 */

/**
 * Functions whose value depends only on their arguments (not on the
 * time, the session, the role or the data): an expression of them, columns,
 * constants, parameters and operators reads the same wherever and by whoever
 * it is computed.
 */
export const ROW_ONLY_FUNCTIONS: ReadonlySet<string> = new Set([
  'json_build_array',
  'lower',
  'upper',
  'abs',
  'round',
  'trunc',
  'floor',
  'ceil',
  'ln',
  'log',
  'exp',
  'sqrt',
  'power',
  'length',
  'char_length',
  'substr',
  'substring',
  'btrim',
  'ltrim',
  'rtrim',
  'replace',
  'left',
  'right',
]);

/**
 * Built-in functions whose value differs from one call to the next: a query
 * that computes them a second time (an argument query) would see other
 * values than the statement, and use up the session's random sequence.
 */
export const CHANGING_FUNCTIONS: ReadonlySet<string> = new Set([
  'random',
  'random_normal',
  'clock_timestamp',
  'timeofday',
  'gen_random_uuid',
  'uuid_generate_v4',
  'nextval',
  'setseed',
  'txid_current',
  'pg_backend_pid',
  'statement_timestamp',
]);

/** Built-in functions whose value is the transaction's start (the same throughout a transaction, not after it). */
const TRANSACTION_START_FUNCTIONS: ReadonlySet<string> = new Set(['now', 'transaction_timestamp']);

/** CURRENT_DATE, CURRENT_TIMESTAMP, LOCALTIME…: the transaction's start too (not CURRENT_USER and the like). */
const TRANSACTION_START_KEYWORDS = /^SVFOP_(CURRENT_DATE|CURRENT_TIME|LOCALTIME)/;

/** Text a date or time type reads as a moment relative to when it is read. */
const RELATIVE_MOMENT = /now|today|tomorrow|yesterday/i;

/**
 * Whether a statement reads the time its transaction started: `now()`,
 * `CURRENT_TIMESTAMP`, `'now'::timestamptz`, one-argument `age()`. Two
 * statements in separate transactions read different values, so an argument
 * query and its statement must share one for their inputs to match.
 */
export function readsTransactionStart(root: AstNode): boolean {
  return some(root, (node) => {
    const type = nodeType(node);
    if (type === 'FuncCall') {
      const call = inner(node, 'FuncCall');
      const name = functionName(call);
      if (name.length === 2 && name[0] !== 'pg_catalog') return false;
      const base = name[name.length - 1];
      return TRANSACTION_START_FUNCTIONS.has(base) || (base === 'age' && (call.args ?? []).length === 1);
    }
    if (type === 'SQLValueFunction') return TRANSACTION_START_KEYWORDS.test(inner(node, 'SQLValueFunction').op ?? '');
    if (type === 'TypeCast') {
      const cast = inner(node, 'TypeCast');
      const names: AstNode[] = cast.typeName?.names ?? [];
      const typeName: string = names[names.length - 1]?.String?.sval ?? '';
      // ('now'::text::timestamptz: the text is read as a time by the outer cast.)
      let arg = cast.arg;
      while (inner(arg, 'TypeCast')) arg = inner(arg, 'TypeCast').arg;
      const literal: string | undefined = inner(arg, 'A_Const')?.sval?.sval;
      return /date|time|^ts/.test(typeName) && literal !== undefined && RELATIVE_MOMENT.test(literal);
    }
    return false;
  });
}
