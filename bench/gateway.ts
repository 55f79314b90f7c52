/**
 * Gateway pass-through cost and per-row bridge round trip.
 *
 *   node dist/bench/gateway.js [seconds]
 *
 * pgbench -S with 4 clients straight to PostgreSQL and through the gateway,
 * alternating, in the same run; PgBouncer (session mode) beside them when the
 * Debian package is installed. Then the added latency per round trip with one
 * client, and the bridge's per-call cost (dblink → gateway → back).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { commandExists, ratio, run, startBenchStack, table } from './support.js';

const seconds = Number(process.argv[2] ?? 10);
const env = { ...process.env, PGPASSWORD: 'postgres' };

async function pgbench(
  port: number,
  clients: number,
  mode = 'simple',
): Promise<{ tps: number; latencyMs: number; failed: number }> {
  const result = await run(
    'pgbench',
    [
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-U',
      'postgres',
      '-S',
      '-M',
      mode,
      '-c',
      String(clients),
      '-j',
      String(Math.min(clients, 2)),
      '-T',
      String(seconds),
      'postgres',
    ],
    { env },
  );
  if (result.status !== 0) throw new Error(`pgbench failed: ${result.stderr}`);
  const tps = Number(/tps = ([\d.]+)/.exec(result.stdout)?.[1]);
  const latencyMs = Number(/latency average = ([\d.]+) ms/.exec(result.stdout)?.[1]);
  const failed = Number(/number of failed transactions: (\d+)/.exec(result.stdout)?.[1] ?? 0);
  return { tps, latencyMs, failed };
}

function startPgbouncer(pgPort: number): { port: number; stop: () => void } | undefined {
  if (!commandExists('pgbouncer')) return undefined;
  const dir = mkdtempSync(path.join(tmpdir(), 'pgbouncer-'));
  const port = pgPort + 1000;
  writeFileSync(path.join(dir, 'users.txt'), '"postgres" "postgres"\n');
  writeFileSync(
    path.join(dir, 'pgbouncer.ini'),
    `[databases]\npostgres = host=127.0.0.1 port=${pgPort} dbname=postgres\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = ${port}\nauth_type = plain\nauth_file = ${dir}/users.txt\npool_mode = session\nmax_client_conn = 100\ndefault_pool_size = 20\nunix_socket_dir =\nlogfile = ${dir}/pgbouncer.log\npidfile = ${dir}/pgbouncer.pid\n`,
  );
  const asUser = process.getuid?.() === 0 ? ['-u', 'postgres'] : [];
  if (process.getuid?.() === 0) spawnSync('chown', ['-R', 'postgres', dir]);
  const started = spawnSync('pgbouncer', ['-d', ...asUser, path.join(dir, 'pgbouncer.ini')], { encoding: 'utf8' });
  if (started.status !== 0) return undefined;
  return {
    port,
    stop: () => {
      spawnSync('sh', ['-c', `kill $(cat ${dir}/pgbouncer.pid)`]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function bridgeRoundTrip(port: number, calls: number): Promise<number> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password: 'postgres',
    database: 'postgres',
  });
  client.on('error', () => {}); // (reported by the statement that meets it)
  await client.connect();
  await client.query('CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE');
  await client.query(`SELECT aws_ml.bridge_call('{"op":"ping"}')`); // connect dblink once
  const started = performance.now();
  await client.query(`SELECT count(aws_ml.bridge_call('{"op":"ping"}')) FROM generate_series(1, ${calls})`);
  const perCall = ((performance.now() - started) * 1000) / calls;
  await client.end();
  return perCall;
}

async function main(): Promise<void> {
  const stack = await startBenchStack();
  try {
    const init = spawnSync(
      'pgbench',
      ['-i', '-s', '10', '-q', '-h', '127.0.0.1', '-p', String(stack.directPort), '-U', 'postgres', 'postgres'],
      { env, encoding: 'utf8' },
    );
    if (init.status !== 0) throw new Error(init.stderr);
    const bouncer = startPgbouncer(stack.directPort);
    const rows: (string | number)[][] = [['target', 'round', 'tps', 'failed']];
    const totals = { direct: 0, gateway: 0, pgbouncer: 0 };
    for (let round = 1; round <= 2; round++) {
      for (const [name, port] of [
        ['direct', stack.directPort],
        ['gateway', stack.gatewayPort],
        ...(bouncer ? [['pgbouncer', bouncer.port]] : []),
      ] as [keyof typeof totals, number][]) {
        const result = await pgbench(port, 4);
        totals[name] += result.tps;
        rows.push([name, round, result.tps.toFixed(0), result.failed]);
      }
    }
    console.log(`pgbench -S, 4 clients, ${seconds} s per run\n${table(rows)}\n`);
    console.log(`gateway / direct TPS: ${ratio(totals.gateway, totals.direct)}  (bar: ≥ 0.70×)`);
    if (bouncer) console.log(`pgbouncer (session mode) / direct TPS: ${ratio(totals.pgbouncer, totals.direct)}`);
    else console.log('pgbouncer: not installed (apt-get install pgbouncer to compare)');
    for (const mode of ['extended', 'prepared']) {
      const direct = await pgbench(stack.directPort, 4, mode);
      const gateway = await pgbench(stack.gatewayPort, 4, mode);
      const pooled = bouncer ? await pgbench(bouncer.port, 4, mode) : undefined;
      console.log(
        `-M ${mode}: gateway / direct TPS ${ratio(gateway.tps, direct.tps)} (failed: ${gateway.failed})` +
          (pooled ? `, pgbouncer / direct ${ratio(pooled.tps, direct.tps)}` : ''),
      );
    }
    const single = [await pgbench(stack.directPort, 1), await pgbench(stack.gatewayPort, 1)];
    console.log(
      `added latency per round trip, 1 client: ${((single[1].latencyMs - single[0].latencyMs) * 1000).toFixed(0)} µs (direct ${(single[0].latencyMs * 1000).toFixed(0)} µs, gateway ${(single[1].latencyMs * 1000).toFixed(0)} µs)`,
    );
    const perCall = await bridgeRoundTrip(stack.directPort, 5000);
    console.log(`per-row bridge round trip (dblink → gateway → back, no service): ${perCall.toFixed(0)} µs per call`);
    bouncer?.stop();
  } finally {
    await stack.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
