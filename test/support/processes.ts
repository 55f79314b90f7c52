import { runCommand } from '../../src/util/run-command.js';

export { type CommandResult, commandExists, runCommand as run } from '../../src/util/run-command.js';

/** psql against a connection string, unaligned and quiet, stopping at the first error. */
export function psql(url: string, sql: string, extra: string[] = []) {
  return runCommand('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At', ...extra], { input: sql });
}

/** Polls until `check` returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
