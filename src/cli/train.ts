/**
 * `pgsage train`: runs a SageMaker training job for a built-in algorithm on a
 * running pgsage through the AWS SDK (CreateTrainingJob), shows its progress
 * until it ends, then prints the model artifact and the command that deploys it.
 *
 *   pgsage train --algorithm xgboost --train s3://data/churn/train --validation s3://data/churn/validation \
 *     --output s3://models/churn --hp num_round=50 --hp max_depth=5 --hp objective=binary:logistic
 */
import {
  CreateTrainingJobCommand,
  DescribeTrainingJobCommand,
  type DescribeTrainingJobCommandOutput,
  SageMakerClient,
  StopTrainingJobCommand,
} from '@aws-sdk/client-sagemaker';
import type { Command } from 'commander';
import { shellWord } from '../util/shell.js';
import {
  addConnectionOptions,
  type CliOutput,
  type ConnectionFlags,
  connectionArgs,
  friendlyError,
  serviceConnection,
  stdio,
} from './services-connection.js';

export const TRAINING_ALGORITHMS = ['xgboost', 'linear-learner', 'randomcutforest'] as const;
type TrainingAlgorithm = (typeof TRAINING_ALGORITHMS)[number];

/** The images SageMaker's documentation names for each built-in algorithm; pgsage only reads the algorithm from them. */
function imageOf(algorithm: TrainingAlgorithm, region: string): string {
  if (algorithm === 'xgboost') return `683313688378.dkr.ecr.${region}.amazonaws.com/sagemaker-xgboost:1.7-1`;
  return `382416733822.dkr.ecr.${region}.amazonaws.com/${algorithm}:1`;
}

interface TrainFlags extends ConnectionFlags {
  algorithm: string;
  train: string;
  validation?: string;
  output: string;
  hp: string[];
  name?: string;
  image?: string;
  role?: string;
  maxRuntime: string;
  wait: boolean;
}

/** Registers `pgsage train`; `output` is where it prints (tests capture it). */
export function registerTrainCommands(program: Command, output: CliOutput = stdio): Command {
  const command = program
    .command('train')
    .description(
      'train a built-in algorithm (xgboost, linear-learner, randomcutforest) as a SageMaker training job on a running pgsage',
    )
    .requiredOption('-a, --algorithm <algorithm>', TRAINING_ALGORITHMS.join(', '))
    .requiredOption(
      '--train <s3-prefix>',
      'training data: every object under s3://bucket/prefix (CSV, label first, no header)',
    )
    .option('--validation <s3-prefix>', 'validation data (same format); enables early stopping and validation metrics')
    .requiredOption('-o, --output <s3-path>', 'where the model goes: <path>/<job>/output/model.tar.gz')
    .option('--hp <name=value>', 'a hyperparameter, repeatable (e.g. --hp num_round=50 --hp max_depth=5)', collect, [])
    .option('-n, --name <job>', 'training job name (default: <algorithm>-<timestamp>)')
    .option('--image <uri>', 'training image (default: the algorithm’s SageMaker image)')
    .option('--role <arn>', 'execution role ARN recorded with the job')
    .option('--max-runtime <seconds>', 'stop the job after this long', '86400')
    .option('--no-wait', 'return once the job is created');
  return addConnectionOptions(command, 'region').action(async (flags: TrainFlags) => {
    await train(flags, output);
  });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

async function train(flags: TrainFlags, output: CliOutput): Promise<void> {
  const algorithm = flags.algorithm as TrainingAlgorithm;
  if (!TRAINING_ALGORITHMS.includes(algorithm)) {
    throw new Error(`unknown algorithm ${flags.algorithm}; use one of ${TRAINING_ALGORITHMS.join(', ')}`);
  }
  const hyperparameters: Record<string, string> = {};
  for (const pair of flags.hp) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`--hp takes name=value, got "${pair}"`);
    hyperparameters[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  for (const [flag, url] of [
    ['--train', flags.train],
    ['--validation', flags.validation],
    ['--output', flags.output],
  ]) {
    if (url !== undefined && !/^s3:\/\/[^/]+/.test(url)) throw new Error(`${flag} must be an s3:// URL, got ${url}`);
  }
  const { url, region, sdkConfig } = serviceConnection(flags);
  const name = flags.name ?? jobName(algorithm);
  const client = new SageMakerClient(sdkConfig);
  const channel = (channelName: string, uri: string) => ({
    ChannelName: channelName,
    DataSource: { S3DataSource: { S3DataType: 'S3Prefix' as const, S3Uri: uri } },
    ContentType: 'text/csv',
  });
  try {
    await client.send(
      new CreateTrainingJobCommand({
        TrainingJobName: name,
        AlgorithmSpecification: { TrainingImage: flags.image ?? imageOf(algorithm, region), TrainingInputMode: 'File' },
        RoleArn: flags.role ?? 'arn:aws:iam::000000000000:role/pgsage',
        HyperParameters: hyperparameters,
        InputDataConfig: [
          channel('train', flags.train),
          ...(flags.validation ? [channel('validation', flags.validation)] : []),
        ],
        OutputDataConfig: { S3OutputPath: flags.output },
        ResourceConfig: { InstanceType: 'ml.m5.xlarge', InstanceCount: 1, VolumeSizeInGB: 10 },
        StoppingCondition: { MaxRuntimeInSeconds: Number(flags.maxRuntime) },
      }),
    );
    if (!flags.wait) {
      output.out(
        `Training job ${name} created. Follow it with: aws sagemaker describe-training-job --training-job-name ${shellWord(name)} ` +
          `--endpoint-url ${shellWord(url)} --region ${shellWord(region)}\n`,
      );
      return;
    }
    const job = await follow(client, name, output);
    report(job, algorithm, output, connectionArgs(flags));
  } catch (error) {
    throw friendlyError(error, url);
  } finally {
    client.destroy();
  }
}

/** Polls the job, drawing a progress bar, until it is no longer running; Ctrl-C stops the job. */
async function follow(
  client: SageMakerClient,
  name: string,
  output: CliOutput,
): Promise<DescribeTrainingJobCommandOutput> {
  const started = Date.now();
  let interrupted = false;
  const onInterrupt = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    output.progress(`Stopping ${name} … (Ctrl-C again to leave it running)`);
    client.send(new StopTrainingJobCommand({ TrainingJobName: name })).catch(() => {});
  };
  process.on('SIGINT', onInterrupt);
  try {
    for (;;) {
      const job = await client.send(new DescribeTrainingJobCommand({ TrainingJobName: name }));
      if (job.TrainingJobStatus !== 'InProgress' && job.TrainingJobStatus !== 'Stopping') {
        output.progress('');
        return job;
      }
      output.progress(progressLine(job, Date.now() - started));
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}

/** e.g. `churn [##########··········] round 25/50  validation:auc=0.9312  12s` */
export function progressLine(
  job: Pick<
    DescribeTrainingJobCommandOutput,
    'TrainingJobName' | 'TrainingJobStatus' | 'SecondaryStatus' | 'SecondaryStatusTransitions'
  >,
  elapsedMs: number,
): string {
  const transition = job.SecondaryStatusTransitions?.at(-1);
  const message = transition?.StatusMessage ?? '';
  const match = /(round|epoch|tree) (\d+) of (\d+)(?:; (.*))?$/.exec(message);
  const elapsed = `${Math.round(elapsedMs / 1000)}s`;
  if (!match) return `${job.TrainingJobName} ${job.SecondaryStatus ?? job.TrainingJobStatus} … ${elapsed}`;
  const [, unit, current, total, metrics] = match;
  const width = 20;
  const filled = Math.min(width, Math.round((Number(current) / Number(total)) * width));
  // The last metric is the one that matters most (validation when there is one).
  const shown = metrics?.split(', ').at(-1) ?? '';
  return `${job.TrainingJobName} [${'#'.repeat(filled)}${'·'.repeat(width - filled)}] ${unit} ${current}/${total}  ${shown}  ${elapsed}`;
}

/** `again`: the connection options to repeat in the deploy command it prints. */
function report(
  job: DescribeTrainingJobCommandOutput,
  algorithm: TrainingAlgorithm,
  output: CliOutput,
  again: string,
): void {
  const name = job.TrainingJobName as string;
  if (job.TrainingJobStatus === 'Failed')
    throw new Error(`training job ${name} failed: ${job.FailureReason ?? 'no reason given'}`);
  if (job.TrainingJobStatus === 'Stopped') throw new Error(`training job ${name} was stopped (${job.SecondaryStatus})`);
  const artifact = job.ModelArtifacts?.S3ModelArtifacts as string;
  const metrics = (job.FinalMetricDataList ?? [])
    .map((m) => `${m.MetricName}=${round(m.Value ?? Number.NaN)}`)
    .join('  ');
  output.out(
    `Training job ${name} Completed in ${job.TrainingTimeInSeconds ?? 0}s.\n` +
      (metrics ? `  Metrics: ${metrics}\n` : '') +
      `  Model:   ${artifact}\n` +
      `  Deploy:  pgsage endpoint deploy ${name}${again} --model ${shellWord(artifact)} --algorithm ${algorithm}\n`,
  );
}

function round(value: number): string {
  return Number.isFinite(value) ? String(Math.round(value * 1e4) / 1e4) : String(value);
}

/** `<algorithm>-YYYY-MM-DD-HH-MM-SS-mmm`, the way SageMaker's Python SDK names jobs. */
function jobName(algorithm: string): string {
  const iso = new Date().toISOString(); // 2026-11-27T08:02:11.123Z
  return `${algorithm}-${iso.slice(0, 10)}-${iso.slice(11, 13)}-${iso.slice(14, 16)}-${iso.slice(17, 19)}-${iso.slice(20, 23)}`;
}
