/**
 * `pgsage up` when something is wrong: ports taken or repeated, a password
 * changed in SQL, the embedded PostgreSQL killed, a data directory the server
 * cannot reach, a bind beyond loopback. Each through the built CLI, as a user
 * meets it: what it prints, its exit code, and what it leaves running.
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { alive, portFlags, spawnUp, type UpProcess } from '../support/pgsage-up.js';
import { psql } from '../support/processes.js';

const root = mkdtempSync(path.join(tmpdir(), 'pgsage-up-failures-'));
// Run as root, pgsage runs PostgreSQL as the OS user postgres, which must traverse this (mkdtemp makes it 0700).
chmodSync(root, 0o755);
const running: ChildProcess[] = [];

afterAll(() => {
  for (const child of running) child.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

type Up = UpProcess;

function up(args: string[], env: Record<string, string> = {}): Up {
  return spawnUp(args, { cwd: root, running, env });
}

function withFlag(flags: string[], flag: string, value: string): string[] {
  const out = [...flags];
  out[out.indexOf(flag) + 1] = value;
  return out;
}

function postmasterPid(dataDir: string): number | undefined {
  const file = path.join(dataDir, 'pg', 'postmaster.pid');
  return existsSync(file) ? Number(readFileSync(file, 'utf8').split('\n')[0]) : undefined;
}

async function stopped(run: Up): Promise<number | null> {
  run.child.kill('SIGINT');
  return run.exit;
}

describe('pgsage up refuses ports it cannot have', () => {
  it('names --pg-port when another server holds it, before creating a cluster', async () => {
    const other = inject('postgres');
    const dataDir = path.join(root, 'pg-port-taken');
    const run = up(['--data-dir', dataDir, ...withFlag(await portFlags(), '--pg-port', String(other.port))]);

    expect(await run.settled).toBe('exited');
    expect(await run.exit).toBe(1);
    expect(run.stderr()).toContain(`port ${other.port} for the embedded PostgreSQL is already in use`);
    expect(run.stderr()).toContain('--pg-port (postgres.port, PGSAGE_PG_PORT)');
    expect(run.stdout()).not.toContain('pgsage is running');
    expect(existsSync(path.join(dataDir, 'pg', 'PG_VERSION'))).toBe(false);
  });

  it('names --port when the gateway port is taken', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const taken = (holder.address() as net.AddressInfo).port;
    try {
      const run = up([
        '--data-dir',
        path.join(root, 'port-taken'),
        ...withFlag(await portFlags(), '--port', String(taken)),
      ]);
      expect(await run.settled).toBe('exited');
      expect(await run.exit).toBe(1);
      expect(run.stderr()).toBe(
        `pgsage: port ${taken} for the gateway is already in use on 127.0.0.1. ` +
          'Stop what uses it, or choose another port with --port (port, PGSAGE_PORT).\n',
      );
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });

  it('refuses one port given to two roles as a configuration error', async () => {
    const flags = await portFlags();
    const run = up(['--data-dir', path.join(root, 'same-port'), ...withFlag(flags, '--services-port', flags[1])]);
    expect(await run.exit).toBe(2);
    expect(run.stderr()).toBe(
      'pgsage: invalid configuration:\n' +
        `  - servicesPort: ${flags[1]} is already the port of the gateway (port); give each its own port\n`,
    );
  });
});

describe('pgsage up and the embedded PostgreSQL', () => {
  // One cluster, in order: its password is changed by the first test, and the next ones start with the new one.
  const dataDir = path.join(root, 'cluster');

  it('fails at once when the superuser password was changed in SQL, and leaves no server running', async () => {
    const flags = await portFlags();
    const first = up(['--data-dir', dataDir, ...flags]);
    expect(await first.settled).toBe('running');
    const port = flags[1];
    const changed = await psql(
      `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
      "ALTER ROLE postgres PASSWORD 'HunterPW-9x7';",
    );
    expect(changed.stderr).toBe('');
    expect(await stopped(first)).toBe(0);

    const second = up(['--data-dir', dataDir, ...flags]);
    expect(await second.settled).toBe('exited');
    expect(await second.exit).toBe(1);
    expect(second.stderr()).toContain('PostgreSQL refused the password of "postgres"');
    expect(second.stderr()).toContain('PGSAGE_PG_PASSWORD');
    expect(second.stderr()).not.toContain('MaxListenersExceededWarning');
    const left = postmasterPid(dataDir);
    expect(left === undefined || !alive(left)).toBe(true);
  });

  it('does not print a configured password', async () => {
    const run = up(['--data-dir', dataDir, ...(await portFlags())], { PGSAGE_PG_PASSWORD: 'HunterPW-9x7' });
    expect(await run.settled).toBe('running');
    expect(run.stdout()).not.toContain('HunterPW-9x7');
    expect(run.stdout()).toMatch(
      /Connect: {3}psql postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres {3}\(password: as configured in postgres\.password or PGSAGE_PG_PASSWORD\)/,
    );
    expect(await stopped(run)).toBe(0);
  });

  it('stops with a clear message when PostgreSQL is killed while pgsage runs', async () => {
    const run = up(['--data-dir', dataDir, ...(await portFlags())], { PGSAGE_PG_PASSWORD: 'HunterPW-9x7' });
    expect(await run.settled).toBe('running');
    process.kill(postmasterPid(dataDir) as number, 'SIGKILL');

    expect(await run.exit).toBe(1);
    expect(run.stderr()).toContain(
      `pgsage: PostgreSQL exited unexpectedly (signal SIGKILL); stopping pgsage. See ${path.join(dataDir, 'logs', 'postgres.log')}, then start pgsage again.`,
    );
    const log = readFileSync(path.join(dataDir, 'logs', 'pgsage.log'), 'utf8');
    expect(log).toContain('"signal":"SIGKILL","msg":"embedded PostgreSQL exited unexpectedly"');
  });

  it.runIf(process.getuid?.() === 0)(
    'says a data directory the server cannot reach is the problem, before initdb',
    async () => {
      const closed = path.join(root, 'closed');
      mkdirSync(closed, { mode: 0o700 });
      const run = up(['--data-dir', path.join(closed, 'data'), ...(await portFlags())]);
      expect(await run.exit).toBe(1);
      expect(run.stderr()).toContain('PostgreSQL runs as the OS user "postgres" when pgsage runs as root');
      expect(run.stderr()).not.toContain('initdb');
    },
  );
});

describe('pgsage up tells where to connect', () => {
  it('warns when binding beyond loopback with the default password, and prints a usable address', async () => {
    const run = up(['--data-dir', path.join(root, 'exposed'), '--host', '0.0.0.0', ...(await portFlags())]);
    expect(await run.settled).toBe('running');
    expect(run.stderr()).toContain('WARNING: --host 0.0.0.0 lets other machines reach');
    expect(run.stderr()).toContain('WARNING: the database superuser "postgres" has the default password "postgres"');
    expect(run.stdout()).toMatch(/psql postgres:\/\/postgres:postgres@127\.0\.0\.1:\d+\/postgres\n/);
    expect(run.stdout()).toMatch(/--endpoint-url http:\/\/127\.0\.0\.1:\d+\)/);
    expect(run.stdout()).not.toContain('0.0.0.0');
    expect(await stopped(run)).toBe(0);
  });

  it('does not print the password of an upstream server', async () => {
    const server = inject('postgres');
    const database = `up_${process.pid}`;
    const admin = new pg.Client({ ...server, database: 'postgres' });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    try {
      const upstream = `postgres://${server.user}:${server.password}@127.0.0.1:${server.port}/${database}`;
      const run = up(['--data-dir', path.join(root, 'upstream'), '--upstream', upstream, ...(await portFlags())]);
      expect(await run.settled).toBe('running');
      expect(run.stdout()).not.toContain(`:${server.password}@`);
      expect(run.stdout()).toContain(`(password: the upstream server's)`);
      expect(await stopped(run)).toBe(0);
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await admin.end();
    }
  });
});
