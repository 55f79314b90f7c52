import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type RunningPgsage, startPgsage } from '../../src/app.js';
import { type ConfigInput, loadConfig } from '../../src/config/index.js';
import { silentLogger } from '../../src/util/log.js';

export interface EphemeralPgsage {
  pgsage: RunningPgsage;
  /** Stops pgsage and removes its data directory. */
  stop(): Promise<void>;
}

/**
 * A whole pgsage (gateway, bridge, services) on ports the system picks, in a
 * throwaway data directory, configured only by `overrides` (no environment, no
 * config file). Shared by the tests and bench/; free of vitest for the latter.
 */
export async function startEphemeralPgsage(folderPrefix: string, overrides: ConfigInput): Promise<EphemeralPgsage> {
  const dataDir = mkdtempSync(path.join(tmpdir(), folderPrefix));
  let pgsage: RunningPgsage;
  try {
    const config = loadConfig({
      env: {},
      cwd: dataDir,
      overrides: { dataDir, port: 0, servicesPort: 0, bridgePort: 0, ...overrides },
    });
    pgsage = await startPgsage(config, silentLogger);
  } catch (error) {
    // Tests of configuration errors expect this: leave nothing behind.
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    pgsage,
    async stop() {
      await pgsage.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
