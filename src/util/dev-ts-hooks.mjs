/**
 * Module hooks that let a worker thread run the TypeScript sources directly.
 *
 * Only used when pgsage runs from `src/` (vitest, which transforms TypeScript for
 * the test process but not for the worker threads it starts); the compiled
 * package starts its workers from `dist/` and never loads this file. Node 20
 * cannot strip types itself, so the transform comes from a dev dependency:
 * rolldown's (fast, native; present through vitest), else TypeScript's.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const transform = await (async () => {
  try {
    const { transformSync } = await import('rolldown/experimental');
    return (file, source) => {
      const result = transformSync(file, source, { lang: 'ts', sourcemap: false });
      if (result.errors?.length) throw new Error(`${file}: ${result.errors[0].message}`);
      return result.code;
    };
  } catch {
    const ts = (await import('typescript')).default;
    return (file, source) =>
      ts.transpileModule(source, {
        fileName: file,
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      }).outputText;
  }
})();

/** TypeScript sources import their siblings as `./x.js`; the file on disk is `./x.ts`. */
export async function resolve(specifier, context, nextResolve) {
  if (context.parentURL?.endsWith('.ts') && specifier.startsWith('.') && specifier.endsWith('.js')) {
    const candidate = new URL(`${specifier.slice(0, -3)}.ts`, context.parentURL);
    if (existsSync(fileURLToPath(candidate))) return { url: candidate.href, format: 'module', shortCircuit: true };
  }
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  if (!url.endsWith('.ts')) return nextLoad(url, context);
  const file = fileURLToPath(url);
  return { format: 'module', source: transform(file, await readFile(file, 'utf8')), shortCircuit: true };
}
