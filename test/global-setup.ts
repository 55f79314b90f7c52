import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { EmbeddedPostgres } from '../src/db/embedded.js';
import { silentLogger } from '../src/util/log.js';
import { packagePath } from '../src/util/paths.js';
import { freePort } from './support/ports.js';

declare module 'vitest' {
  export interface ProvidedContext {
    postgres: { host: string; port: number; user: string; password: string };
  }
}

/** One real PostgreSQL for the whole run; every test file works in databases of its own. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'pgsage-test-'));
  const port = await freePort();
  const server = new EmbeddedPostgres({
    dataDir,
    port,
    user: 'postgres',
    password: 'postgres',
    extensionSource: packagePath('src', 'extension', 'sql'),
    settings: { 'aws_ml.enable_function_migration': 'on', max_connections: '200', max_prepared_transactions: '4' },
    logger: silentLogger,
  });
  await server.start();
  project.provide('postgres', { host: '127.0.0.1', port, user: 'postgres', password: 'postgres' });
  return async () => {
    await server.stop();
    if (!process.env.PGSAGE_KEEP_TEST_DATA) rmSync(dataDir, { recursive: true, force: true });
  };
}
