/** The ports pgsage takes, and how a user sets each: for messages that must say which setting to change. */
export interface PortSetting {
  key: string;
  flag: string;
  env: string;
  role: string;
}

export const portSettings = {
  port: { key: 'port', flag: '--port', env: 'PGSAGE_PORT', role: 'the gateway' },
  servicesPort: { key: 'servicesPort', flag: '--services-port', env: 'PGSAGE_SERVICES_PORT', role: 'the services' },
  bridgePort: { key: 'bridgePort', flag: '--bridge-port', env: 'PGSAGE_BRIDGE_PORT', role: 'the bridge' },
  pgPort: { key: 'postgres.port', flag: '--pg-port', env: 'PGSAGE_PG_PORT', role: 'the embedded PostgreSQL' },
} satisfies Record<string, PortSetting>;

export type PortRole = keyof typeof portSettings;

/** `--pg-port (postgres.port, PGSAGE_PG_PORT)`: every way to change it, since users set it any of these ways. */
export function describeSetting(setting: PortSetting): string {
  return `${setting.flag} (${setting.key}, ${setting.env})`;
}

export interface PortUse {
  role: PortRole;
  host: string;
  port: number;
}

interface PortConfig {
  host: string;
  port: number;
  servicesPort: number;
  bridgePort: number;
  postgres: { port: number; upstream?: string };
}

/** The ports a start will bind: port 0 (the system picks) is left out, and the PostgreSQL port in upstream mode. */
export function portsInUse(config: PortConfig): PortUse[] {
  const uses: PortUse[] = [
    { role: 'port', host: config.host, port: config.port },
    { role: 'servicesPort', host: config.host, port: config.servicesPort },
    { role: 'bridgePort', host: config.host, port: config.bridgePort },
  ];
  // The embedded server listens on loopback whatever `host` says.
  if (!config.postgres.upstream) uses.push({ role: 'pgPort', host: '127.0.0.1', port: config.postgres.port });
  return uses.filter((use) => use.port !== 0);
}

/** Two roles given the same port: the second to bind would fail, after the first had started. */
export function duplicatePorts(config: PortConfig): string[] {
  const seen = new Map<number, PortRole>();
  const problems: string[] = [];
  for (const use of portsInUse(config)) {
    const first = seen.get(use.port);
    if (first) {
      problems.push(
        `${portSettings[use.role].key}: ${use.port} is already the port of ${portSettings[first].role} (${portSettings[first].key}); give each its own port`,
      );
    } else {
      seen.set(use.port, use.role);
    }
  }
  return problems;
}

/** The message for a port someone else holds, naming the setting to change. */
export function portTakenMessage(use: PortUse): string {
  const setting = portSettings[use.role];
  return (
    `port ${use.port} for ${setting.role} is already in use on ${use.host}. ` +
    `Stop what uses it, or choose another port with ${describeSetting(setting)}.`
  );
}
