import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { describePath } from '../iam/config.js';
import { duplicatePorts } from './ports.js';
import { type Config, type ConfigInput, configSchema } from './schema.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Environment variables and the configuration paths they set. */
const environmentVariables: Record<string, string[]> = {
  PGSAGE_DATA_DIR: ['dataDir'],
  PGSAGE_HOST: ['host'],
  PGSAGE_PORT: ['port'],
  PGSAGE_SERVICES_PORT: ['servicesPort'],
  PGSAGE_BRIDGE_PORT: ['bridgePort'],
  PGSAGE_UPSTREAM: ['postgres', 'upstream'],
  PGSAGE_PG_PORT: ['postgres', 'port'],
  PGSAGE_PG_PASSWORD: ['postgres', 'password'],
  PGSAGE_REGION: ['region'],
  PGSAGE_BACKEND: ['backend'],
  PGSAGE_LOG_LEVEL: ['log', 'level'],
  PGSAGE_TLS_CERT: ['tls', 'cert'],
  PGSAGE_TLS_KEY: ['tls', 'key'],
  PGSAGE_EDGE_ANONYMOUS: ['iam', 'anonymous'],
};

type Tree = { [key: string]: unknown };

function setPath(target: Tree, keys: string[], value: unknown): void {
  let node = target;
  for (const key of keys.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Tree;
  }
  node[keys[keys.length - 1]] = value;
}

function merge(base: Tree, override: Tree): Tree {
  const out: Tree = { ...base };
  for (const [key, value] of Object.entries(override)) {
    if (value === undefined) continue;
    const existing = out[key];
    out[key] =
      typeof value === 'object' && value !== null && !Array.isArray(value) && typeof existing === 'object' && existing
        ? merge(existing as Tree, value as Tree)
        : value;
  }
  return out;
}

function readConfigFile(file: string, required: boolean): Tree {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if (!required && (error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError(`cannot read configuration file ${file}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text) as Tree;
  } catch (error) {
    throw new ConfigError(`configuration file ${file} is not valid JSON: ${(error as Error).message}`);
  }
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `  - ${issue.path.length ? describePath(issue.path) : '(top level)'}: ${issue.message}`)
    .join('\n');
}

export interface LoadOptions {
  /** Explicit configuration file; without it `pgsage.config.json` in the working directory is read if present. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Values from command-line flags (highest precedence). */
  overrides?: ConfigInput;
  cwd?: string;
}

/** Builds the one configuration object from file, environment and flags, validated. */
export function loadConfig(options: LoadOptions = {}): Config {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  const file = options.file ?? env.PGSAGE_CONFIG;
  const fromFile = readConfigFile(path.resolve(cwd, file ?? 'pgsage.config.json'), file !== undefined);
  const fromEnv: Tree = {};
  for (const [name, keys] of Object.entries(environmentVariables)) {
    const value = env[name];
    if (value !== undefined && value !== '') setPath(fromEnv, keys, value);
  }
  const merged = merge(merge(fromFile, fromEnv), (options.overrides ?? {}) as Tree);
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) throw new ConfigError(`invalid configuration:\n${describeIssues(parsed.error)}`);
  const clashes = duplicatePorts(parsed.data);
  if (clashes.length) throw new ConfigError(`invalid configuration:\n${clashes.map((c) => `  - ${c}`).join('\n')}`);
  return { ...parsed.data, dataDir: path.resolve(cwd, parsed.data.dataDir) };
}
