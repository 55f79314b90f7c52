import { type ChildProcess, spawn } from 'node:child_process';
import { packagePath } from '../../src/util/paths.js';
import { freePort } from './ports.js';

/** A `pgsage up` run through the built CLI, as a user starts it. */
export interface UpProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Exit code, once the process has exited and its output is read. */
  exit: Promise<number | null>;
  /** 'running' once the banner is out, 'exited' if it stopped first. */
  settled: Promise<'running' | 'exited'>;
}

/**
 * Starts `pgsage up` with `args`, without the machine's configuration file or PGSAGE_* variables (run in `cwd`),
 * and adds it to `running` for the test file to kill at the end.
 */
export function spawnUp(
  args: string[],
  options: { cwd: string; running: ChildProcess[]; env?: Record<string, string> },
): UpProcess {
  const child = spawn(process.execPath, [packagePath('bin', 'pgsage.js'), 'up', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: options.cwd,
    env: {
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PGSAGE_'))),
      ...options.env,
    },
  });
  options.running.push(child);
  let stdout = '';
  let stderr = '';
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const settled = new Promise<'running' | 'exited'>((resolve) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes('Press Ctrl-C to stop.')) resolve('running');
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    void exit.then(() => resolve('exited'));
  });
  return { child, stdout: () => stdout, stderr: () => stderr, exit, settled };
}

/** `--port … --services-port … --bridge-port … --pg-port …`, each a port free a moment ago. */
export async function portFlags(): Promise<string[]> {
  const flags: string[] = [];
  for (const flag of ['--port', '--services-port', '--bridge-port', '--pg-port']) {
    flags.push(flag, String(await freePort()));
  }
  return flags;
}

/** Whether a process of that pid is there (a signal 0 reaches it). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
