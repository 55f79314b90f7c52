import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';

const load = (overrides: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) =>
  loadConfig({ env, cwd: '/nonexistent', overrides });

describe('configuration of ports', () => {
  it('refuses one port for two roles, naming both', () => {
    expect(() => load({ port: 24432, servicesPort: 24432 })).toThrow(
      new ConfigError(
        'invalid configuration:\n  - servicesPort: 24432 is already the port of the gateway (port); give each its own port',
      ),
    );
    expect(() => load({ bridgePort: 24435, postgres: { port: 24435 } })).toThrow(
      'postgres.port: 24435 is already the port of the bridge (bridgePort)',
    );
  });

  it('lets port 0 repeat (the system picks each) and ignores the embedded port in upstream mode', () => {
    expect(load({ port: 0, servicesPort: 0, bridgePort: 0 }).port).toBe(0);
    const upstream = load({ port: 24432, postgres: { port: 24432, upstream: 'postgres://u:p@db:5432/app' } });
    expect(upstream.postgres.port).toBe(24432);
  });

  it('reads the embedded superuser password from PGSAGE_PG_PASSWORD', () => {
    expect(load({}, { PGSAGE_PG_PASSWORD: 'HunterPW-9x7' }).postgres.password).toBe('HunterPW-9x7');
  });
});
