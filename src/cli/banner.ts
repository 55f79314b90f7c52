import path from 'node:path';
import type { RunningPgsage } from '../app.js';
import { type Config, DEFAULT_PG_PASSWORD } from '../config/index.js';
import { bindsBeyondLoopback, reachableHost, urlHost } from '../util/addresses.js';
import { shellWord } from '../util/shell.js';
import { DEFAULT_SERVICES_URL } from './services-connection.js';

/** Only the built-in default password is shown: the quick start relies on it, and it is no secret. */
function showsPassword(config: Config): boolean {
  return !config.postgres.upstream && config.postgres.password === DEFAULT_PG_PASSWORD;
}

/** The `psql …` line of the banner: an address clients can use, and no configured password. */
export function connectLine(config: Config, running: RunningPgsage): string {
  const admin = running.target.adminConnection();
  const user = encodeURIComponent(String(admin.user));
  const password = showsPassword(config) ? `:${encodeURIComponent(DEFAULT_PG_PASSWORD)}` : '';
  const database = encodeURIComponent(String(admin.database));
  const url = `postgres://${user}${password}@${urlHost(reachableHost(config.host))}:${running.gateway.port}/${database}`;
  if (password) return `psql ${url}`;
  const where = config.postgres.upstream
    ? "the upstream server's"
    : 'as configured in postgres.password or PGSAGE_PG_PASSWORD';
  return `psql ${url}   (password: ${where})`;
}

export function servicesUrl(config: Config, running: RunningPgsage): string {
  return `${new URL(running.edge.url).protocol}//${urlHost(reachableHost(config.host))}:${running.edge.port}`;
}

/**
 * The options pgsage's client commands need to reach this pgsage, when they are not their defaults: those
 * commands do not read the configuration, and without them they look at port 4566 and at ./.pgsage.
 */
export function clientOptionsLine(config: Config, running: RunningPgsage, cwd = process.cwd()): string | undefined {
  const options: string[] = [];
  const url = servicesUrl(config, running);
  if (url !== DEFAULT_SERVICES_URL) options.push(`pgsage endpoint|train … --services-url ${shellWord(url)}`);
  const ownStore = config.storage.kind === 'local' && config.storage.root === undefined;
  if (ownStore && config.dataDir !== path.resolve(cwd, '.pgsage')) {
    options.push(`pgsage bucket … --data-dir ${shellWord(config.dataDir)}`);
  }
  return options.length ? options.join('; ') : undefined;
}

/** Warnings for a bind beyond loopback, before anything starts (other machines will reach these ports). */
export function exposureWarnings(config: Config): string[] {
  if (!bindsBeyondLoopback(config.host)) return [];
  const warnings = [
    `WARNING: --host ${config.host} lets other machines reach the gateway, the services and the bridge; firewall them.`,
  ];
  if (showsPassword(config)) {
    warnings.push(
      `WARNING: the database superuser "${config.postgres.user}" has the default password "${DEFAULT_PG_PASSWORD}"; ` +
        'anyone who reaches the gateway can log in. Set postgres.password (docs/operations.md).',
    );
  }
  return warnings;
}
