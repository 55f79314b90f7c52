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
