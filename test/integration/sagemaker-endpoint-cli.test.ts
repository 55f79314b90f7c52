/**
 * `pgsage endpoint …` against a real edge: the commands are registered on a
 * real commander program and talk to the edge through the AWS SDK.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { DescribeEndpointCommand, ListModelsCommand, SageMakerClient } from '@aws-sdk/client-sagemaker';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerEndpointCommands } from '../../src/cli/endpoint.js';
import { sdkConfig, startTestEdge, type TestEdge, xgboostFixture } from '../support/edge.js';

let edge: TestEdge;
let sagemaker: SageMakerClient;

beforeAll(async () => {
  edge = await startTestEdge();
  sagemaker = new SageMakerClient(sdkConfig(edge));
});

afterAll(async () => {
  sagemaker?.destroy();
  await edge?.close();
});

/** Runs `pgsage endpoint <args>` and returns what it printed. */
async function pgsage(...args: string[]): Promise<string> {
  let printed = '';
  const program = new Command().name('pgsage').exitOverride();
  registerEndpointCommands(program, { out: (text) => (printed += text), progress: () => {} });
  await program.parseAsync(['endpoint', '--services-url', edge.url, ...args], { from: 'user' });
  return printed;
}

async function pgsageError(...args: string[]): Promise<string> {
  try {
    await pgsage(...args);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('the command succeeded');
}

const firstRow = '-1.3275,1.0622,0.5658,-0.1914,-0.7266,-1.9671,1.794,2.7321,,0.6876,0.8054,1.2551';

describe('pgsage endpoint', () => {
  it('with no endpoints, prints a deploy command that reaches the same services', async () => {
    expect(await pgsage('list')).toBe(
      `No endpoints. Deploy one with: pgsage endpoint deploy <name> --services-url ${edge.url} --model <file> --algorithm xgboost\n`,
    );
  });

  it('deploys a model file, lists, describes and invokes the endpoint', async () => {
    const deployed = await pgsage(
      'deploy',
      'churn',
      '--model',
      xgboostFixture('binary_logistic.json.model.tar.gz'),
      '--algorithm',
      'xgboost',
    );
    expect(deployed).toMatch(/^Endpoint churn \(xgboost, binary_logistic.json.model.tar.gz\) is InService/);

    expect(await pgsage('list')).toMatch(/^NAME\s+STATUS\s+CREATED\nchurn\s+InService\s+\d{4}-\d\d-\d\d/);
    const described = await pgsage('describe', 'churn');
    expect(described).toMatch(/^churn {2}InService\n/);
    expect(described).toMatch(/Variant: {2}AllTraffic \(weight 1\) → model churn-\d{8}-\d{9}/);
    expect(described).toMatch(/Image: {2}pgsage\/xgboost:latest/);

    const answer = await pgsage('invoke', 'churn', '--body', firstRow);
    expect(Number(answer.trim())).toBeCloseTo(0.005964740179479122, 6);
    const file = path.join(edge.dataDir, 'rows.csv');
    writeFileSync(file, `${firstRow}\n${firstRow}\n`);
    expect((await pgsage('invoke', 'churn', '--file', file)).trim().split('\n')).toHaveLength(2);
  });

  it('redeploys by swapping the model in place and cleaning up the old one', async () => {
    await pgsage(
      'deploy',
      'swap',
      '--model',
      xgboostFixture('binary_logistic.json.model.tar.gz'),
      '--algorithm',
      'xgboost',
    );
    const before = await sagemaker.send(new DescribeEndpointCommand({ EndpointName: 'swap' }));
    const updated = await pgsage(
      'deploy',
      'swap',
      '--model',
      xgboostFixture('multi_softprob.json'),
      '--algorithm',
      'xgboost',
    );
    expect(updated).toMatch(/^Endpoint swap \(xgboost, multi_softprob.json\) is InService/);
    const after = await sagemaker.send(new DescribeEndpointCommand({ EndpointName: 'swap' }));
    expect(after.EndpointConfigName).not.toBe(before.EndpointConfigName);
    expect((await pgsage('invoke', 'swap', '--body', firstRow)).trim().split(',')).toHaveLength(3);
    const models = await sagemaker.send(new ListModelsCommand({ NameContains: 'swap-' }));
    expect(models.Models?.map((m) => m.ModelName)).toEqual([after.EndpointConfigName]);
  });

  it('deletes the endpoint with the configuration and model deploy made', async () => {
    await pgsage(
      'deploy',
      'temp',
      '--model',
      xgboostFixture('binary_logistic.json.model.tar.gz'),
      '--algorithm',
      'xgboost',
    );
    expect(await pgsage('delete', 'temp')).toMatch(
      /^Deleted endpoint temp \(and configuration temp-\S+, model temp-\S+\)\.\n$/,
    );
    const models = await sagemaker.send(new ListModelsCommand({ NameContains: 'temp-' }));
    expect(models.Models).toEqual([]);
  });

  it('explains failures in one line', async () => {
    const broken = path.join(edge.dataDir, 'broken.json');
    writeFileSync(broken, '{}');
    expect(await pgsageError('deploy', 'broken', '--model', broken, '--algorithm', 'xgboost')).toMatch(
      /^endpoint broken failed: Failed to load model broken-\S+ \(xgboost\)/,
    );
    expect(await pgsageError('deploy', 'x', '--model', broken)).toMatch(/Add --algorithm xgboost\|linear-learner/);
    // The wrong --algorithm for a model: said in those words, not as the other algorithm's format complaint.
    for (const [name, fixture] of [
      ['mixup', 'binary_logistic.json.model.tar.gz'],
      ['mixup-ubj', 'binary_logistic.ubj.model.tar.gz'],
    ]) {
      const message = await pgsageError('deploy', name, '--model', xgboostFixture(fixture), '-a', 'linear-learner');
      expect(message).toMatch(
        new RegExp(
          `^endpoint ${name} failed: Failed to load model ${name}-\\S+ \\(linear-learner\\) for variant AllTraffic: ` +
            `xgboost-model is an XGBoost model, not Linear Learner: deploy it as xgboost \\(pgsage endpoint deploy --algorithm xgboost`,
        ),
      );
    }
    expect(await pgsageError('invoke', 'churn', '--body', '1,2,oops')).toMatch(
      /^the model rejected the request: CSV row 1, column 3/,
    );
    expect(await pgsageError('describe', 'ghost')).toMatch(/Could not find endpoint/);
    expect(await pgsageError('--services-url', 'http://127.0.0.1:1', 'list')).toMatch(
      /cannot reach pgsage's services at http:\/\/127.0.0.1:1/,
    );
  });
});
