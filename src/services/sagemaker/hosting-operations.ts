/**
 * The hosting part of SageMaker's control plane as JSON 1.1 operations
 * (`X-Amz-Target: SageMaker.<Operation>`). Other parts (training jobs) provide
 * their own operation maps; registerSageMaker merges them under the same prefix.
 */
import type { JsonOperation } from '../edge.js';
import type { SageMakerHosting } from './hosting.js';
import { requireName } from './names.js';
import type { EndpointRecord } from './resources.js';

export const SAGEMAKER_TARGET_PREFIX = 'SageMaker';

export function hostingOperations(hosting: SageMakerHosting): Record<string, JsonOperation> {
  return {
    CreateModel: async (input) => ({ ModelArn: (await hosting.createModel(input)).ModelArn }),
    DescribeModel: (input) => hosting.describeModel(requireName(input, 'ModelName')),
    DeleteModel: async (input) => {
      await hosting.deleteModel(requireName(input, 'ModelName'));
      return {};
    },
    ListModels: (input) => hosting.listModels(input),

    CreateEndpointConfig: async (input) => ({
      EndpointConfigArn: (await hosting.createEndpointConfig(input)).EndpointConfigArn,
    }),
    DescribeEndpointConfig: (input) => hosting.describeEndpointConfig(requireName(input, 'EndpointConfigName')),
    DeleteEndpointConfig: async (input) => {
      await hosting.deleteEndpointConfig(requireName(input, 'EndpointConfigName'));
      return {};
    },
    ListEndpointConfigs: (input) => hosting.listEndpointConfigs(input),

    CreateEndpoint: async (input) => {
      const record = await hosting.createEndpoint(
        requireName(input, 'EndpointName'),
        requireName(input, 'EndpointConfigName'),
        input.Tags,
      );
      return { EndpointArn: record.EndpointArn };
    },
    DescribeEndpoint: (input) => describeEndpoint(hosting.describeEndpoint(requireName(input, 'EndpointName'))),
    UpdateEndpoint: async (input) => {
      const record = await hosting.updateEndpoint(
        requireName(input, 'EndpointName'),
        requireName(input, 'EndpointConfigName'),
      );
      return { EndpointArn: record.EndpointArn };
    },
    DeleteEndpoint: async (input) => {
      await hosting.deleteEndpoint(requireName(input, 'EndpointName'));
      return {};
    },
    ListEndpoints: (input) => hosting.listEndpoints(input),
  };
}

/** DescribeEndpoint's output: the record without what only pgsage keeps (tags are listed by ListTags). */
function describeEndpoint(record: EndpointRecord): Record<string, unknown> {
  const { Tags: _tags, ...output } = record;
  return output;
}
