/**
 * The AWS CLI (`aws … --endpoint-url`) against a real edge: the compatibility
 * users rely on when they point their existing scripts at pgsage.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsCli } from '../support/aws-cli.js';
import { startTestEdge, type TestEdge, XGBOOST_IMAGE, xgboostFixture } from '../support/edge.js';

let edge: TestEdge;

const { aws, awsJson, scratch } = awsCli(() => edge.url);

beforeAll(async () => {
  edge = await startTestEdge();
});

afterAll(async () => {
  await edge?.close();
});

describe('aws comprehend', () => {
  it('detect-sentiment and batch-detect-sentiment', async () => {
    const single = await awsJson('comprehend', 'detect-sentiment', '--text', 'I like it!', '--language-code', 'en');
    expect(single.Sentiment).toBe('POSITIVE');
    expect(Object.keys(single.SentimentScore).sort()).toEqual(['Mixed', 'Negative', 'Neutral', 'Positive']);

    const batch = await awsJson(
      'comprehend',
      'batch-detect-sentiment',
      '--language-code',
      'en',
      '--text-list',
      'I like it!',
      'This is awful and broken.',
    );
    expect(batch.ResultList.map((r: { Sentiment: string }) => r.Sentiment)).toEqual(['POSITIVE', 'NEGATIVE']);
  });

  it('reports UnsupportedLanguageException as the CLI shows service errors', async () => {
    const result = await aws('comprehend', 'detect-sentiment', '--text', 'こんにちは', '--language-code', 'ja');
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(
      /An error occurred \(UnsupportedLanguageException\) when calling the DetectSentiment operation/,
    );
  });
});

describe('aws sagemaker and sagemaker-runtime', () => {
  it('deploy, describe, invoke and delete an endpoint', async () => {
    const model = await awsJson(
      'sagemaker',
      'create-model',
      '--model-name',
      'cli-churn',
      '--primary-container',
      `Image=${XGBOOST_IMAGE},ModelDataUrl=${pathToFileURL(xgboostFixture('binary_logistic.json.model.tar.gz')).href}`,
      '--execution-role-arn',
      'arn:aws:iam::123456789012:role/pgsage-test',
    );
    expect(model.ModelArn).toBe('arn:aws:sagemaker:us-east-1:123456789012:model/cli-churn');
    await awsJson(
      'sagemaker',
      'create-endpoint-config',
      '--endpoint-config-name',
      'cli-churn',
      '--production-variants',
      'VariantName=AllTraffic,ModelName=cli-churn,InstanceType=ml.m5.large,InitialInstanceCount=1',
    );
    await awsJson(
      'sagemaker',
      'create-endpoint',
      '--endpoint-name',
      'cli-churn',
      '--endpoint-config-name',
      'cli-churn',
    );
    // The waiter polls DescribeEndpoint until EndpointStatus is InService (first poll is immediate).
    const waited = await aws('sagemaker', 'wait', 'endpoint-in-service', '--endpoint-name', 'cli-churn');
    expect(waited.code, waited.stderr).toBe(0);
    const described = await awsJson('sagemaker', 'describe-endpoint', '--endpoint-name', 'cli-churn');
    expect(described.EndpointStatus).toBe('InService');

    const rows = readFileSync(xgboostFixture('inputs_classification2.csv'), 'utf8').split('\n').slice(0, 2).join('\n');
    const expected = readFileSync(xgboostFixture('binary_logistic.predict.csv'), 'utf8')
      .split('\n')
      .slice(0, 2)
      .map(Number);
    const outFile = path.join(scratch(), 'out.csv');
    const invoked = await awsJson(
      'sagemaker-runtime',
      'invoke-endpoint',
      '--endpoint-name',
      'cli-churn',
      '--content-type',
      'text/csv',
      // --body=… because the first value is negative and would otherwise read as an option.
      `--body=${rows}`,
      outFile,
    );
    expect(invoked).toMatchObject({ ContentType: 'text/csv', InvokedProductionVariant: 'AllTraffic' });
    const values = readFileSync(outFile, 'utf8').split('\n').map(Number);
    expect(values).toHaveLength(2);
    for (const [i, value] of values.entries()) expect(value).toBeCloseTo(expected[i], 6);

    await awsJson('sagemaker', 'delete-endpoint', '--endpoint-name', 'cli-churn');
    // endpoint-deleted succeeds on the ValidationException a missing endpoint answers with.
    const deleted = await aws('sagemaker', 'wait', 'endpoint-deleted', '--endpoint-name', 'cli-churn');
    expect(deleted.code, deleted.stderr).toBe(0);
  });

  it('shows SageMaker errors the way the CLI formats them', async () => {
    const missing = await aws('sagemaker', 'describe-endpoint', '--endpoint-name', 'nope');
    expect(missing.stderr).toMatch(
      /\(ValidationException\) when calling the DescribeEndpoint operation: Could not find endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint\/nope"/,
    );
    const bodyFile = path.join(scratch(), 'in.csv');
    writeFileSync(bodyFile, '1,2,3');
    const invoke = await aws(
      'sagemaker-runtime',
      'invoke-endpoint',
      '--endpoint-name',
      'nope',
      '--body',
      `fileb://${bodyFile}`,
      path.join(scratch(), 'never.csv'),
    );
    expect(invoke.stderr).toMatch(
      /\(ValidationError\) when calling the InvokeEndpoint operation: Endpoint nope of account 123456789012 not found\./,
    );
  });
});
