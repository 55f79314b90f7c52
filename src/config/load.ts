import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { describePath } from '../iam/config.js';
import { duplicatePorts, portSettings } from './ports.js';
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

/** The flags of `pgsage up` and the configuration paths they set (see src/cli/options.ts; the ports' in ports.ts). */
const flagNames: Record<string, string> = {
  dataDir: '--data-dir',
  host: '--host',
  ...Object.fromEntries(Object.values(portSettings).map((setting) => [setting.key, setting.flag])),
  'postgres.upstream': '--upstream',
  'log.level': '--log-level',
};

/** PGSAGE_* variables read elsewhere: by the client commands, tests and scripts. */
const otherVariables = [
  'PGSAGE_CONFIG',
  'PGSAGE_SERVICES_URL',
  'PGSAGE_KEEP_TEST_DATA',
  'PGSAGE_SENTIMENT_CONFIG',
  'PGSAGE_SENTIMENT_CACHE',
];

/** Values shown in messages only where they are no secret (a connection string may hold a password). */
const SECRET_PATH = /password|secret|token|accessKey|upstream/i;

function valueAt(tree: Tree, keys: readonly PropertyKey[]): unknown {
  let node: unknown = tree;
  for (const key of keys) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Tree)[key as string];
  }
  return node;
}

/** What a value should have been, in words, for the common mistakes; zod's own message otherwise. */
function expectation(issue: z.core.$ZodIssue, key: string): string {
  if (/(^|\.)port$|Port$/.test(key) && issue.code !== 'unrecognized_keys') return 'expected a port number (0–65535)';
  if (issue.code === 'invalid_value' && issue.values.length > 0) {
    return `expected one of ${issue.values.map(String).join(', ')}`;
  }
  return issue.message.replace(/^Invalid input: /, '');
}

interface Sources {
  file?: { path: string; tree: Tree };
  env: Tree;
  envNames: Map<string, string>;
  flags: Tree;
}

/**
 * One line per problem, naming where the bad value came from as the user wrote it (`PGSAGE_PORT=abc`,
 * `--port abc`, `port in ./pgsage.config.json`): the internal key alone does not say what to change.
 */
function describeIssues(error: z.ZodError, sources: Sources): string {
  return error.issues
    .map((issue) => {
      const key = issue.path.map(String).join('.');
      const problem = expectation(issue, key);
      if (issue.path.length === 0) return `  - ${sources.file ? `${sources.file.path}: ` : ''}${issue.message}`;
      const flag = flagNames[key];
      const fromFlag = valueAt(sources.flags, issue.path);
      if (flag && fromFlag !== undefined) return `  - ${flag} ${SECRET_PATH.test(key) ? '…' : fromFlag}: ${problem}`;
      const envName = sources.envNames.get(key);
      const fromEnv = valueAt(sources.env, issue.path);
      if (envName && fromEnv !== undefined) {
        return `  - ${envName}=${SECRET_PATH.test(key) ? '…' : String(fromEnv)}: ${problem}`;
      }
      if (sources.file && valueAt(sources.file.tree, issue.path) !== undefined) {
        return `  - ${describePath(issue.path)}: ${problem} (in ${sources.file.path})`;
      }
      return `  - ${describePath(issue.path)}: ${problem}`;
    })
    .join('\n');
}

/** The distance between two names in edits, for "did you mean". */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

/** PGSAGE_* variables pgsage does not read: most likely typos, which would otherwise be ignored silently. */
export function unknownVariableWarnings(env: NodeJS.ProcessEnv): string[] {
  const known = [...Object.keys(environmentVariables), ...otherVariables];
  return Object.keys(env)
    .filter((name) => name.startsWith('PGSAGE_') && !known.includes(name))
    .sort()
    .map((name) => {
      const [closest] = known
        .map((candidate) => ({ candidate, distance: editDistance(name, candidate) }))
        .sort((x, y) => x.distance - y.distance);
      const hint = closest && closest.distance <= 3 ? ` (did you mean ${closest.candidate}?)` : '';
      return `unknown environment variable ${name} is ignored${hint}`;
    });
}

export interface LoadOptions {
  /** Explicit configuration file; without it `pgsage.config.json` in the working directory is read if present. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Values from command-line flags (highest precedence). */
  overrides?: ConfigInput;
  cwd?: string;
  /** Told about settings that do not stop pgsage but are likely mistakes (unknown PGSAGE_* variables). */
  onWarning?: (message: string) => void;
}

/** Builds the one configuration object from file, environment and flags, validated. */
export function loadConfig(options: LoadOptions = {}): Config {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  const file = options.file ?? env.PGSAGE_CONFIG;
  const filePath = path.resolve(cwd, file ?? 'pgsage.config.json');
  const fromFile = readConfigFile(filePath, file !== undefined);
  const fromEnv: Tree = {};
  const envNames = new Map<string, string>();
  for (const [name, keys] of Object.entries(environmentVariables)) {
    const value = env[name];
    if (value !== undefined && value !== '') setPath(fromEnv, keys, value);
    envNames.set(keys.join('.'), name);
  }
  if (options.onWarning) for (const warning of unknownVariableWarnings(env)) options.onWarning(warning);
  const flags = (options.overrides ?? {}) as Tree;
  const merged = merge(merge(fromFile, fromEnv), flags);
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const sources = { file: { path: filePath, tree: fromFile }, env: fromEnv, envNames, flags };
    throw new ConfigError(`invalid configuration:\n${describeIssues(parsed.error, sources)}`);
  }
  const clashes = duplicatePorts(parsed.data);
  if (clashes.length) throw new ConfigError(`invalid configuration:\n${clashes.map((c) => `  - ${c}`).join('\n')}`);
  return { ...parsed.data, dataDir: path.resolve(cwd, parsed.data.dataDir) };
}
