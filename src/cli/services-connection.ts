/**
 * What the CLI commands that talk to a running pgsage's service edge through the
 * AWS SDK (`pgsage endpoint …`, `pgsage train`) share: where they print, the
 * --services-url/--region options, the SDK settings and readable errors.
 */
import type { Command } from 'commander';
import { repeatedOptions } from '../util/shell.js';

export const DEFAULT_SERVICES_URL = 'http://127.0.0.1:4566';

/** Where the commands write; tests capture it. */
export interface CliOutput {
  out(text: string): void;
  /** Progress that overwrites itself on a terminal. */
  progress(text: string): void;
}

export const stdio: CliOutput = {
  out: (text) => process.stdout.write(text),
  progress: (text) => {
    if (process.stdout.isTTY) process.stdout.write(`\r\x1b[2K${text}`);
  },
};

export interface ConnectionFlags {
  servicesUrl?: string;
  region?: string;
}

export function addConnectionOptions(command: Command, regionHelp: string): Command {
  return command
    .option('--services-url <url>', `pgsage service edge (env PGSAGE_SERVICES_URL, default ${DEFAULT_SERVICES_URL})`)
    .option(
      '--region <region>',
      `${regionHelp} (env AWS_REGION, AWS_DEFAULT_REGION, then PGSAGE_REGION; default us-east-1)`,
    );
}

/** The connection options the user gave, to repeat in a command printed for them to run next. */
export function connectionArgs(flags: ConnectionFlags): string {
  return repeatedOptions([
    ['--services-url', flags.servicesUrl],
    ['--region', flags.region],
  ]);
}

/** The edge's URL, the region, and settings for AWS SDK clients pointed at them. */
export function serviceConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env) {
  const url = flags.servicesUrl ?? env.PGSAGE_SERVICES_URL ?? DEFAULT_SERVICES_URL;
  // AWS_DEFAULT_REGION after AWS_REGION, as the AWS CLI v2 reads them: users of the AWS CLI v1 set only
  // AWS_DEFAULT_REGION. An empty variable counts as unset, as for the configuration's variables.
  const region = flags.region || env.AWS_REGION || env.AWS_DEFAULT_REGION || env.PGSAGE_REGION || 'us-east-1';
  const sdkConfig = {
    endpoint: url,
    region,
    // pgsage does not need credentials unless it was set up to check signatures; then the usual ones apply.
    ...(env.AWS_ACCESS_KEY_ID ? {} : { credentials: { accessKeyId: 'pgsage', secretAccessKey: 'pgsage' } }),
    maxAttempts: 1,
  };
  return { url, region, sdkConfig };
}

/** SDK and network failures as one line a user can act on. */
export function friendlyError(error: unknown, url: string): Error {
  const e = error as Error & { code?: string; OriginalMessage?: string };
  if (e.code === 'ECONNREFUSED' || /ECONNREFUSED/.test(e.message ?? '')) {
    return new Error(
      `cannot reach pgsage's services at ${url}. Is pgsage running (pgsage up)? Use --services-url to point elsewhere.`,
    );
  }
  if (e.name === 'ModelError' && e.OriginalMessage)
    return new Error(`the model rejected the request: ${e.OriginalMessage}`);
  return e instanceof Error ? e : new Error(String(error));
}
