/**
 * A boolean setting's text read as PostgreSQL reads it (parse_bool): true,
 * false, yes, no, on, off, 1, 0 and unambiguous prefixes of the words, in any
 * case. Undefined for anything else, which PostgreSQL refuses for its own
 * boolean settings ("requires a Boolean value").
 */
export function parseBoolean(text: string): boolean | undefined {
  const value = text.toLowerCase();
  if (value.length === 0) return undefined;
  const prefixOf = (word: string, minimum = 1) => value.length >= minimum && word.startsWith(value);
  if (prefixOf('true') || prefixOf('yes') || prefixOf('on', 2) || value === '1') return true;
  if (prefixOf('false') || prefixOf('no') || prefixOf('off', 2) || value === '0') return false;
  return undefined;
}

/** A boolean setting's text as PostgreSQL shows one (`on`, `off`), or undefined for text that is not a boolean. */
export function booleanShown(text: string): 'on' | 'off' | undefined {
  const parsed = parseBoolean(text);
  return parsed === undefined ? undefined : parsed ? 'on' : 'off';
}
