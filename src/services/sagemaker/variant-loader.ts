/**
 * Turning an endpoint configuration into servable variants: for each production
 * variant, its model's artifact is read and loaded into a predictor. What a real
 * endpoint does when it provisions instances and starts containers.
 */
import { randomUUID } from 'node:crypto';
import { loadPredictor } from '../../models/registry.js';
import type { Predictor } from '../../models/types.js';
import type { ModelDataResolver } from './model-data.js';
import {
  algorithmOf,
  type DeployedVariant,
  type EndpointConfigRecord,
  type ModelRecord,
  nowSeconds,
  servingContainer,
} from './resources.js';
import type { PooledModel } from './runtime/worker-pool.js';

export interface LoadedModel extends PooledModel {
  readonly modelName: string;
  readonly image: string;
  readonly predictor: Predictor;
}

export interface LiveVariant {
  readonly name: string;
  readonly weight: number;
  readonly model: LoadedModel;
}

/** Why a configuration could not be deployed; the message becomes the endpoint's FailureReason. */
export class DeploymentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeploymentError';
  }
}

export async function loadVariants(
  config: EndpointConfigRecord,
  findModel: (name: string) => ModelRecord | undefined,
  modelData: ModelDataResolver,
): Promise<LiveVariant[]> {
  const variants: LiveVariant[] = [];
  for (const variant of config.ProductionVariants) {
    const record = findModel(variant.ModelName);
    if (!record)
      throw new DeploymentError(`Model ${variant.ModelName} of variant ${variant.VariantName} does not exist.`);
    const container = servingContainer(record);
    if (!container?.Image || !container.ModelDataUrl) {
      throw new DeploymentError(`Model ${record.ModelName} has no container with an Image and a ModelDataUrl.`);
    }
    const algorithm = algorithmOf(container);
    let artifact: { fileName: string; bytes: Buffer };
    let predictor: Predictor;
    try {
      artifact = await modelData.read(container.ModelDataUrl);
      predictor = await loadPredictor(algorithm, artifact);
    } catch (error) {
      throw new DeploymentError(
        `Failed to load model ${record.ModelName} (${algorithm}) for variant ${variant.VariantName}: ${(error as Error).message}`,
      );
    }
    variants.push({
      name: variant.VariantName,
      weight: variant.InitialVariantWeight,
      model: {
        id: randomUUID(),
        algorithm,
        fileName: artifact.fileName,
        bytes: artifact.bytes,
        modelName: record.ModelName,
        image: container.Image,
        predictor,
      },
    });
  }
  return variants;
}

/** DescribeEndpoint's view of the variants now serving. */
export function describeVariants(variants: LiveVariant[]): DeployedVariant[] {
  const resolvedAt = nowSeconds();
  return variants.map((variant) => ({
    VariantName: variant.name,
    DeployedImages: [
      { SpecifiedImage: variant.model.image, ResolvedImage: variant.model.image, ResolutionTime: resolvedAt },
    ],
    CurrentWeight: variant.weight,
    DesiredWeight: variant.weight,
    CurrentInstanceCount: 1,
    DesiredInstanceCount: 1,
  }));
}
