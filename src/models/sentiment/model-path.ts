/**
 * Where the shipped weights live. The same code runs from `src/` (vitest) and from the compiled
 * `dist/src/` (tsc mirrors the repo under dist/), so rather than counting `../` we walk up to the
 * directory whose package.json names this package.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'pgsage';

export function findRepoRoot(startDir: string): string {
  let dir = startDir;
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === PACKAGE_NAME) return dir;
      } catch {
        // An unreadable package.json is not ours; keep walking.
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the ${PACKAGE_NAME} package root above ${startDir}`);
    dir = parent;
  }
}

let modelsDir: string | undefined;

/** Absolute path of a file in `models/sentiment/`. */
export function sentimentModelFile(name: string): string {
  modelsDir ??= join(findRepoRoot(dirname(fileURLToPath(import.meta.url))), 'models', 'sentiment');
  return join(modelsDir, name);
}
