import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type RunningPgsage, startPgsage } from '../src/app.js';
import { type ConfigInput, loadConfig } from '../src/config/index.js';
import { silentLogger } from '../src/util/log.js';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface BenchStack {
  pgsage: RunningPgsage;
  /** Port of PostgreSQL itself (the baseline). */
  directPort: number;
  gatewayPort: number;
  stop(): Promise<void>;
}

/** A whole pgsage on the embedded PostgreSQL in a throwaway data directory. */
export async function startBenchStack(overrides: ConfigInput = {}): Promise<BenchStack> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'pgsage-bench-'));
  const config = loadConfig({
    env: {},
    cwd: dataDir,
    overrides: {
      dataDir,
      port: 0,
      servicesPort: 0,
      bridgePort: 0,
      ...overrides,
      postgres: { port: await freePort() },
      log: { level: 'silent' },
    },
  });
  const pgsage = await startPgsage(config, silentLogger);
  return {
    pgsage,
    directPort: config.postgres.port,
    gatewayPort: pgsage.gateway.port,
    async stop() {
      await pgsage.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function ratio(value: number, baseline: number): string {
  return `${(value / baseline).toFixed(2)}×`;
}

export function table(rows: (string | number)[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r) => r.map((c, i) => String(c).padEnd(widths[i])).join('  ')).join('\n');
}

export { commandExists, runCommand as run } from '../src/util/run-command.js';
