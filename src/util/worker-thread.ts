import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker thread on the module `name` beside `base` (the caller's
 * import.meta.url): the compiled `name.js`, or, when pgsage runs from its
 * TypeScript sources (vitest, which does not transform worker threads), `name.ts`
 * with the type-stripping hooks of dev-ts-hooks.mjs registered first.
 */
export function startWorkerThread(base: string, name: string, options: WorkerOptions = {}): Worker {
  if (!base.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, base), options);
  const hooks = new URL('./dev-ts-hooks.mjs', import.meta.url).href;
  const entry = new URL(`./${name}.ts`, base).href;
  return new Worker(`require('node:module').register(${JSON.stringify(hooks)}); import(${JSON.stringify(entry)});`, {
    ...options,
    eval: true,
  });
}
