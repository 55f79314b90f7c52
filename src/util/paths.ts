import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let cachedRoot: string | undefined;

/**
 * The installed package's root directory. Modules run both from `src/` (tests)
 * and from `dist/src/` (compiled), so walk up to pgsage's own package.json
 * rather than counting `..`.
 */
export function packageRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'pgsage') {
      cachedRoot = dir;
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot locate the pgsage package root');
    dir = parent;
  }
}

/** Absolute path of a file shipped with the package (SQL scripts, model weights). */
export function packagePath(...segments: string[]): string {
  return path.join(packageRoot(), ...segments);
}
