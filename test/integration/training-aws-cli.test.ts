import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalObjectStore, localStoreRoot } from '../../src/storage/index.js';
import { awsCli } from '../support/aws-cli.js';
import { startTestEdge, type TestEdge, XGBOOST_IMAGE } from '../support/edge.js';
import { classificationCsv } from '../support/training.js';

let edge: TestEdge;

const { aws, awsJson } = awsCli(() => edge.url);

beforeAll(async () => {
  edge = await startTestEdge();
  const store = new LocalObjectStore(localStoreRoot(edge.config), true);
  await store.createBucket('cli-data');
  await store.put('cli-data', 'train/data.csv', Buffer.from(classificationCsv(1500, 21)));
});

afterAll(async () => {
  await edge?.close();
});

describe('aws sagemaker training jobs', () => {
  it('creates, describes, lists a training job and refuses to stop it once completed', async () => {
    const created = await awsJson(
      'sagemaker',
      'create-training-job',
      '--training-job-name',
      'cli-xgb',
      '--algorithm-specification',
      JSON.stringify({ TrainingImage: XGBOOST_IMAGE, TrainingInputMode: 'File' }),
      '--role-arn',
      'arn:aws:iam::123456789012:role/pgsage-test',
      '--hyper-parameters',
      JSON.stringify({ num_round: '20', objective: 'binary:logistic', max_depth: '3', eval_metric: 'error' }),
      '--input-data-config',
      JSON.stringify([
        {
          ChannelName: 'train',
          DataSource: { S3DataSource: { S3DataType: 'S3Prefix', S3Uri: 's3://cli-data/train' } },
          ContentType: 'text/csv',
        },
      ]),
      '--output-data-config',
      JSON.stringify({ S3OutputPath: 's3://cli-data/output' }),
      '--resource-config',
      JSON.stringify({ InstanceType: 'ml.m5.xlarge', InstanceCount: 1, VolumeSizeInGB: 5 }),
      '--stopping-condition',
      JSON.stringify({ MaxRuntimeInSeconds: 600 }),
    );
    expect(created.TrainingJobArn).toBe('arn:aws:sagemaker:us-east-1:123456789012:training-job/cli-xgb');

    // Bounded polling of describe-training-job, as a script would do.
    const deadline = Date.now() + 60_000;
    // biome-ignore lint/suspicious/noExplicitAny: CLI JSON output.
    let job: Record<string, any>;
    for (;;) {
      job = await awsJson('sagemaker', 'describe-training-job', '--training-job-name', 'cli-xgb');
      if (job.TrainingJobStatus !== 'InProgress') break;
      if (Date.now() > deadline) throw new Error('the job did not finish in time');
    }
    expect(job.TrainingJobStatus, job.FailureReason).toBe('Completed');
    expect(job.ModelArtifacts.S3ModelArtifacts).toBe('s3://cli-data/output/cli-xgb/output/model.tar.gz');
    expect(job.FinalMetricDataList.map((m: { MetricName: string }) => m.MetricName)).toEqual(['train:error']);
    expect(job.FinalMetricDataList[0].Value).toBeLessThan(0.2);
    expect(job.HyperParameters).toEqual({
      num_round: '20',
      objective: 'binary:logistic',
      max_depth: '3',
      eval_metric: 'error',
    });

    const listed = await awsJson('sagemaker', 'list-training-jobs', '--status-equals', 'Completed');
    expect(listed.TrainingJobSummaries.map((s: { TrainingJobName: string }) => s.TrainingJobName)).toEqual(['cli-xgb']);

    const stop = await aws('sagemaker', 'stop-training-job', '--training-job-name', 'cli-xgb');
    expect(stop.code).not.toBe(0);
    expect(stop.stderr).toMatch(
      /\(ValidationException\) when calling the StopTrainingJob operation: The request was rejected because the training job is in status Completed\./,
    );

    const missing = await aws('sagemaker', 'describe-training-job', '--training-job-name', 'nope');
    expect(missing.stderr).toMatch(
      /\(ValidationException\) when calling the DescribeTrainingJob operation: Requested resource not found\./,
    );
  });
});
