import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import {
  CreateEndpointCommand,
  CreateEndpointConfigCommand,
  CreateModelCommand,
  DescribeEndpointCommand,
  SageMakerClient,
} from '@aws-sdk/client-sagemaker';
import { sdkConfig, waitForEndpoint, XGBOOST_IMAGE, xgboostFixture } from './edge.js';

/** Deploys a model file as an endpoint through the real SageMaker SDK and waits until it serves. */
export async function deployEndpoint(
  edgeUrl: string,
  name: string,
  modelFile: string,
  image = XGBOOST_IMAGE,
): Promise<void> {
  const client = new SageMakerClient(sdkConfig({ url: edgeUrl }));
  try {
    await client.send(
      new CreateModelCommand({
        ModelName: name,
        PrimaryContainer: { Image: image, ModelDataUrl: pathToFileURL(modelFile).href },
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
  } finally {
    client.destroy();
  }
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
