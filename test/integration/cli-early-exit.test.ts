/**
 * The built CLI (bin/pgsage.js) failing early: one line on stderr, a non-zero
 * exit code and no stack trace, even when it already created its log file.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packagePath } from '../../src/util/paths.js';

const dataDir = mkdtempSync(path.join(tmpdir(), 'pgsage-early-exit-'));
const helpers: ChildProcess[] = [];

afterAll(() => {
  for (const child of helpers) child.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

function pgsage(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [packagePath('bin', 'pgsage.js'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('pgsage failing early', () => {
  it('up on a data directory in use prints the reason and exits 1 without a stack trace', async () => {
    // A live process whose command line names postgres, recorded as the cluster's postmaster: what a
    // second `pgsage up` finds when another one runs on the same data directory.
    const postmaster = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)', 'postgres'], {
      stdio: 'ignore',
    });
    helpers.push(postmaster);
    const pid = postmaster.pid as number;
    mkdirSync(path.join(dataDir, 'pg'), { recursive: true });
    writeFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), `${pid}\n${path.join(dataDir, 'pg')}\n`);

    const result = await pgsage('up', '--data-dir', dataDir);

    expect(result.stderr).toBe(
      `pgsage: PostgreSQL is already running on ${path.join(dataDir, 'pg')} (pid ${pid}). ` +
        `Another pgsage may be using this data directory; if not, stop it with: kill -INT ${pid}\n`,
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^Starting pgsage/);
  });
});
