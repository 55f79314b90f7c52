/**
 * The schemas a search_path setting names, in order, read as PostgreSQL reads
 * the list (SplitIdentifierString): items between commas, a double-quoted one
 * as written (`""` a quote), an unquoted one in lower case (ASCII letters
 * only, as PostgreSQL folds identifiers). `"$user"` becomes `user`, the
 * current user's name; an empty or unreadable list gives undefined.
 */
export function searchPathSchemas(setting: string, user: string | undefined): string[] | undefined {
  const schemas: string[] = [];
  let i = 0;
  const skipSpace = () => {
    while (i < setting.length && /\s/.test(setting[i])) i += 1;
  };
  skipSpace();
  if (i === setting.length) return undefined;
  for (;;) {
    let name: string;
    if (setting[i] === '"') {
      let end = i + 1;
      name = '';
      for (;;) {
        const quote = setting.indexOf('"', end);
        if (quote < 0) return undefined;
        name += setting.slice(end, quote);
        if (setting[quote + 1] !== '"') {
          i = quote + 1;
          break;
        }
        name += '"';
        end = quote + 2;
      }
    } else {
      const start = i;
      while (i < setting.length && setting[i] !== ',' && !/\s/.test(setting[i])) i += 1;
      if (i === start) return undefined;
      name = setting.slice(start, i).replace(/[A-Z]+/g, (s) => s.toLowerCase());
    }
    if (name === '$user') {
      if (user !== undefined) schemas.push(user);
    } else schemas.push(name);
    skipSpace();
    if (i === setting.length) return schemas;
    if (setting[i] !== ',') return undefined;
    i += 1;
    skipSpace();
  }
}
