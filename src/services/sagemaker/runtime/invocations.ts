/**
 * SageMaker Runtime's InvokeEndpoint (`POST /endpoints/{name}/invocations`).
 * Requests small enough to score in a few milliseconds run on the event loop;
 * larger ones go to the worker pool so they do not hold up other requests.
 */
import type { Logger } from '../../../util/log.js';
import type { EdgeRequest, EdgeResponse, RestHandler } from '../../edge.js';
import type { AwsError } from '../../errors.js';
import { type ModelErrorContext, modelError, runtimeValidationError, serviceUnavailable } from '../errors.js';
import type { SageMakerHosting } from '../hosting.js';
import { NAME_MAX_LENGTH, validName } from '../names.js';
import type { EndpointRecord } from '../resources.js';
import type { LiveVariant } from '../variant-loader.js';
import { ContainerError, CSV, estimateRows, inputType, outputType } from './codec.js';
import { type ScoreResult, score } from './scoring.js';
import { type ScoringPool, WorkerCrashedError } from './worker-pool.js';

export interface InvocationOptions {
  hosting: SageMakerHosting;
  pool: ScoringPool;
  /** Requests estimated above this many rows are scored in the worker pool. */
  workerThresholdRows: number;
  /** Where errors tell users to look (ModelError messages point at it). */
  logFile: string;
  logger: Logger;
}

const TARGET_VARIANT = 'x-amzn-sagemaker-target-variant';

/** SageMaker Runtime's answer to a name no endpoint can have (a long one is not repeated whole). */
function invalidEndpointName(name: string): AwsError {
  const long = name.length > NAME_MAX_LENGTH;
  const constraint = long
    ? `Member must have length less than or equal to ${NAME_MAX_LENGTH}`
    : 'Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*';
  const shown = long ? `${name.slice(0, NAME_MAX_LENGTH)}...` : name;
  return runtimeValidationError(
    `1 validation error detected: Value '${shown}' at 'endpointName' failed to satisfy constraint: ${constraint}`,
  );
}

export function invocationHandler(options: InvocationOptions): RestHandler {
  const { hosting, pool, logger } = options;
  const { region, accountId } = hosting.scope;

  const notServing =
    (name: string) =>
    (record: EndpointRecord | undefined): AwsError => {
      if (!record) return runtimeValidationError(`Endpoint ${name} of account ${accountId} not found.`);
      const reason = record.FailureReason ? `: ${record.FailureReason}` : '.';
      return runtimeValidationError(
        `Endpoint ${record.EndpointName} of account ${accountId} is not in service (status ${record.EndpointStatus})${reason}`,
      );
    };

  return async (request: EdgeRequest, params: Record<string, string>): Promise<EdgeResponse> => {
    const name = params.name;
    if (!validName(name)) throw invalidEndpointName(name);
    const { record, variants } = await hosting.servingVariants(name, notServing(name));
    const variant = pickVariant(variants, header(request, TARGET_VARIANT), record);
    const context: ModelErrorContext = {
      region,
      accountId,
      endpointName: record.EndpointName,
      logFile: options.logFile,
    };

    let result: ScoreResult;
    let where: 'inline' | 'worker' = 'inline';
    let responseType: string;
    try {
      const requestType = inputType(header(request, 'content-type'));
      responseType = outputType(header(request, 'accept'), requestType);
      // Rows read as numbers by the gateway stand for a text/csv body only.
      const features = requestType === CSV ? request.featureRows : undefined;
      const scoreRequest = { body: request.body, inputType: requestType, outputType: responseType, features };
      const rows = features ? features.rows : estimateRows(request.body, requestType);
      if (rows > options.workerThresholdRows) {
        where = 'worker';
        result = await pool.run(variant.model, scoreRequest);
      } else {
        result = await score(variant.model.predictor, scoreRequest);
      }
    } catch (error) {
      if (error instanceof ContainerError) {
        logger.info({ endpoint: record.EndpointName, status: error.status, message: error.message }, 'model error');
        throw modelError(error.status, error.message, context);
      }
      if (error instanceof WorkerCrashedError) {
        logger.error({ endpoint: record.EndpointName, err: error }, 'scoring worker failed');
        throw serviceUnavailable(
          `Endpoint ${record.EndpointName} could not score the request: ${error.message}. Retry the request.`,
        );
      }
      throw error;
    }

    logger.debug({ endpoint: record.EndpointName, variant: variant.name, where, ...result.timing }, 'invocation');
    return {
      status: 200,
      headers: { 'content-type': responseType, 'x-Amzn-Invoked-Production-Variant': variant.name },
      body: result.body,
    };
  };
}

/** The requested variant, else one drawn by weight (what SageMaker's traffic split does). */
function pickVariant(variants: LiveVariant[], target: string | undefined, record: EndpointRecord): LiveVariant {
  if (target !== undefined) {
    const match = variants.find((variant) => variant.name === target);
    if (!match) {
      throw runtimeValidationError(`Target variant ${target} does not exist for endpoint ${record.EndpointName}.`);
    }
    return match;
  }
  if (variants.length === 1) return variants[0];
  const total = variants.reduce((sum, variant) => sum + variant.weight, 0);
  if (total <= 0) throw runtimeValidationError(`Endpoint ${record.EndpointName} has no variant with a weight above 0.`);
  let draw = Math.random() * total;
  for (const variant of variants) {
    draw -= variant.weight;
    if (draw < 0) return variant;
  }
  return variants[variants.length - 1];
}

function header(request: EdgeRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
