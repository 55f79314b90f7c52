/**
 * The control-plane resources as stored (and as Describe* returns them), and the
 * turning of Create* requests into them. Members pgsage does not act on (instance
 * types, KMS keys, VPC settings, …) are kept and echoed back, so tooling that
 * round-trips them sees what it sent.
 */
import { algorithmFromImage } from '../../models/registry.js';
import type { Algorithm } from '../../models/types.js';
import { constraintViolation, validationException } from './errors.js';
import { requireName } from './names.js';

export interface ContainerDefinition {
  Image?: string;
  ModelDataUrl?: string;
  Environment?: Record<string, string>;
  [member: string]: unknown;
}

export interface ModelRecord {
  ModelName: string;
  ModelArn: string;
  PrimaryContainer?: ContainerDefinition;
  Containers?: ContainerDefinition[];
  ExecutionRoleArn?: string;
  CreationTime: number;
  [member: string]: unknown;
}

export interface ProductionVariant {
  VariantName: string;
  ModelName: string;
  InitialVariantWeight: number;
  [member: string]: unknown;
}

export interface EndpointConfigRecord {
  EndpointConfigName: string;
  EndpointConfigArn: string;
  ProductionVariants: ProductionVariant[];
  CreationTime: number;
  [member: string]: unknown;
}

export type EndpointStatus = 'Creating' | 'Updating' | 'SystemUpdating' | 'InService' | 'Failed';

/** DescribeEndpoint's ProductionVariants entry, kept so it survives a restart. */
export interface DeployedVariant {
  VariantName: string;
  DeployedImages: { SpecifiedImage: string; ResolvedImage: string; ResolutionTime: number }[];
  CurrentWeight: number;
  DesiredWeight: number;
  CurrentInstanceCount: number;
  DesiredInstanceCount: number;
}

export interface EndpointRecord {
  EndpointName: string;
  EndpointArn: string;
  EndpointConfigName: string;
  EndpointStatus: EndpointStatus;
  FailureReason?: string;
  ProductionVariants?: DeployedVariant[];
  CreationTime: number;
  LastModifiedTime: number;
  Tags?: unknown;
}

export function nowSeconds(): number {
  return Date.now() / 1000;
}

/** The container an endpoint runs for a model: the primary one, or the first of an inference pipeline. */
export function servingContainer(model: ModelRecord): ContainerDefinition | undefined {
  return model.PrimaryContainer ?? model.Containers?.[0];
}

/** The algorithm a container's image selects; a ValidationException for images pgsage cannot serve. */
export function algorithmOf(container: ContainerDefinition): Algorithm {
  const image = container.Image;
  if (typeof image !== 'string' || image === '') {
    throw constraintViolation(image, 'primaryContainer.image', 'Member must not be null');
  }
  const algorithm = algorithmFromImage(image);
  if (!algorithm) {
    throw validationException(
      `pgsage cannot serve the image "${image}": it hosts SageMaker's built-in XGBoost, Linear Learner and Random Cut Forest ` +
        `algorithms and ONNX models, chosen by an image name containing xgboost, linear-learner, randomcutforest or onnx.`,
    );
  }
  return algorithm;
}

/** A CreateModel request as a record; checks what can be checked without reading the artifact. */
export function modelFromRequest(input: Record<string, unknown>, arn: (name: string) => string): ModelRecord {
  const ModelName = requireName(input, 'ModelName');
  const { ModelName: _name, ...rest } = input;
  const record: ModelRecord = { ...rest, ModelName, ModelArn: arn(ModelName), CreationTime: nowSeconds() };
  if (record.PrimaryContainer !== undefined && !isObject(record.PrimaryContainer)) {
    throw validationException('PrimaryContainer must be a structure');
  }
  if (record.Containers !== undefined && !Array.isArray(record.Containers)) {
    throw validationException('Containers must be a list');
  }
  const container = servingContainer(record);
  if (!container) {
    throw validationException('Either PrimaryContainer or Containers must be specified.');
  }
  algorithmOf(container);
  const url = container.ModelDataUrl;
  if (typeof url !== 'string' || url === '') {
    throw validationException(
      'ModelDataUrl is required: pgsage serves the model artifact found there (s3://bucket/key in its object store, or file:///path).',
    );
  }
  return record;
}

export function endpointConfigFromRequest(
  input: Record<string, unknown>,
  arn: (name: string) => string,
): EndpointConfigRecord {
  const EndpointConfigName = requireName(input, 'EndpointConfigName');
  const variants = input.ProductionVariants;
  if (!Array.isArray(variants) || variants.length === 0) {
    throw constraintViolation(
      Array.isArray(variants) ? '[]' : variants,
      'productionVariants',
      'Member must have length greater than or equal to 1',
    );
  }
  if (variants.length > 10) {
    throw constraintViolation(
      `[${variants.length} variants]`,
      'productionVariants',
      'Member must have length less than or equal to 10',
    );
  }
  const seen = new Set<string>();
  const ProductionVariants = variants.map((variant: unknown): ProductionVariant => {
    if (!isObject(variant)) throw validationException('Each production variant must be a structure');
    const VariantName = requireName(variant, 'VariantName');
    const ModelName = requireName(variant, 'ModelName');
    if (seen.has(VariantName.toLowerCase())) {
      throw validationException(`Variant name ${VariantName} is used more than once in the endpoint configuration.`);
    }
    seen.add(VariantName.toLowerCase());
    const weight = variant.InitialVariantWeight === undefined ? 1 : Number(variant.InitialVariantWeight);
    if (!Number.isFinite(weight) || weight < 0) {
      throw constraintViolation(
        variant.InitialVariantWeight,
        'initialVariantWeight',
        'Member must have value greater than or equal to 0',
      );
    }
    return { ...variant, VariantName, ModelName, InitialVariantWeight: weight };
  });
  const { EndpointConfigName: _name, ProductionVariants: _variants, ...rest } = input;
  return {
    ...rest,
    EndpointConfigName,
    EndpointConfigArn: arn(EndpointConfigName),
    ProductionVariants,
    CreationTime: nowSeconds(),
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
