/**
 * `pgsage train` against a real edge, then the deploy command it prints, run
 * as printed: the trained model answers invocations.
 */
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerEndpointCommands } from '../../src/cli/endpoint.js';
import { progressLine, registerTrainCommands } from '../../src/cli/train.js';
import { LocalObjectStore, localStoreRoot } from '../../src/storage/index.js';
import { startTestEdge, type TestEdge } from '../support/edge.js';
import { classificationCsv } from '../support/training.js';

let edge: TestEdge;

beforeAll(async () => {
  edge = await startTestEdge();
  const store = new LocalObjectStore(localStoreRoot(edge.config), true);
  await store.createBucket('cli-train');
  await store.put('cli-train', 'churn/train/data.csv', Buffer.from(classificationCsv(2000, 31)));
  await store.put('cli-train', 'churn/validation/data.csv', Buffer.from(classificationCsv(500, 32)));
});

afterAll(async () => {
  await edge?.close();
});

/** Runs `pgsage <args>` with the train and endpoint commands; returns what was printed and the progress lines. */
async function pgsage(...args: string[]): Promise<{ printed: string; progress: string[] }> {
  let printed = '';
  const progress: string[] = [];
  const output = { out: (text: string) => (printed += text), progress: (text: string) => progress.push(text) };
  const program = new Command().name('pgsage').exitOverride();
  registerTrainCommands(program, output);
  registerEndpointCommands(program, output);
  await program.parseAsync(args, { from: 'user' });
  return { printed, progress };
}

describe('pgsage train', () => {
  it('trains, shows progress, prints the artifact and a deploy command that works', async () => {
    const { printed, progress } = await pgsage(
      'train',
      '--algorithm',
      'xgboost',
      '--train',
      's3://cli-train/churn/train',
      '--validation',
      's3://cli-train/churn/validation',
      '--output',
      's3://cli-train/models',
      '--hp',
      'num_round=40',
      '--hp',
      'max_depth=4',
      '--hp',
      'objective=binary:logistic',
      '--hp',
      'eval_metric=auc',
      '--name',
      'churn-cli',
      '--services-url',
      edge.url,
    );
    expect(printed).toMatch(/^Training job churn-cli Completed in \d+s\.\n/);
    expect(printed).toMatch(/ {2}Metrics: train:auc=0\.\d+ {2}validation:auc=0\.\d+\n/);
    expect(printed).toContain('  Model:   s3://cli-train/models/churn-cli/output/model.tar.gz\n');
    const deploy = /Deploy: {2}(pgsage endpoint deploy .*)\n/.exec(printed)?.[1];
    // The services are not at the default URL: the printed command carries --services-url, and runs as printed.
    expect(deploy).toBe(
      `pgsage endpoint deploy churn-cli --services-url ${edge.url} --model s3://cli-train/models/churn-cli/output/model.tar.gz --algorithm xgboost`,
    );
    expect(progress.at(-1)).toBe('');
    for (const line of progress.slice(0, -1)) expect(line).toMatch(/^churn-cli (\[[#·]{20}\] round \d+\/40 |\w+ … )/);

    const deployed = await pgsage(...(deploy as string).split(' ').slice(1));
    expect(deployed.printed).toMatch(/^Endpoint churn-cli \(xgboost, model.tar.gz\) is InService/);
    const tryIt = /Try it: {2}pgsage (endpoint invoke churn-cli --services-url \S+) --body/.exec(deployed.printed)?.[1];
    expect(tryIt).toBe(`endpoint invoke churn-cli --services-url ${edge.url}`);
    const invoked = await pgsage(...(tryIt as string).split(' '), '--body', '2,0,0,1,0,0,0,0\n-2,1,1,-1,0,0,0,0');
    const [high, low] = invoked.printed.trim().split(/[\n,]/).map(Number);
    expect(high).toBeGreaterThan(0.5);
    expect(low).toBeLessThan(0.5);
  });

  it('reports a failed job with its reason', async () => {
    const failure = await pgsage(
      'train',
      '--algorithm',
      'xgboost',
      '--train',
      's3://cli-train/churn/train',
      '--output',
      's3://cli-train/models',
      '--hp',
      'max_depth=4',
      '--services-url',
      edge.url,
    ).catch((error: Error) => error);
    expect((failure as Error).message).toMatch(
      /^training job xgboost-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-\d{3} failed: ClientError: hyperparameter num_round is required$/,
    );
  });

  it('refuses bad arguments before calling the service', async () => {
    const algorithm = await pgsage(
      'train',
      '-a',
      'kmeans',
      '--train',
      's3://b/t',
      '-o',
      's3://b/o',
      '--services-url',
      edge.url,
    ).catch((e: Error) => e);
    expect((algorithm as Error).message).toBe(
      'unknown algorithm kmeans; use one of xgboost, linear-learner, randomcutforest',
    );
    const hp = await pgsage('train', '-a', 'xgboost', '--train', 's3://b/t', '-o', 's3://b/o', '--hp', 'oops').catch(
      (e: Error) => e,
    );
    expect((hp as Error).message).toBe('--hp takes name=value, got "oops"');
    const url = await pgsage('train', '-a', 'xgboost', '--train', '/tmp/data.csv', '-o', 's3://b/o').catch(
      (e: Error) => e,
    );
    expect((url as Error).message).toBe('--train must be an s3:// URL, got /tmp/data.csv');
  });

  it('draws the progress bar from the job description', () => {
    const line = progressLine(
      {
        TrainingJobName: 'j',
        TrainingJobStatus: 'InProgress',
        SecondaryStatus: 'Training',
        SecondaryStatusTransitions: [
          {
            Status: 'Training',
            StartTime: new Date(),
            StatusMessage: 'Training in progress: round 25 of 50; train:auc=0.97, validation:auc=0.93',
          },
        ],
      },
      12_400,
    );
    expect(line).toBe('j [##########··········] round 25/50  validation:auc=0.93  12s');
  });
});
