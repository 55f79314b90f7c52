/**
 * CreateTrainingJob requests as SageMaker checks them before accepting a job:
 * required members, the image naming an algorithm pgsage trains, channels the
 * algorithm reads with S3 prefixes and text/csv, an s3:// output path. What it
 * does not act on (instance types, VPC, KMS, …) is kept and echoed back.
 */
import { constraintViolation, validationException } from './errors.js';
import { requireName } from './names.js';
import { CHANNELS, type TrainingAlgorithm, trainingAlgorithmFromImage } from './training-algorithms.js';

export interface TrainingChannel {
  readonly name: string;
  /** s3://bucket/prefix: every object whose key starts with the prefix. */
  readonly s3Uri: string;
}

export interface CheckedTrainingRequest {
  readonly name: string;
  readonly algorithm: TrainingAlgorithm;
  readonly hyperparameters: Record<string, string>;
  readonly channels: readonly TrainingChannel[];
  readonly outputPath: string;
  readonly maxRuntimeSeconds: number;
}

const CSV_TYPES = ['text/csv', 'csv'];

export function checkTrainingRequest(input: Record<string, unknown>): CheckedTrainingRequest {
  const name = requireName(input, 'TrainingJobName');
  const spec = structure(input.AlgorithmSpecification, 'algorithmSpecification');
  if (typeof spec.TrainingInputMode !== 'string') {
    throw constraintViolation(
      spec.TrainingInputMode,
      'algorithmSpecification.trainingInputMode',
      'Member must not be null',
    );
  }
  const image = spec.TrainingImage;
  if (typeof image !== 'string' || image === '') {
    throw validationException(
      'AlgorithmSpecification.TrainingImage is required: pgsage trains the built-in XGBoost, Linear Learner and Random Cut Forest algorithms, named by their image (e.g. 683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1).',
    );
  }
  const algorithm = trainingAlgorithmFromImage(image);
  if (!algorithm) {
    throw validationException(
      `pgsage cannot train with the image "${image}": it trains SageMaker's built-in algorithms xgboost, linear-learner and randomcutforest, chosen by the image name.`,
    );
  }
  if (typeof input.RoleArn !== 'string' || input.RoleArn === '') {
    throw constraintViolation(input.RoleArn, 'roleArn', 'Member must not be null');
  }
  structure(input.ResourceConfig, 'resourceConfig');
  const stopping = structure(input.StoppingCondition, 'stoppingCondition');
  const maxRuntime = stopping.MaxRuntimeInSeconds === undefined ? 86400 : Number(stopping.MaxRuntimeInSeconds);
  if (!Number.isInteger(maxRuntime) || maxRuntime < 1) {
    throw constraintViolation(
      stopping.MaxRuntimeInSeconds,
      'stoppingCondition.maxRuntimeInSeconds',
      'Member must have value greater than or equal to 1',
    );
  }
  const output = structure(input.OutputDataConfig, 'outputDataConfig');
  const outputPath = output.S3OutputPath;
  if (typeof outputPath !== 'string' || !/^s3:\/\/[^/]+/.test(outputPath)) {
    throw constraintViolation(
      outputPath,
      'outputDataConfig.s3OutputPath',
      'Member must satisfy regular expression pattern: ^(https|s3)://([^/]+)/?(.*)$',
    );
  }

  const hyperparameters: Record<string, string> = {};
  const given = input.HyperParameters ?? {};
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    throw validationException('HyperParameters must be a map of strings');
  }
  for (const [key, value] of Object.entries(given)) {
    if (typeof value !== 'string') throw validationException(`HyperParameters: the value of ${key} must be a string`);
    hyperparameters[key] = value;
  }

  const channelList = input.InputDataConfig;
  if (!Array.isArray(channelList) || channelList.length === 0) {
    throw validationException(`InputDataConfig must name a "train" channel for ${algorithm}.`);
  }
  const allowed = CHANNELS[algorithm];
  const seen = new Set<string>();
  const channels = channelList.map((raw, i): TrainingChannel => {
    const channel = structure(raw, `inputDataConfig.${i + 1}.member`);
    const channelName = channel.ChannelName;
    if (typeof channelName !== 'string' || channelName === '') {
      throw constraintViolation(channelName, `inputDataConfig.${i + 1}.member.channelName`, 'Member must not be null');
    }
    if (seen.has(channelName))
      throw validationException(`Channel names must be unique: "${channelName}" appears twice.`);
    seen.add(channelName);
    if (!allowed.includes(channelName)) {
      throw validationException(
        `Channel "${channelName}" is not supported by ${algorithm}; its channels are ${allowed.join(', ')}.`,
      );
    }
    const source = structure(
      structure(channel.DataSource, `inputDataConfig.${i + 1}.member.dataSource`).S3DataSource,
      `inputDataConfig.${i + 1}.member.dataSource.s3DataSource`,
    );
    const dataType = source.S3DataType ?? 'S3Prefix';
    if (dataType !== 'S3Prefix') {
      throw validationException(
        `Channel "${channelName}": S3DataType ${String(dataType)} is not supported by pgsage (use S3Prefix).`,
      );
    }
    const uri = source.S3Uri;
    if (typeof uri !== 'string' || !/^s3:\/\/[^/]+/.test(uri)) {
      throw constraintViolation(
        uri,
        `inputDataConfig.${i + 1}.member.dataSource.s3DataSource.s3Uri`,
        'Member must satisfy regular expression pattern: ^(https|s3)://([^/]+)/?(.*)$',
      );
    }
    const contentType = channel.ContentType;
    if (contentType !== undefined && !CSV_TYPES.includes(String(contentType).split(';')[0].trim().toLowerCase())) {
      throw validationException(
        `Channel "${channelName}": content type ${String(contentType)} is not supported by pgsage; use text/csv.`,
      );
    }
    if (channel.CompressionType !== undefined && channel.CompressionType !== 'None') {
      throw validationException(
        `Channel "${channelName}": CompressionType ${String(channel.CompressionType)} is not supported by pgsage.`,
      );
    }
    return { name: channelName, s3Uri: uri };
  });
  if (!seen.has('train')) throw validationException(`InputDataConfig must name a "train" channel for ${algorithm}.`);
  return { name, algorithm, hyperparameters, channels, outputPath, maxRuntimeSeconds: maxRuntime };
}

function structure(value: unknown, member: string): Record<string, unknown> {
  if (value === undefined || value === null) throw constraintViolation(value, member, 'Member must not be null');
  if (typeof value !== 'object' || Array.isArray(value)) throw validationException(`${member} must be a structure`);
  return value as Record<string, unknown>;
}
