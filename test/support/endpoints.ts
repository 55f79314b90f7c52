import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import {
  CreateEndpointCommand,
  CreateEndpointConfigCommand,
  CreateModelCommand,
  DescribeEndpointCommand,
  SageMakerClient,
  type SageMakerClientConfig,
} from '@aws-sdk/client-sagemaker';
import { sdkConfig, waitForEndpoint, XGBOOST_IMAGE, xgboostFixture } from './edge.js';

/**
 * Deploys a model file as an endpoint through the real SageMaker SDK and waits
 * until it serves; `edge` is the edge's URL, or full client settings where the
 * test needs its own TLS trust or credentials.
 */
export async function deployEndpoint(
  edge: string | SageMakerClientConfig,
  name: string,
  modelFile: string,
  image = XGBOOST_IMAGE,
): Promise<void> {
  const client = new SageMakerClient(typeof edge === 'string' ? sdkConfig({ url: edge }) : edge);
  try {
    await deployWith(client, name, pathToFileURL(modelFile).href, image);
  } finally {
    client.destroy();
  }
}

/**
 * Creates the model, endpoint configuration and endpoint through a caller's
 * SageMaker client (its TLS, credentials, region) and waits until the
 * endpoint serves; throws with SageMaker's failure reason otherwise.
 */
export async function deployWith(
  client: SageMakerClient,
  name: string,
  modelDataUrl: string,
  image = XGBOOST_IMAGE,
): Promise<void> {
  await client.send(
    new CreateModelCommand({
      ModelName: name,
      PrimaryContainer: { Image: image, ModelDataUrl: modelDataUrl },
      ExecutionRoleArn: 'arn:aws:iam::123456789012:role/pgsage-test',
    }),
  );
  await client.send(
    new CreateEndpointConfigCommand({
      EndpointConfigName: name,
      ProductionVariants: [
        { VariantName: 'AllTraffic', ModelName: name, InitialInstanceCount: 1, InstanceType: 'ml.m5.large' },
      ],
    }),
  );
  await client.send(new CreateEndpointCommand({ EndpointName: name, EndpointConfigName: name }));
  const endpoint = await waitForEndpoint(
    (endpointName) => client.send(new DescribeEndpointCommand({ EndpointName: endpointName })),
    name,
  );
  if (endpoint.EndpointStatus !== 'InService') throw new Error(`endpoint ${name}: ${endpoint.FailureReason}`);
}

/** The 12-feature classification rows and the real XGBoost's predictions for the 60-tree binary model. */
export function binaryLogisticFixture(): { rows: (number | null)[][]; predictions: number[]; model: string } {
  const parse = (file: string) =>
    readFileSync(xgboostFixture(file), 'utf8')
      .trim()
      .split('\n')
      .map((line) => line.split(',').map((v) => (v === '' ? null : Number(v))));
  return {
    rows: parse('inputs_classification2.csv'),
    predictions: parse('binary_logistic.predict.csv').map((r) => r[0] as number),
    model: xgboostFixture('binary_logistic.json.model.tar.gz'),
  };
}
