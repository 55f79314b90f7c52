/**
 * The SageMaker control plane through the real @aws-sdk/client-sagemaker:
 * resource lifecycle, SageMaker's error shapes, listing, zero-downtime updates
 * and state that survives a restart.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { constants, open, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
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
  DescribeEndpointConfigCommand,
  DescribeModelCommand,
  ListEndpointsCommand,
  ListModelsCommand,
  SageMakerClient,
  UpdateEndpointCommand,
} from '@aws-sdk/client-sagemaker';
import { InvokeEndpointCommand, SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  sdkConfig,
  startTestEdge,
  type TestEdge,
  waitForEndpoint,
  XGBOOST_IMAGE,
  xgboostFixture,
} from '../support/edge.js';

const ROLE = 'arn:aws:iam::123456789012:role/pgsage-test';
const binaryModel = pathToFileURL(xgboostFixture('binary_logistic.json.model.tar.gz')).href;
const multiModel = pathToFileURL(xgboostFixture('multi_softprob.json')).href;
const row = readFileSync(xgboostFixture('inputs_classification2.csv'), 'utf8').split('\n')[0];

let edge: TestEdge;
let client: SageMakerClient;
let runtime: SageMakerRuntimeClient;

function connect(target: TestEdge): void {
  client?.destroy();
  runtime?.destroy();
  client = new SageMakerClient(sdkConfig(target));
  runtime = new SageMakerRuntimeClient(sdkConfig(target));
}

beforeEach(async () => {
  edge = await startTestEdge();
  connect(edge);
});

afterEach(async () => {
  // A test that failed before releasing a held-back artifact must not leave a reader blocked on it.
  await Promise.all(held.splice(0).map((artifact) => artifact.abandon()));
  client.destroy();
  runtime.destroy();
  await edge.close();
});

async function createModel(name: string, url = binaryModel, image = XGBOOST_IMAGE) {
  return client.send(
    new CreateModelCommand({
      ModelName: name,
      PrimaryContainer: { Image: image, ModelDataUrl: url },
      ExecutionRoleArn: ROLE,
    }),
  );
}

async function createConfig(name: string, model: string) {
  return client.send(
    new CreateEndpointConfigCommand({
      EndpointConfigName: name,
      ProductionVariants: [
        { VariantName: 'AllTraffic', ModelName: model, InstanceType: 'ml.m5.large', InitialInstanceCount: 1 },
      ],
    }),
  );
}

async function deploy(name: string, url = binaryModel) {
  await createModel(name, url);
  await createConfig(name, name);
  await client.send(new CreateEndpointCommand({ EndpointName: name, EndpointConfigName: name }));
  return wait(name);
}

function wait(name: string) {
  return waitForEndpoint((EndpointName) => client.send(new DescribeEndpointCommand({ EndpointName })), name);
}

/**
 * A model artifact behind a named pipe: loading it blocks until the test writes
 * the model, which holds an endpoint in Creating or Updating for as long as needed.
 */
interface HeldArtifact {
  url: string;
  /** Writes the model; waits for the endpoint's loader to open the pipe if it has not yet. */
  release: (bytes: Buffer) => Promise<void>;
  /** Ends a blocked read, if any, with an empty (unloadable) artifact. */
  abandon: () => Promise<void>;
}
const held: HeldArtifact[] = [];

function heldBackArtifact(): HeldArtifact {
  const fifo = path.join(edge.dataDir, `held-${held.length}-${Date.now()}.json`);
  execFileSync('mkfifo', [fifo]);
  const forget = () => {
    const index = held.indexOf(artifact);
    if (index >= 0) held.splice(index, 1);
  };
  const artifact: HeldArtifact = {
    url: pathToFileURL(fifo).href,
    release: async (bytes) => {
      forget();
      await writeFile(fifo, bytes);
    },
    abandon: async () => {
      forget();
      // Non-blocking: with no reader the open fails (ENXIO) instead of waiting for one.
      const handle = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).catch(() => undefined);
      await handle?.close();
    },
  };
  held.push(artifact);
  return artifact;
}

async function failure(promise: Promise<unknown>) {
  try {
    await promise;
  } catch (error) {
    return error as Error & { $metadata: { httpStatusCode?: number } };
  }
  throw new Error('the call succeeded');
}

async function invokeText(name: string): Promise<string> {
  const response = await runtime.send(
    new InvokeEndpointCommand({ EndpointName: name, Body: Buffer.from(row), ContentType: 'text/csv' }),
  );
  return Buffer.from(response.Body!).toString('utf8');
}

describe('models and endpoint configurations', () => {
  it('creates, describes, lists and deletes them with ARNs in the configured region and account', async () => {
    const { ModelArn } = await createModel('Churn-XGB');
    expect(ModelArn).toBe('arn:aws:sagemaker:us-east-1:123456789012:model/churn-xgb');
    const model = await client.send(new DescribeModelCommand({ ModelName: 'churn-xgb' }));
    expect(model.ModelName).toBe('Churn-XGB');
    expect(model.PrimaryContainer?.Image).toBe(XGBOOST_IMAGE);
    expect(model.ExecutionRoleArn).toBe(ROLE);
    expect(model.CreationTime).toBeInstanceOf(Date);

    const { EndpointConfigArn } = await createConfig('churn-config', 'Churn-XGB');
    expect(EndpointConfigArn).toBe('arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/churn-config');
    const config = await client.send(new DescribeEndpointConfigCommand({ EndpointConfigName: 'churn-config' }));
    expect(config.ProductionVariants?.[0]).toMatchObject({
      VariantName: 'AllTraffic',
      ModelName: 'Churn-XGB',
      InitialVariantWeight: 1,
    });

    const listed = await client.send(new ListModelsCommand({}));
    expect(listed.Models?.map((m) => m.ModelName)).toEqual(['Churn-XGB']);

    await client.send(new DeleteEndpointConfigCommand({ EndpointConfigName: 'churn-config' }));
    await client.send(new DeleteModelCommand({ ModelName: 'Churn-XGB' }));
    const missing = await failure(client.send(new DescribeModelCommand({ ModelName: 'Churn-XGB' })));
    expect(missing.name).toBe('ValidationException');
    expect(missing.message).toBe('Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/churn-xgb".');
  });

  it('refuses duplicates (whatever their case) and references to missing resources as SageMaker does', async () => {
    await createModel('churn');
    const duplicate = await failure(createModel('CHURN'));
    expect(duplicate.name).toBe('ValidationException');
    expect(duplicate.$metadata.httpStatusCode).toBe(400);
    expect(duplicate.message).toBe(
      'Cannot create already existing model "arn:aws:sagemaker:us-east-1:123456789012:model/churn".',
    );

    const noModel = await failure(createConfig('cfg', 'ghost'));
    expect(noModel.message).toBe('Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/ghost".');
    const noConfig = await failure(
      client.send(new CreateEndpointCommand({ EndpointName: 'e', EndpointConfigName: 'ghost' })),
    );
    expect(noConfig.message).toBe(
      'Could not find endpoint configuration "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/ghost".',
    );
  });

  it('validates names, images and model data before accepting a model', async () => {
    const badName = await failure(createModel('no_underscores'));
    expect(badName.name).toBe('ValidationException');
    expect(badName.message).toMatch(
      /at 'modelName' failed to satisfy constraint: Member must satisfy regular expression pattern/,
    );
    const badImage = await failure(
      createModel('pytorch', binaryModel, '763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1'),
    );
    expect(badImage.message).toMatch(/cannot serve the image/);
    const noData = await failure(createModel('nodata', 's3://sagemaker-models/missing/model.tar.gz'));
    expect(noData.message).toMatch(/Could not access model data at s3:\/\/sagemaker-models\/missing\/model.tar.gz/);
  });
});

describe('endpoints', () => {
  it('are Creating until their model is loaded, and refuse invocations meanwhile', async () => {
    const artifact = heldBackArtifact();
    await createModel('slow', artifact.url);
    await createConfig('slow', 'slow');
    await client.send(new CreateEndpointCommand({ EndpointName: 'slow', EndpointConfigName: 'slow' }));
    const creating = await client.send(new DescribeEndpointCommand({ EndpointName: 'slow' }));
    expect(creating.EndpointStatus).toBe('Creating');
    const early = await failure(invokeText('slow'));
    expect(early.name).toBe('ValidationError');
    expect(early.message).toMatch(/is not in service \(status Creating\)/);
    await artifact.release(readFileSync(xgboostFixture('binary_logistic.json.model.tar.gz')));
    expect((await wait('slow')).EndpointStatus).toBe('InService');
    expect(Number(await invokeText('slow'))).toBeGreaterThan(0);
  });

  it('go from Creating to InService and report their variants', async () => {
    await createModel('churn');
    await createConfig('churn', 'churn');
    const { EndpointArn } = await client.send(
      new CreateEndpointCommand({ EndpointName: 'churn', EndpointConfigName: 'churn' }),
    );
    expect(EndpointArn).toBe('arn:aws:sagemaker:us-east-1:123456789012:endpoint/churn');
    await wait('churn');
    const ready = await client.send(new DescribeEndpointCommand({ EndpointName: 'churn' }));
    expect(ready.EndpointStatus).toBe('InService');
    expect(ready.EndpointConfigName).toBe('churn');
    expect(ready.ProductionVariants?.[0]).toMatchObject({
      VariantName: 'AllTraffic',
      CurrentWeight: 1,
      DeployedImages: [{ SpecifiedImage: XGBOOST_IMAGE }],
    });
    expect(Number(await invokeText('churn'))).toBeGreaterThan(0);

    const duplicate = await failure(
      client.send(new CreateEndpointCommand({ EndpointName: 'Churn', EndpointConfigName: 'churn' })),
    );
    expect(duplicate.message).toBe(
      'Cannot create already existing endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/churn".',
    );
  });

  it('end Failed with a reason when the model cannot be loaded, and refuse invocations', async () => {
    const corrupt = path.join(edge.dataDir, 'corrupt-model.json');
    writeFileSync(corrupt, '{"learner": "this is not an XGBoost model"}');
    const endpoint = await deploy('broken', pathToFileURL(corrupt).href);
    expect(endpoint.EndpointStatus).toBe('Failed');
    expect(endpoint.FailureReason).toMatch(/Failed to load model broken \(xgboost\)/);

    const error = await failure(invokeText('broken'));
    expect(error.name).toBe('ValidationError');
    expect(error.message).toMatch(/Endpoint broken of account 123456789012 is not in service \(status Failed\)/);
    const update = await failure(
      client.send(new UpdateEndpointCommand({ EndpointName: 'broken', EndpointConfigName: 'broken' })),
    );
    expect(update.message).toMatch(/Cannot update failed endpoint/);
  });

  it('swap models on UpdateEndpoint: the old model serves until the new one is loaded', async () => {
    await deploy('live');
    const oldAnswer = await invokeText('live');
    expect(oldAnswer).not.toContain(',');
    const artifact = heldBackArtifact();
    await createModel('live-v2', artifact.url);
    await createConfig('live-v2', 'live-v2');
    await client.send(new UpdateEndpointCommand({ EndpointName: 'live', EndpointConfigName: 'live-v2' }));

    // The new model is still being read: the endpoint is Updating and answers with the old model.
    const during = await client.send(new DescribeEndpointCommand({ EndpointName: 'live' }));
    expect(during.EndpointStatus).toBe('Updating');
    expect(during.EndpointConfigName).toBe('live');
    const answers = await Promise.all(Array.from({ length: 20 }, () => invokeText('live')));
    expect(new Set(answers)).toEqual(new Set([oldAnswer]));

    await artifact.release(readFileSync(xgboostFixture('multi_softprob.json')));
    const after = await wait('live');
    expect(after.EndpointStatus).toBe('InService');
    expect((await client.send(new DescribeEndpointCommand({ EndpointName: 'live' }))).EndpointConfigName).toBe(
      'live-v2',
    );
    expect((await invokeText('live')).split(',')).toHaveLength(3);
  });

  it('keep serving the old model when an update cannot load the new one', async () => {
    await deploy('steady');
    const corrupt = path.join(edge.dataDir, 'corrupt.json');
    writeFileSync(corrupt, 'not json');
    await createModel('steady-bad', pathToFileURL(corrupt).href);
    await createConfig('steady-bad', 'steady-bad');
    await client.send(new UpdateEndpointCommand({ EndpointName: 'steady', EndpointConfigName: 'steady-bad' }));
    const endpoint = await wait('steady');
    expect(endpoint.EndpointStatus).toBe('InService');
    expect(endpoint.FailureReason).toMatch(
      /Updating to endpoint configuration steady-bad failed, the endpoint still serves steady/,
    );
    expect(Number(await invokeText('steady'))).toBeGreaterThan(0);
  });

  it('are deleted, after which SageMaker-style errors follow', async () => {
    await deploy('gone');
    await client.send(new DeleteEndpointCommand({ EndpointName: 'gone' }));
    const describe = await failure(client.send(new DescribeEndpointCommand({ EndpointName: 'gone' })));
    expect(describe.name).toBe('ValidationException');
    expect(describe.message).toBe('Could not find endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/gone".');
    const invoke = await failure(invokeText('gone'));
    expect(invoke.message).toBe('Endpoint gone of account 123456789012 not found.');
    const again = await failure(client.send(new DeleteEndpointCommand({ EndpointName: 'gone' })));
    expect(again.name).toBe('ValidationException');
  });

  it('are listed with NameContains, SortBy, SortOrder and pagination', async () => {
    for (const name of ['alpha-churn', 'beta-churn', 'gamma-fraud', 'delta-churn']) await deploy(name);
    const byName = await client.send(
      new ListEndpointsCommand({ NameContains: 'CHURN', SortBy: 'Name', SortOrder: 'Ascending' }),
    );
    expect(byName.Endpoints?.map((e) => e.EndpointName)).toEqual(['alpha-churn', 'beta-churn', 'delta-churn']);
    expect(byName.Endpoints?.[0]).toMatchObject({
      EndpointArn: 'arn:aws:sagemaker:us-east-1:123456789012:endpoint/alpha-churn',
      EndpointStatus: 'InService',
    });

    const newestFirst = await client.send(new ListEndpointsCommand({}));
    expect(newestFirst.Endpoints?.map((e) => e.EndpointName)).toEqual([
      'delta-churn',
      'gamma-fraud',
      'beta-churn',
      'alpha-churn',
    ]);

    const seen: string[] = [];
    let NextToken: string | undefined;
    do {
      const page = await client.send(
        new ListEndpointsCommand({ SortBy: 'Name', SortOrder: 'Ascending', MaxResults: 3, NextToken }),
      );
      expect(page.Endpoints!.length).toBeLessThanOrEqual(3);
      seen.push(...page.Endpoints!.map((e) => e.EndpointName!));
      NextToken = page.NextToken;
    } while (NextToken);
    expect(seen).toEqual(['alpha-churn', 'beta-churn', 'delta-churn', 'gamma-fraud']);
  });
});

describe('state across restarts', () => {
  it('keeps models, configurations and endpoints, and reloads what was in service', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'pgsage-restart-'));
    try {
      await edge.close();
      edge = await startTestEdge({ dataDir });
      connect(edge);
      // The model is read through a pipe so the test decides when each load may finish.
      const artifact = heldBackArtifact();
      const modelBytes = readFileSync(xgboostFixture('binary_logistic.json.model.tar.gz'));
      await createModel('durable', artifact.url);
      await createConfig('durable', 'durable');
      await client.send(new CreateEndpointCommand({ EndpointName: 'durable', EndpointConfigName: 'durable' }));
      await artifact.release(modelBytes);
      expect((await wait('durable')).EndpointStatus).toBe('InService');
      await createModel('spare', multiModel);
      const before = await invokeText('durable');
      await edge.close();
      // A damaged state file is skipped (and logged), not a reason to refuse to start.
      writeFileSync(path.join(dataDir, 'sagemaker', 'models', 'damaged.json'), '{"ModelName": ');

      edge = await startTestEdge({ dataDir });
      connect(edge);
      const reloading = await client.send(new DescribeEndpointCommand({ EndpointName: 'durable' }));
      expect(reloading.EndpointStatus).toBe('SystemUpdating');
      // An invocation during the reload waits for it instead of failing.
      const answer = invokeText('durable');
      await artifact.release(modelBytes);
      expect(await answer).toBe(before);
      const endpoint = await client.send(new DescribeEndpointCommand({ EndpointName: 'durable' }));
      expect(endpoint.EndpointStatus).toBe('InService');
      const models = await client.send(new ListModelsCommand({ SortBy: 'Name', SortOrder: 'Ascending' }));
      expect(models.Models?.map((m) => m.ModelName)).toEqual(['durable', 'spare']);
      const model = await client.send(new DescribeModelCommand({ ModelName: 'durable' }));
      expect(model.PrimaryContainer?.ModelDataUrl).toBe(artifact.url);
    } finally {
      await edge.close();
      rmSync(dataDir, { recursive: true, force: true });
      // afterEach closes `edge` again: give it a fresh one to close.
      edge = await startTestEdge();
    }
  });
});
