/** What printed follow-up commands need: values a shell takes back as they were. */

/** `value` as one shell word: as it is when that is safe, else in single quotes. */
export function shellWord(value: string): string {
  if (/^[\w@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * ` --name value …` for the options among `options` that were given, to append to a printed command: a user who
 * needed --services-url or --data-dir for this command needs it for the next one too.
 */
export function repeatedOptions(options: [flag: string, value: string | undefined][]): string {
  return options
    .filter((option): option is [string, string] => option[1] !== undefined)
    .map(([flag, value]) => ` ${flag} ${shellWord(value)}`)
    .join('');
}
