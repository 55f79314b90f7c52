/**
 * InvokeEndpoint through the real @aws-sdk/client-sagemaker-runtime against a
 * real edge, scoring XGBoost models trained by the real XGBoost and comparing
 * with the predictions XGBoost itself made (test/fixtures/models/xgboost).
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { SageMakerClient } from '@aws-sdk/client-sagemaker';
import { InvokeEndpointCommand, ModelError, SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalObjectStore } from '../../src/storage/local-store.js';
import { sdkConfig, startTestEdge, type TestEdge, xgboostFixture } from '../support/edge.js';
import { deployWith } from '../support/endpoints.js';

let edge: TestEdge;
let sagemaker: SageMakerClient;
let runtime: SageMakerRuntimeClient;

const inputCsv = readFileSync(xgboostFixture('inputs_classification2.csv'), 'utf8').trim();
const inputRows = inputCsv.split('\n');
const expected = readFileSync(xgboostFixture('binary_logistic.predict.csv'), 'utf8').trim().split('\n').map(Number);

async function invoke(body: string, contentType = 'text/csv', accept?: string) {
  const response = await runtime.send(
    new InvokeEndpointCommand({
      EndpointName: 'churn',
      Body: Buffer.from(body),
      ContentType: contentType,
      Accept: accept,
    }),
  );
  return { ...response, text: Buffer.from(response.Body ?? new Uint8Array()).toString('utf8') };
}

function expectClose(actual: number[], reference: number[]): void {
  expect(actual).toHaveLength(reference.length);
  for (const [i, value] of actual.entries()) {
    expect(Math.abs(value - reference[i]), `row ${i + 1}`).toBeLessThan(1e-6);
  }
}

async function invokeError(body: string, contentType = 'text/csv', accept?: string, endpoint = 'churn') {
  try {
    await runtime.send(
      new InvokeEndpointCommand({
        EndpointName: endpoint,
        Body: Buffer.from(body),
        ContentType: contentType,
        Accept: accept,
      }),
    );
  } catch (error) {
    return error as Error & Record<string, unknown> & { $metadata: { httpStatusCode?: number } };
  }
  throw new Error('the invocation succeeded');
}

beforeAll(async () => {
  edge = await startTestEdge();
  sagemaker = new SageMakerClient(sdkConfig(edge));
  runtime = new SageMakerRuntimeClient(sdkConfig(edge));
  // The model artifact lives in the local object store, as it would in S3.
  const store = new LocalObjectStore(path.join(edge.dataDir, 's3'));
  await store.put(
    'sagemaker-models',
    'churn/model.tar.gz',
    readFileSync(xgboostFixture('binary_logistic.json.model.tar.gz')),
  );
  await deployWith(sagemaker, 'churn', 's3://sagemaker-models/churn/model.tar.gz');
  await deployWith(sagemaker, 'iris', pathToFileURL(xgboostFixture('multi_softprob.json')).href);
});

afterAll(async () => {
  sagemaker?.destroy();
  runtime?.destroy();
  await edge?.close();
});

describe('InvokeEndpoint with text/csv', () => {
  it('answers one line per input row, matching the real XGBoost', async () => {
    const response = await invoke(inputCsv, 'text/csv', 'text/csv');
    expect(response.ContentType).toBe('text/csv');
    expect(response.InvokedProductionVariant).toBe('AllTraffic');
    expectClose(response.text.split('\n').map(Number), expected);
  });

  it('answers a single row with exactly the value, as the container prints it', async () => {
    const response = await invoke(`${inputRows[0]}\n`);
    expect(response.text).not.toContain('\n');
    expectClose([Number(response.text)], [expected[0]]);
  });

  it('answers multi-class models with one probability per class on each line', async () => {
    const rows = readFileSync(xgboostFixture('inputs_classification3.csv'), 'utf8').trim();
    const reference = readFileSync(xgboostFixture('multi_softprob.predict.csv'), 'utf8').trim().split('\n');
    const response = await runtime.send(
      new InvokeEndpointCommand({ EndpointName: 'iris', Body: Buffer.from(rows), ContentType: 'text/csv' }),
    );
    const lines = Buffer.from(response.Body!).toString('utf8').split('\n');
    expect(lines).toHaveLength(reference.length);
    for (const [i, line] of lines.entries()) {
      expectClose(line.split(',').map(Number), reference[i].split(',').map(Number));
    }
  });

  it('scores a large batch in the worker pool with the same answers as inline', async () => {
    const rows = 3000; // above the 2,000-row threshold
    const body = Array.from({ length: rows }, (_, i) => inputRows[i % inputRows.length]).join('\n');
    const response = await invoke(body);
    const values = response.text.split('\n').map(Number);
    expectClose(
      values,
      Array.from({ length: rows }, (_, i) => expected[i % expected.length]),
    );
    // And concurrent large batches, more than there are workers.
    const answers = await Promise.all(Array.from({ length: 5 }, () => invoke(body)));
    for (const answer of answers) expect(answer.text).toBe(response.text);
  });
});

describe('InvokeEndpoint with JSON', () => {
  const features = inputRows.slice(0, 3).map((row) => row.split(',').map((v) => (v === '' ? null : Number(v))));

  it('accepts {"instances":[{"features":[…]}]} and answers the container JSON', async () => {
    const response = await invoke(
      JSON.stringify({ instances: features.map((f) => ({ features: f })) }),
      'application/json',
      'application/json',
    );
    expect(response.ContentType).toBe('application/json');
    const { predictions } = JSON.parse(response.text) as {
      predictions: { predicted_label: number; probability: number }[];
    };
    expectClose(
      predictions.map((p) => p.probability),
      expected.slice(0, 3),
    );
    for (const [i, p] of predictions.entries()) expect(p.predicted_label).toBe(expected[i] > 0.5 ? 1 : 0);
  });

  it('accepts plain arrays of rows and a single row, and answers CSV when asked', async () => {
    const rows = await invoke(JSON.stringify(features), 'application/json', 'text/csv');
    expect(rows.ContentType).toBe('text/csv');
    expectClose(rows.text.split('\n').map(Number), expected.slice(0, 3));
    const single = await invoke(JSON.stringify(features[1]), 'application/json', 'text/csv');
    expectClose([Number(single.text)], [expected[1]]);
  });

  it('accepts the long form {"data":{"features":{"values":[…]}}} and JSON lines', async () => {
    const long = await invoke(
      JSON.stringify({ instances: features.map((values) => ({ data: { features: { values } } })) }),
      'application/json',
      'text/csv',
    );
    expectClose(long.text.split('\n').map(Number), expected.slice(0, 3));
    const lines = await invoke(
      features.map((f) => JSON.stringify({ features: f })).join('\n'),
      'application/jsonlines',
      'application/jsonlines',
    );
    const parsed = lines.text.split('\n').map((line) => JSON.parse(line) as { probability: number });
    expectClose(
      parsed.map((p) => p.probability),
      expected.slice(0, 3),
    );
  });
});

describe('InvokeEndpoint errors', () => {
  it('answers a row the model cannot read with a 424 ModelError naming the row', async () => {
    const body = [inputRows[0], inputRows[1], inputRows[2].replace(/^[^,]+/, 'abc')].join('\n');
    const error = await invokeError(body);
    expect(error).toBeInstanceOf(ModelError);
    expect(error.$metadata.httpStatusCode).toBe(424);
    expect(error.OriginalStatusCode).toBe(400);
    expect(error.OriginalMessage).toMatch(/row 3/);
    expect(error.OriginalMessage).toMatch(/abc/);
    expect(error.LogStreamArn).toBe('arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/churn');
    expect(error.message).toMatch(/^Received client error \(400\) from primary/);
  });

  it('answers ragged rows and too many columns with a ModelError', async () => {
    const ragged = await invokeError(`${inputRows[0]}\n1,2,3`);
    expect(ragged.name).toBe('ModelError');
    expect(ragged.OriginalMessage).toMatch(/row 2 has 3 columns, expected 12/);
    const wide = await invokeError(`${inputRows[0]},1,2`);
    expect(wide.OriginalMessage).toMatch(/12 features but the input has 14 columns/);
  });

  it('reports the same row numbers from the worker pool', async () => {
    const rows = Array.from({ length: 2500 }, (_, i) => inputRows[i % inputRows.length]);
    rows[2345] = rows[2345].replace(/,[^,]*$/, ',oops');
    const error = await invokeError(rows.join('\n'));
    expect(error.$metadata.httpStatusCode).toBe(424);
    expect(error.OriginalMessage).toMatch(/row 2346/);
  });

  it('answers unsupported content and accept types as the container would (415, 406)', async () => {
    const contentType = await invokeError(inputRows[0], 'application/x-parquet');
    expect(contentType.OriginalStatusCode).toBe(415);
    const accept = await invokeError(inputRows[0], 'text/csv', 'image/png');
    expect(accept.OriginalStatusCode).toBe(406);
  });

  it('answers an unknown endpoint with ValidationError "… not found."', async () => {
    const error = await invokeError(inputRows[0], 'text/csv', undefined, 'no-such-endpoint');
    expect(error.name).toBe('ValidationError');
    expect(error.$metadata.httpStatusCode).toBe(400);
    expect(error.message).toBe('Endpoint no-such-endpoint of account 123456789012 not found.');
  });

  it('answers a name no endpoint can have as SageMaker Runtime does, without repeating a long one whole', async () => {
    const pattern = await invokeError(inputRows[0], 'text/csv', undefined, 'my_model');
    expect({ name: pattern.name, status: pattern.$metadata.httpStatusCode, message: pattern.message }).toEqual({
      name: 'ValidationError',
      status: 400,
      message:
        "1 validation error detected: Value 'my_model' at 'endpointName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*",
    });
    const long = await invokeError(inputRows[0], 'text/csv', undefined, 'e'.repeat(2000));
    expect(long.message).toBe(
      `1 validation error detected: Value '${'e'.repeat(63)}...' at 'endpointName' failed to satisfy constraint: Member must have length less than or equal to 63`,
    );
  });

  it('refuses a payload above 6 MB before scoring it', async () => {
    const row = `${inputRows[0]}\n`;
    const body = row.repeat(Math.ceil((6 * 1024 * 1024 + 1) / row.length));
    const response = await fetch(`${edge.url}/endpoints/churn/invocations`, {
      method: 'POST',
      headers: { 'content-type': 'text/csv' },
      body,
    });
    expect(response.status).toBe(413);
    expect(response.headers.get('x-amzn-errortype')).toBe('ValidationError');

    // Asked first (`Expect: 100-continue`), it answers 413 without letting the body come.
    const asked = await new Promise<{ continued: boolean; status: number | undefined }>((resolve, reject) => {
      let continued = false;
      const request = http.request(`${edge.url}/endpoints/churn/invocations`, {
        method: 'POST',
        headers: { 'content-type': 'text/csv', 'content-length': 50 * 1024 * 1024, expect: '100-continue' },
      });
      request.on('continue', () => {
        continued = true;
        request.destroy();
        resolve({ continued, status: undefined });
      });
      request.on('response', (response) => {
        response.resume();
        resolve({ continued, status: response.statusCode });
        request.destroy();
      });
      request.on('error', reject);
      request.flushHeaders();
    });
    expect(asked).toEqual({ continued: false, status: 413 });
  });
});
