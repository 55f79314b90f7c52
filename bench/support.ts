import type { RunningPgsage } from '../src/app.js';
import type { ConfigInput } from '../src/config/index.js';
import { startEphemeralPgsage } from '../test/support/ephemeral.js';
import { freePort } from '../test/support/ports.js';

export interface BenchStack {
  pgsage: RunningPgsage;
  /** Port of PostgreSQL itself (the baseline). */
  directPort: number;
  gatewayPort: number;
  stop(): Promise<void>;
}

/** A whole pgsage on the embedded PostgreSQL in a throwaway data directory. */
export async function startBenchStack(overrides: ConfigInput = {}): Promise<BenchStack> {
  // (As bin/pgsage.js: the pinned SDK's notice about Node versions of its future releases is noise here.)
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { pgsage, stop } = await startEphemeralPgsage('pgsage-bench-', {
    ...overrides,
    postgres: { port: await freePort() },
    log: { level: 'silent' },
  });
  return { pgsage, directPort: pgsage.config.postgres.port, gatewayPort: pgsage.gateway.port, stop };
}

export function ratio(value: number, baseline: number): string {
  return `${(value / baseline).toFixed(2)}×`;
}

export function table(rows: (string | number)[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r) => r.map((c, i) => String(c).padEnd(widths[i])).join('  ')).join('\n');
}

export { commandExists, runCommand as run } from '../src/util/run-command.js';
