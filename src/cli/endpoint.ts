/**
 * `pgsage endpoint …`: deploy, list, describe, delete and invoke SageMaker-style
 * endpoints on a running pgsage, for people who do not use the AWS CLI. It talks
 * to the service edge through the AWS SDK, exactly as any other client would.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  CreateEndpointCommand,
  CreateEndpointConfigCommand,
  CreateModelCommand,
  DeleteEndpointCommand,
  DeleteEndpointConfigCommand,
  DeleteModelCommand,
  DescribeEndpointCommand,
  type DescribeEndpointCommandOutput,
  DescribeEndpointConfigCommand,
  DescribeModelCommand,
  ListEndpointsCommand,
  SageMakerClient,
  UpdateEndpointCommand,
} from '@aws-sdk/client-sagemaker';
import { InvokeEndpointCommand, SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import type { Command } from 'commander';
import { validName } from '../services/sagemaker/names.js';
import {
  addConnectionOptions,
  type CliOutput,
  type ConnectionFlags,
  connectionArgs,
  friendlyError,
  serviceConnection,
  stdio,
} from './services-connection.js';

export const ALGORITHMS = ['xgboost', 'linear-learner', 'randomcutforest', 'onnx'] as const;
type Algorithm = (typeof ALGORITHMS)[number];

const VARIANT = 'AllTraffic';
const REGION_HELP = 'region the endpoints live in';

interface Clients {
  url: string;
  control: SageMakerClient;
  runtime: SageMakerRuntimeClient;
}

function clients(flags: ConnectionFlags): Clients {
  const { url, sdkConfig } = serviceConnection(flags);
  return { url, control: new SageMakerClient(sdkConfig), runtime: new SageMakerRuntimeClient(sdkConfig) };
}

/** Runs a command's work with clients, turning SDK and network failures into one readable line. */
async function withClients<T>(flags: ConnectionFlags, work: (c: Clients) => Promise<T>): Promise<T> {
  const c = clients(flags);
  try {
    return await work(c);
  } catch (error) {
    throw friendlyError(error, c.url);
  } finally {
    c.control.destroy();
    c.runtime.destroy();
  }
}

function isMissing(error: unknown): boolean {
  const e = error as Error;
  return e?.name === 'ValidationException' && /^Could not find/.test(e.message);
}

/** Registers `pgsage endpoint deploy|list|describe|delete|invoke` on the program. */
export function registerEndpointCommands(program: Command, output: CliOutput = stdio): Command {
  // On `endpoint` (`pgsage endpoint --services-url … list`) and on each subcommand, whose --help is where people
  // look; the parent's copy takes the value wherever it stands.
  const endpoint = addConnectionOptions(
    program.command('endpoint').description('deploy and use SageMaker-compatible model endpoints on a running pgsage'),
    REGION_HELP,
  );
  const subcommand = (nameAndArgs: string) => addConnectionOptions(endpoint.command(nameAndArgs), REGION_HELP);

  subcommand('deploy <name>')
    .description(
      'serve a model file (or s3:// object) as an endpoint; redeploying an existing endpoint swaps its model',
    )
    .requiredOption('-m, --model <file-or-url>', 'model artifact: a local file, file:///path or s3://bucket/key')
    .option('-a, --algorithm <algorithm>', `one of ${ALGORITHMS.join(', ')} (default: onnx for .onnx files)`)
    .option('--timeout <seconds>', 'how long to wait for the endpoint to be in service', '120')
    .action(async (name: string, flags: { model: string; algorithm?: string; timeout: string }, command: Command) => {
      checkEndpointName(name);
      const connection = command.optsWithGlobals<ConnectionFlags>();
      await withClients(connection, (c) => deploy(c, output, name, flags, connectionArgs(connection)));
    });

  subcommand('list')
    .description('list endpoints and their status')
    .action(async (_flags: unknown, command: Command) => {
      const connection = command.optsWithGlobals<ConnectionFlags>();
      await withClients(connection, (c) => list(c, output, connectionArgs(connection)));
    });

  subcommand('describe <name>')
    .description('show an endpoint, its configuration and model')
    .action(async (name: string, _flags: unknown, command: Command) => {
      await withClients(command.optsWithGlobals(), (c) => describe(c, output, name));
    });

  subcommand('delete <name>')
    .description('delete an endpoint (and the configuration and model `deploy` made for it)')
    .option('--keep-model', 'keep the endpoint configuration and model')
    .action(async (name: string, flags: { keepModel?: boolean }, command: Command) => {
      await withClients(command.optsWithGlobals(), (c) => remove(c, output, name, flags.keepModel === true));
    });

  subcommand('invoke <name>')
    .description('send rows to an endpoint and print its answer')
    .option('-b, --body <text>', "request body, e.g. '1.5,2,0' (one row per line)")
    .option('-f, --file <file>', 'read the request body from a file')
    .option('--content-type <type>', 'text/csv, application/json or application/jsonlines', 'text/csv')
    .option('--accept <type>', 'response type (default: same as the request)')
    .action(
      async (
        name: string,
        flags: { body?: string; file?: string; contentType: string; accept?: string },
        command: Command,
      ) => {
        await withClients(command.optsWithGlobals(), (c) => invoke(c, output, name, flags));
      },
    );

  return endpoint;
}

// ── deploy ──────────────────────────────────────────────────────────────────

async function deploy(
  c: Clients,
  output: CliOutput,
  name: string,
  flags: { model: string; algorithm?: string; timeout: string },
  again: string,
): Promise<void> {
  const modelDataUrl = modelUrl(flags.model);
  const algorithm = chooseAlgorithm(flags.algorithm, flags.model);
  const timeoutMs = Number(flags.timeout) * 1000;
  if (!(timeoutMs > 0)) throw new Error(`--timeout must be a number of seconds, got ${flags.timeout}`);

  // Every deploy makes a model and configuration of its own, so a redeploy can swap them in with UpdateEndpoint.
  const versionName = versioned(name);
  await c.control.send(
    new CreateModelCommand({
      ModelName: versionName,
      PrimaryContainer: { Image: `pgsage/${algorithm}:latest`, ModelDataUrl: modelDataUrl },
    }),
  );
  await c.control.send(
    new CreateEndpointConfigCommand({
      EndpointConfigName: versionName,
      ProductionVariants: [
        { VariantName: VARIANT, ModelName: versionName, InitialInstanceCount: 1, InstanceType: 'ml.m5.large' },
      ],
    }),
  );
  const previous = await describeOrUndefined(c, name);
  if (previous) {
    await c.control.send(new UpdateEndpointCommand({ EndpointName: name, EndpointConfigName: versionName }));
  } else {
    await c.control.send(new CreateEndpointCommand({ EndpointName: name, EndpointConfigName: versionName }));
  }

  const verb = previous ? 'Updating' : 'Deploying';
  const what = `${name} (${algorithm}, ${path.posix.basename(flags.model)})`;
  const started = Date.now();
  output.progress(`${verb} ${what} …`);
  const done = await waitUntilSettled(c, name, timeoutMs, (status) =>
    output.progress(`${verb} ${what} … ${status} ${seconds(Date.now() - started)}`),
  );
  output.progress('');
  if (done.EndpointStatus === 'Failed')
    throw new Error(`endpoint ${name} failed: ${done.FailureReason ?? 'no reason given'}`);
  if (done.EndpointConfigName !== versionName) {
    throw new Error(
      `updating ${name} failed, it still serves its previous model: ${done.FailureReason ?? 'no reason given'}`,
    );
  }
  if (previous?.EndpointConfigName && previous.EndpointConfigName !== versionName) {
    await removeDeployArtifacts(c, name, previous.EndpointConfigName);
  }
  output.out(
    `Endpoint ${what} is InService (${seconds(Date.now() - started)}).\n` +
      `  Try it:  pgsage endpoint invoke ${name}${again} --body '<comma-separated features>'\n` +
      `  In SQL:  SELECT aws_sagemaker.invoke_endpoint('${name}', NULL, <features>);\n`,
  );
}

/**
 * Refuses a name SageMaker would refuse, before anything is created: otherwise the first complaint is about
 * the model name `deploy` derives from it, which the user never typed. The rule is the services' own.
 */
function checkEndpointName(name: string): void {
  if (validName(name)) return;
  throw new Error(
    `invalid endpoint name "${name}": use only letters, digits and hyphens (no underscores or dots), ` +
      'at most 63 characters, starting and ending with a letter or digit',
  );
}

function modelUrl(model: string): string {
  if (/^(s3|file):\/\//.test(model)) return model;
  const file = path.resolve(model);
  if (!existsSync(file)) throw new Error(`model file ${model} does not exist`);
  return pathToFileURL(file).href;
}

function chooseAlgorithm(flag: string | undefined, model: string): Algorithm {
  if (flag !== undefined) {
    if (!(ALGORITHMS as readonly string[]).includes(flag)) {
      throw new Error(`unknown algorithm ${flag}; use one of ${ALGORITHMS.join(', ')}`);
    }
    return flag as Algorithm;
  }
  if (model.toLowerCase().endsWith('.onnx')) return 'onnx';
  throw new Error(`which algorithm does ${model} need? Add --algorithm ${ALGORITHMS.join('|')}`);
}

/** `<name>-<UTC timestamp>`, shortened to SageMaker's 63-character limit. */
function versioned(name: string): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const millis = String(Date.now() % 1000).padStart(3, '0');
  const suffix = `${stamp}${millis}`;
  return `${name.slice(0, 62 - suffix.length)}-${suffix}`;
}

async function describeOrUndefined(c: Clients, name: string): Promise<DescribeEndpointCommandOutput | undefined> {
  try {
    return await c.control.send(new DescribeEndpointCommand({ EndpointName: name }));
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

async function waitUntilSettled(
  c: Clients,
  name: string,
  timeoutMs: number,
  onPoll: (status: string) => void,
): Promise<DescribeEndpointCommandOutput> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const described = await c.control.send(new DescribeEndpointCommand({ EndpointName: name }));
    const status = described.EndpointStatus ?? 'Unknown';
    if (!['Creating', 'Updating', 'SystemUpdating'].includes(status)) return described;
    onPoll(status);
    if (Date.now() > deadline) throw new Error(`endpoint ${name} is still ${status} after ${seconds(timeoutMs)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Deletes an endpoint configuration made by `deploy` for this endpoint, and its models. */
async function removeDeployArtifacts(c: Clients, endpointName: string, configName: string): Promise<string[]> {
  if (!configName.toLowerCase().startsWith(`${endpointName.toLowerCase()}-`)) return [];
  const removed: string[] = [];
  let modelNames: string[] = [];
  try {
    const config = await c.control.send(new DescribeEndpointConfigCommand({ EndpointConfigName: configName }));
    modelNames = (config.ProductionVariants ?? [])
      .map((v) => v.ModelName ?? '')
      .filter((m) => m.startsWith(`${endpointName}-`));
    await c.control.send(new DeleteEndpointConfigCommand({ EndpointConfigName: configName }));
    removed.push(`configuration ${configName}`);
  } catch (error) {
    if (!isMissing(error)) throw error;
  }
  for (const model of modelNames) {
    try {
      await c.control.send(new DeleteModelCommand({ ModelName: model }));
      removed.push(`model ${model}`);
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
  }
  return removed;
}

// ── list, describe, delete, invoke ──────────────────────────────────────────

async function list(c: Clients, output: CliOutput, again: string): Promise<void> {
  const rows: string[][] = [];
  let NextToken: string | undefined;
  do {
    const page = await c.control.send(
      new ListEndpointsCommand({ SortBy: 'Name', SortOrder: 'Ascending', MaxResults: 100, NextToken }),
    );
    for (const e of page.Endpoints ?? []) {
      rows.push([e.EndpointName ?? '', e.EndpointStatus ?? '', e.CreationTime ? localTime(e.CreationTime) : '']);
    }
    NextToken = page.NextToken;
  } while (NextToken);
  if (rows.length === 0) {
    output.out(
      `No endpoints. Deploy one with: pgsage endpoint deploy <name>${again} --model <file> --algorithm xgboost\n`,
    );
    return;
  }
  output.out(table([['NAME', 'STATUS', 'CREATED'], ...rows]));
}

async function describe(c: Clients, output: CliOutput, name: string): Promise<void> {
  const e = await c.control.send(new DescribeEndpointCommand({ EndpointName: name }));
  const lines = [
    `${e.EndpointName}  ${e.EndpointStatus}`,
    `  ARN:      ${e.EndpointArn}`,
    `  Config:   ${e.EndpointConfigName}`,
  ];
  try {
    const config = await c.control.send(
      new DescribeEndpointConfigCommand({ EndpointConfigName: e.EndpointConfigName }),
    );
    for (const variant of config.ProductionVariants ?? []) {
      lines.push(
        `  Variant:  ${variant.VariantName} (weight ${variant.InitialVariantWeight ?? 1}) → model ${variant.ModelName}`,
      );
      try {
        const model = await c.control.send(new DescribeModelCommand({ ModelName: variant.ModelName }));
        const container = model.PrimaryContainer ?? model.Containers?.[0];
        lines.push(`    Image:  ${container?.Image ?? '?'}`, `    Data:   ${container?.ModelDataUrl ?? '?'}`);
      } catch (error) {
        if (!isMissing(error)) throw error;
        lines.push('    (model deleted)');
      }
    }
  } catch (error) {
    if (!isMissing(error)) throw error;
    lines.push('  (endpoint configuration deleted)');
  }
  if (e.CreationTime) lines.push(`  Created:  ${localTime(e.CreationTime)}`);
  if (e.LastModifiedTime) lines.push(`  Modified: ${localTime(e.LastModifiedTime)}`);
  if (e.FailureReason) lines.push(`  Failure:  ${e.FailureReason}`);
  output.out(`${lines.join('\n')}\n`);
}

async function remove(c: Clients, output: CliOutput, name: string, keepModel: boolean): Promise<void> {
  const e = await c.control.send(new DescribeEndpointCommand({ EndpointName: name }));
  await c.control.send(new DeleteEndpointCommand({ EndpointName: name }));
  const removed = keepModel || !e.EndpointConfigName ? [] : await removeDeployArtifacts(c, name, e.EndpointConfigName);
  output.out(`Deleted endpoint ${name}${removed.length ? ` (and ${removed.join(', ')})` : ''}.\n`);
}

async function invoke(
  c: Clients,
  output: CliOutput,
  name: string,
  flags: { body?: string; file?: string; contentType: string; accept?: string },
): Promise<void> {
  if ((flags.body === undefined) === (flags.file === undefined))
    throw new Error('give the rows with either --body or --file');
  const body = flags.body !== undefined ? Buffer.from(flags.body) : readFileSync(flags.file as string);
  const response = await c.runtime.send(
    new InvokeEndpointCommand({ EndpointName: name, Body: body, ContentType: flags.contentType, Accept: flags.accept }),
  );
  const text = Buffer.from(response.Body ?? new Uint8Array()).toString('utf8');
  output.out(text.endsWith('\n') ? text : `${text}\n`);
}

// ── formatting ──────────────────────────────────────────────────────────────

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function localTime(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => row[col].length)));
  return (
    rows
      .map((row) =>
        row
          .map((cell, col) => cell.padEnd(widths[col]))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}
