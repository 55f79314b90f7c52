import type { Command } from 'commander';
import { type Config, type ConfigInput, configSchema, loadConfig } from '../config/index.js';

/**
 * The built-in settings, for help texts only: the options themselves get no defaults, or a flag left out
 * would override what the configuration file or environment sets.
 */
const defaults = configSchema.parse({});

/** Where the configuration comes from: for commands that read it but start no servers (e.g. `pgsage bucket`). */
export function withConfigFileOptions(command: Command): Command {
  return command
    .option('-c, --config <file>', 'configuration file (JSON); default ./pgsage.config.json if present')
    .option('-d, --data-dir <dir>', `data directory (env PGSAGE_DATA_DIR; default ./${defaults.dataDir})`);
}

/** The flags of `pgsage up`: the configuration file and data directory, plus addresses, ports and logging. */
export function withConfigOptions(command: Command): Command {
  return withConfigFileOptions(command)
    .option(
      '--host <address>',
      `address to bind the gateway, bridge and services (env PGSAGE_HOST; default ${defaults.host})`,
    )
    .option('-p, --port <port>', `gateway port clients connect to (env PGSAGE_PORT; default ${defaults.port})`)
    .option(
      '--services-port <port>',
      `AWS-compatible services port (env PGSAGE_SERVICES_PORT; default ${defaults.servicesPort})`,
    )
    .option(
      '--bridge-port <port>',
      `port the database reaches for per-row calls (env PGSAGE_BRIDGE_PORT; default ${defaults.bridgePort})`,
    )
    .option(
      '--pg-port <port>',
      `port of the embedded PostgreSQL (env PGSAGE_PG_PORT; default ${defaults.postgres.port})`,
    )
    .option('--upstream <url>', 'use an existing PostgreSQL ≥ 14 instead of the embedded one (env PGSAGE_UPSTREAM)')
    .option(
      '--log-level <level>',
      `fatal|error|warn|info|debug|trace|silent (env PGSAGE_LOG_LEVEL; default ${defaults.log.level})`,
    )
    .option('--log-stderr', 'also write structured logs to stderr');
}

interface ConfigFlags {
  config?: string;
  dataDir?: string;
  host?: string;
  port?: string;
  servicesPort?: string;
  bridgePort?: string;
  pgPort?: string;
  upstream?: string;
  logLevel?: string;
  logStderr?: boolean;
}

export function configFromFlags(flags: ConfigFlags): Config {
  const overrides: Record<string, unknown> = {
    dataDir: flags.dataDir,
    host: flags.host,
    port: flags.port,
    servicesPort: flags.servicesPort,
    bridgePort: flags.bridgePort,
    postgres: { port: flags.pgPort, upstream: flags.upstream },
    log: { level: flags.logLevel, stderr: flags.logStderr },
  };
  return loadConfig({ file: flags.config, overrides: overrides as ConfigInput, onWarning: warnOnStderr });
}

/** Configuration warnings (see LoadOptions.onWarning): on stderr, where they do not mix with a command's output. */
export function warnOnStderr(message: string): void {
  process.stderr.write(`pgsage: warning: ${message}\n`);
}
