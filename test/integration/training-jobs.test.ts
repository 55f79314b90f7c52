/**
 * SageMaker training jobs against a real edge with the real AWS SDK: data in the
 * object store, CreateTrainingJob for each built-in algorithm, progress and
 * final metrics through DescribeTrainingJob, the model.tar.gz deployed with
 * CreateModel and invoked, stop, failures, listing and a restart.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  CreateTrainingJobCommand,
  type CreateTrainingJobCommandInput,
  DescribeTrainingJobCommand,
  type DescribeTrainingJobCommandOutput,
  ListTrainingJobsCommand,
  SageMakerClient,
  StopTrainingJobCommand,
} from '@aws-sdk/client-sagemaker';
import { InvokeEndpointCommand, SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactFiles } from '../../src/models/artifact.js';
import { LocalObjectStore, localStoreRoot } from '../../src/storage/index.js';
import { sdkConfig, startTestEdge, type TestEdge, XGBOOST_IMAGE } from '../support/edge.js';
import { deployWith } from '../support/endpoints.js';
import { auc, classificationCsv, regressionCsv, waitForTrainingJob } from '../support/training.js';

let edge: TestEdge;
let sagemaker: SageMakerClient;
let runtime: SageMakerRuntimeClient;
let store: LocalObjectStore;

const ROLE = 'arn:aws:iam::123456789012:role/pgsage-training';
const LINEAR_LEARNER_IMAGE = '382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1';
const RCF_IMAGE = '382416733822.dkr.ecr.us-east-1.amazonaws.com/randomcutforest:1';

beforeAll(async () => {
  edge = await startTestEdge();
  sagemaker = new SageMakerClient(sdkConfig(edge));
  runtime = new SageMakerRuntimeClient(sdkConfig(edge));
  store = new LocalObjectStore(localStoreRoot(edge.config), true);
  await store.createBucket('ml-data');
  await store.createBucket('ml-models');
  const train = classificationCsv(3000, 11).split('\n');
  // Two objects under the prefix: the job must read both.
  await store.put('ml-data', 'churn/train/part-0.csv', Buffer.from(`${train.slice(0, 1500).join('\n')}\n`));
  await store.put('ml-data', 'churn/train/part-1.csv', Buffer.from(train.slice(1500).join('\n')));
  await store.put('ml-data', 'churn/validation/data.csv', Buffer.from(classificationCsv(800, 12)));
  await store.put('ml-data', 'house/train/data.csv', Buffer.from(regressionCsv(2000, 13)));
  await store.put('ml-data', 'big/train/data.csv', Buffer.from(classificationCsv(20000, 14)));
});

afterAll(async () => {
  sagemaker?.destroy();
  runtime?.destroy();
  await edge?.close();
});

function jobRequest(
  name: string,
  overrides: Partial<CreateTrainingJobCommandInput> = {},
): CreateTrainingJobCommandInput {
  return {
    TrainingJobName: name,
    AlgorithmSpecification: { TrainingImage: XGBOOST_IMAGE, TrainingInputMode: 'File' },
    RoleArn: ROLE,
    HyperParameters: { num_round: '30', max_depth: '4', eta: '0.3', objective: 'binary:logistic', eval_metric: 'auc' },
    InputDataConfig: [
      {
        ChannelName: 'train',
        DataSource: { S3DataSource: { S3DataType: 'S3Prefix', S3Uri: 's3://ml-data/churn/train/' } },
        ContentType: 'text/csv',
      },
      {
        ChannelName: 'validation',
        DataSource: { S3DataSource: { S3DataType: 'S3Prefix', S3Uri: 's3://ml-data/churn/validation' } },
        ContentType: 'text/csv',
      },
    ],
    OutputDataConfig: { S3OutputPath: 's3://ml-models/churn' },
    ResourceConfig: { InstanceType: 'ml.m5.xlarge', InstanceCount: 1, VolumeSizeInGB: 5 },
    StoppingCondition: { MaxRuntimeInSeconds: 3600 },
    ...overrides,
  };
}

const describeJob = (name: string) => sagemaker.send(new DescribeTrainingJobCommand({ TrainingJobName: name }));

async function invoke(endpoint: string, csv: string, accept = 'text/csv'): Promise<string> {
  const answer = await runtime.send(
    new InvokeEndpointCommand({
      EndpointName: endpoint,
      ContentType: 'text/csv',
      Accept: accept,
      Body: Buffer.from(csv),
    }),
  );
  return Buffer.from(answer.Body as Uint8Array).toString('utf8');
}

/** Held-out rows without their label, and the labels. */
function heldOut(csv: string): { features: string; labels: number[] } {
  const rows = csv.trim().split('\n');
  return {
    features: rows.map((row) => row.slice(row.indexOf(',') + 1)).join('\n'),
    labels: rows.map((row) => Number(row.slice(0, row.indexOf(',')))),
  };
}

describe('XGBoost training job', () => {
  let completed: DescribeTrainingJobCommandOutput;

  it('trains from every object under the prefixes, reports progress and metrics, and writes model.tar.gz', async () => {
    const created = await sagemaker.send(new CreateTrainingJobCommand(jobRequest('churn-xgb')));
    expect(created.TrainingJobArn).toBe('arn:aws:sagemaker:us-east-1:123456789012:training-job/churn-xgb');
    const first = await describeJob('churn-xgb');
    expect(first.TrainingJobStatus).toBe('InProgress');

    completed = await waitForTrainingJob(describeJob, 'churn-xgb');
    expect(completed.TrainingJobStatus, completed.FailureReason).toBe('Completed');
    expect(completed.SecondaryStatus).toBe('Completed');
    expect(completed.ModelArtifacts?.S3ModelArtifacts).toBe('s3://ml-models/churn/churn-xgb/output/model.tar.gz');
    expect(completed.HyperParameters?.num_round).toBe('30');
    expect(completed.AlgorithmSpecification?.TrainingImage).toBe(XGBOOST_IMAGE);
    expect(completed.TrainingStartTime).toBeInstanceOf(Date);
    expect(completed.TrainingEndTime).toBeInstanceOf(Date);
    expect(completed.SecondaryStatusTransitions?.map((t) => t.Status)).toEqual([
      'Starting',
      'Downloading',
      'Training',
      'Uploading',
      'Completed',
    ]);
    const training = completed.SecondaryStatusTransitions?.find((t) => t.Status === 'Training');
    expect(training?.StatusMessage).toMatch(
      /^Training in progress: round 30 of 30; train:auc=0\.\d+, validation:auc=0\.\d+$/,
    );
    const metrics = Object.fromEntries((completed.FinalMetricDataList ?? []).map((m) => [m.MetricName, m.Value]));
    expect(Object.keys(metrics).sort()).toEqual(['train:auc', 'validation:auc']);
    expect(metrics['validation:auc']).toBeGreaterThan(0.85);
    expect(metrics['train:auc']).toBeGreaterThan(metrics['validation:auc'] as number);

    const tarball = await store.get('ml-models', 'churn/churn-xgb/output/model.tar.gz');
    const files = artifactFiles({ fileName: 'model.tar.gz', bytes: tarball });
    expect(files.map((f) => f.name)).toEqual(['xgboost-model']);
    const model = JSON.parse(files[0].bytes.toString('utf8'));
    expect(model.learner.gradient_booster.model.gbtree_model_param.num_trees).toBe('30');
    expect(model.learner.learner_model_param.num_feature).toBe('8');

    const log = readFileSync(path.join(edge.dataDir, 'logs', 'training', 'churn-xgb.log'), 'utf8');
    expect(log).toMatch(/channel train: 2 object\(s\)/);
    expect(log).toMatch(/train: 3000 rows × 8 features; validation: 800 rows/);
    expect(log).toMatch(/\[29\]\ttrain-auc:0\.\d+\tvalidation-auc:0\.\d+/);
  });

  it('deploys the trained model with CreateModel and serves held-out predictions', async () => {
    await deployWith(sagemaker, 'churn-trained', completed.ModelArtifacts?.S3ModelArtifacts as string, XGBOOST_IMAGE);
    const test = heldOut(classificationCsv(500, 99));
    const answer = await invoke('churn-trained', test.features);
    const scores = answer.trim().split(/[\n,]/).map(Number);
    expect(scores).toHaveLength(500);
    for (const score of scores) expect(score).toBeGreaterThanOrEqual(0);
    expect(auc(scores, test.labels)).toBeGreaterThan(0.85);
  });

  it('stops early on the validation metric and records the best iteration', async () => {
    await sagemaker.send(
      new CreateTrainingJobCommand(
        jobRequest('churn-early', {
          HyperParameters: {
            num_round: '400',
            max_depth: '6',
            eta: '0.5',
            objective: 'binary:logistic',
            eval_metric: 'logloss',
            early_stopping_rounds: '5',
          },
        }),
      ),
    );
    const job = await waitForTrainingJob(describeJob, 'churn-early');
    expect(job.TrainingJobStatus, job.FailureReason).toBe('Completed');
    const tarball = await store.get('ml-models', 'churn/churn-early/output/model.tar.gz');
    const model = JSON.parse(artifactFiles({ fileName: 'model.tar.gz', bytes: tarball })[0].bytes.toString('utf8'));
    const trees = Number(model.learner.gradient_booster.model.gbtree_model_param.num_trees);
    const best = Number(model.learner.attributes.best_iteration);
    expect(trees).toBeLessThan(400);
    expect(trees).toBe(best + 1 + 5);
    expect(model.learner.attributes.best_ntree_limit).toBe(String(best + 1));
  });

  it('is stopped by StopTrainingJob', async () => {
    await sagemaker.send(
      new CreateTrainingJobCommand(
        jobRequest('churn-stop', {
          HyperParameters: { num_round: '100000', max_depth: '6', objective: 'binary:logistic' },
          InputDataConfig: [
            {
              ChannelName: 'train',
              DataSource: { S3DataSource: { S3DataType: 'S3Prefix', S3Uri: 's3://ml-data/big/train' } },
            },
          ],
        }),
      ),
    );
    // Wait (bounded) until rounds are being trained, so the stop interrupts training itself.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const job = await describeJob('churn-stop');
      const message = job.SecondaryStatusTransitions?.at(-1)?.StatusMessage ?? '';
      if (/round \d+ of 100000/.test(message)) break;
      expect(job.TrainingJobStatus).toBe('InProgress');
      if (Date.now() > deadline)
        throw new Error(`training did not start: ${JSON.stringify(job.SecondaryStatusTransitions)}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await sagemaker.send(new StopTrainingJobCommand({ TrainingJobName: 'churn-stop' }));
    const stopping = await describeJob('churn-stop');
    expect(['Stopping', 'Stopped']).toContain(stopping.TrainingJobStatus);
    const stopped = await waitForTrainingJob(describeJob, 'churn-stop');
    expect(stopped.TrainingJobStatus).toBe('Stopped');
    expect(stopped.SecondaryStatus).toBe('Stopped');
    expect(stopped.ModelArtifacts).toBeUndefined();
    expect(await store.exists('ml-models', 'churn/churn-stop/output/model.tar.gz')).toBe(false);

    const again = await sagemaker.send(new StopTrainingJobCommand({ TrainingJobName: 'churn-stop' })).catch((e) => e);
    expect(again.name).toBe('ValidationException');
    expect(again.message).toBe('The request was rejected because the training job is in status Stopped.');
  });
});

describe('other built-in algorithms', () => {
  it('trains Linear Learner (regressor) and serves it', async () => {
    await sagemaker.send(
      new CreateTrainingJobCommand(
        jobRequest('house-ll', {
          AlgorithmSpecification: { TrainingImage: LINEAR_LEARNER_IMAGE, TrainingInputMode: 'File' },
          HyperParameters: { predictor_type: 'regressor', feature_dim: '6', epochs: '10', mini_batch_size: '100' },
          InputDataConfig: [
            {
              ChannelName: 'train',
              DataSource: { S3DataSource: { S3DataType: 'S3Prefix', S3Uri: 's3://ml-data/house/train' } },
            },
          ],
          OutputDataConfig: { S3OutputPath: 's3://ml-models/house/' },
        }),
      ),
    );
    const job = await waitForTrainingJob(describeJob, 'house-ll');
    expect(job.TrainingJobStatus, job.FailureReason).toBe('Completed');
    expect(job.ModelArtifacts?.S3ModelArtifacts).toBe('s3://ml-models/house/house-ll/output/model.tar.gz');
    const metrics = Object.fromEntries((job.FinalMetricDataList ?? []).map((m) => [m.MetricName, m.Value]));
    expect(metrics['train:mse']).toBeLessThan(0.5); // the noise variance is 0.25

    await deployWith(sagemaker, 'house-ll', job.ModelArtifacts?.S3ModelArtifacts as string, LINEAR_LEARNER_IMAGE);
    const test = heldOut(regressionCsv(200, 98));
    const answer = JSON.parse(await invoke('house-ll', test.features, 'application/json'));
    const predictions = answer.predictions.map((p: { score: number }) => p.score);
    let squared = 0;
    predictions.forEach((p: number, i: number) => {
      squared += (p - test.labels[i]) ** 2;
    });
    expect(squared / predictions.length).toBeLessThan(0.5);
  });

  it('trains Random Cut Forest on unlabeled rows and serves anomaly scores', async () => {
    const rows: string[] = [];
    for (let i = 0; i < 1000; i++) rows.push(`${Math.sin(i) * 0.5},${Math.cos(i * 1.3) * 0.5}`);
    await store.put('ml-data', 'sensors/train/data.csv', Buffer.from(`${rows.join('\n')}\n`));
    await sagemaker.send(
      new CreateTrainingJobCommand(
        jobRequest('sensors-rcf', {
          AlgorithmSpecification: { TrainingImage: RCF_IMAGE, TrainingInputMode: 'File' },
          HyperParameters: { feature_dim: '2', num_trees: '50', num_samples_per_tree: '128' },
          InputDataConfig: [
            {
              ChannelName: 'train',
              DataSource: { S3DataSource: { S3DataType: 'S3Prefix', S3Uri: 's3://ml-data/sensors/train' } },
              ContentType: 'text/csv;label_size=0',
            },
          ],
          OutputDataConfig: { S3OutputPath: 's3://ml-models/sensors' },
        }),
      ),
    );
    const job = await waitForTrainingJob(describeJob, 'sensors-rcf');
    expect(job.TrainingJobStatus, job.FailureReason).toBe('Completed');
    await deployWith(sagemaker, 'sensors-rcf', job.ModelArtifacts?.S3ModelArtifacts as string, RCF_IMAGE);
    const answer = JSON.parse(await invoke('sensors-rcf', '0.1,0.2\n5,5', 'application/json'));
    const [normal, anomaly] = answer.scores.map((s: { score: number }) => s.score);
    expect(anomaly).toBeGreaterThan(normal * 1.5);
  });
});

describe('requests and failures', () => {
  it('refuses a duplicate name, an unknown job, an image it cannot train and a missing train channel', async () => {
    const duplicate = await sagemaker.send(new CreateTrainingJobCommand(jobRequest('churn-xgb'))).catch((e) => e);
    expect(duplicate.name).toBe('ResourceInUse');
    expect(duplicate.message).toMatch(/a training job with this name already exists/);

    const missing = await describeJob('no-such-job').catch((e) => e);
    expect(missing.name).toBe('ValidationException');
    expect(missing.message).toBe('Requested resource not found.');

    const image = await sagemaker
      .send(
        new CreateTrainingJobCommand(
          jobRequest('bad-image', {
            AlgorithmSpecification: {
              TrainingImage: '123.dkr.ecr.us-east-1.amazonaws.com/my-pytorch:2',
              TrainingInputMode: 'File',
            },
          }),
        ),
      )
      .catch((e) => e);
    expect(image.name).toBe('ValidationException');
    expect(image.message).toMatch(/cannot train with the image/);

    const noTrain = await sagemaker
      .send(
        new CreateTrainingJobCommand(
          jobRequest('no-train', { InputDataConfig: [jobRequest('x').InputDataConfig?.[1] as never] }),
        ),
      )
      .catch((e) => e);
    expect(noTrain.name).toBe('ValidationException');
    expect(noTrain.message).toMatch(/must name a "train" channel/);
  });

  it('fails a job with bad hyperparameters or no data as a ClientError', async () => {
    await sagemaker.send(
      new CreateTrainingJobCommand(jobRequest('no-rounds', { HyperParameters: { objective: 'binary:logistic' } })),
    );
    const noRounds = await waitForTrainingJob(describeJob, 'no-rounds');
    expect(noRounds.TrainingJobStatus).toBe('Failed');
    expect(noRounds.SecondaryStatus).toBe('Failed');
    expect(noRounds.FailureReason).toBe('ClientError: hyperparameter num_round is required');

    await sagemaker.send(
      new CreateTrainingJobCommand(
        jobRequest('no-data', {
          InputDataConfig: [
            {
              ChannelName: 'train',
              DataSource: { S3DataSource: { S3DataType: 'S3Prefix', S3Uri: 's3://ml-data/nothing-here/' } },
            },
          ],
        }),
      ),
    );
    const noData = await waitForTrainingJob(describeJob, 'no-data');
    expect(noData.TrainingJobStatus).toBe('Failed');
    expect(noData.FailureReason).toBe(
      "ClientError: No objects found under the train channel's S3 URI s3://ml-data/nothing-here/.",
    );

    await store.put('ml-data', 'labels/train/data.csv', Buffer.from('2,0.5,1\n0,0.1,0.2\n'));
    await sagemaker.send(
      new CreateTrainingJobCommand(
        jobRequest('bad-labels', {
          InputDataConfig: [
            {
              ChannelName: 'train',
              DataSource: { S3DataSource: { S3DataType: 'S3Prefix', S3Uri: 's3://ml-data/labels/train' } },
            },
          ],
        }),
      ),
    );
    const badLabels = await waitForTrainingJob(describeJob, 'bad-labels');
    expect(badLabels.FailureReason).toMatch(/^ClientError: label must be in \[0,1\] for logistic regression/);
  });

  it('lists jobs with filters and paging', async () => {
    const completed = await sagemaker.send(
      new ListTrainingJobsCommand({ StatusEquals: 'Completed', SortBy: 'Name', SortOrder: 'Ascending' }),
    );
    const names = completed.TrainingJobSummaries?.map((s) => s.TrainingJobName);
    expect(names).toEqual(expect.arrayContaining(['churn-early', 'churn-xgb', 'house-ll', 'sensors-rcf']));
    expect(names).not.toContain('no-rounds');
    const summary = completed.TrainingJobSummaries?.find((s) => s.TrainingJobName === 'churn-xgb');
    expect(summary?.TrainingJobStatus).toBe('Completed');
    expect(summary?.TrainingEndTime).toBeInstanceOf(Date);

    const page = await sagemaker.send(new ListTrainingJobsCommand({ MaxResults: 2, NameContains: 'churn' }));
    expect(page.TrainingJobSummaries).toHaveLength(2);
    const next = await sagemaker.send(
      new ListTrainingJobsCommand({ MaxResults: 2, NameContains: 'churn', NextToken: page.NextToken }),
    );
    expect(next.TrainingJobSummaries?.length).toBeGreaterThan(0);
  });

  it('stops a job that runs past MaxRuntimeInSeconds', async () => {
    await sagemaker.send(
      new CreateTrainingJobCommand(
        jobRequest('too-long', {
          HyperParameters: { num_round: '100000', objective: 'binary:logistic' },
          InputDataConfig: [
            {
              ChannelName: 'train',
              DataSource: { S3DataSource: { S3DataType: 'S3Prefix', S3Uri: 's3://ml-data/big/train' } },
            },
          ],
          StoppingCondition: { MaxRuntimeInSeconds: 1 },
        }),
      ),
    );
    const job = await waitForTrainingJob(describeJob, 'too-long');
    expect(job.TrainingJobStatus).toBe('Stopped');
    expect(job.SecondaryStatus).toBe('MaxRuntimeExceeded');
    expect(job.ModelArtifacts).toBeUndefined();
  });

  it('marks a job that was running when the services shut down as failed after the restart', async () => {
    const own = await startTestEdge();
    const client = new SageMakerClient(sdkConfig(own));
    try {
      const ownStore = new LocalObjectStore(localStoreRoot(own.config), true);
      await ownStore.put('ml-data', 'big/train/data.csv', Buffer.from(classificationCsv(20000, 14)));
      await ownStore.createBucket('ml-models');
      await client.send(
        new CreateTrainingJobCommand(
          jobRequest('interrupted', {
            HyperParameters: { num_round: '100000', objective: 'binary:logistic' },
            InputDataConfig: [
              {
                ChannelName: 'train',
                DataSource: { S3DataSource: { S3DataType: 'S3Prefix', S3Uri: 's3://ml-data/big/train' } },
              },
            ],
          }),
        ),
      );
      await own.services.close(); // what shutdown does: running trainers are stopped
      const restarted = await startTestEdge({ dataDir: own.dataDir });
      const again = new SageMakerClient(sdkConfig(restarted));
      try {
        const job = await again.send(new DescribeTrainingJobCommand({ TrainingJobName: 'interrupted' }));
        expect(job.TrainingJobStatus).toBe('Failed');
        expect(job.FailureReason).toMatch(
          /^InternalServerError: pgsage was (shut down|restarted) while the job was running/,
        );
      } finally {
        again.destroy();
        await restarted.close();
      }
    } finally {
      client.destroy();
      await own.close();
    }
  });

  it('keeps jobs across a restart of the services', async () => {
    const restarted = await startTestEdge({ dataDir: edge.dataDir });
    const client = new SageMakerClient(sdkConfig(restarted));
    try {
      const job = await client.send(new DescribeTrainingJobCommand({ TrainingJobName: 'churn-xgb' }));
      expect(job.TrainingJobStatus).toBe('Completed');
      expect(job.ModelArtifacts?.S3ModelArtifacts).toBe('s3://ml-models/churn/churn-xgb/output/model.tar.gz');
      expect(existsSync(path.join(edge.dataDir, 'sagemaker', 'training-jobs', 'churn-xgb.json'))).toBe(true);
    } finally {
      client.destroy();
      await restarted.close();
    }
  });
});
