/**
 * Built-in functions whose value depends only on their arguments (not on the
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
