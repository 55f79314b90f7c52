/**
 * SageMaker's error shapes. The control plane answers missing and duplicate
 * resources with ValidationException (not ResourceNotFound: that one is for
 * training jobs and the like, and `aws sagemaker wait endpoint-deleted` relies
 * on ValidationException); the runtime uses ValidationError, ModelError (424)
 * and ServiceUnavailable (503).
 */
import { AwsError } from '../errors.js';

export type ResourceKind = 'model' | 'endpoint configuration' | 'endpoint';

export function validationException(message: string): AwsError {
  return new AwsError('ValidationException', message, 400);
}

export function notFound(kind: ResourceKind, arn: string): AwsError {
  return validationException(`Could not find ${kind} "${arn}".`);
}

export function alreadyExists(kind: ResourceKind, arn: string): AwsError {
  return validationException(`Cannot create already existing ${kind} "${arn}".`);
}

/** How the service reports a member that fails its model constraint. */
export function constraintViolation(value: unknown, member: string, constraint: string): AwsError {
  const shown = value === undefined || value === null ? 'null' : `'${String(value)}'`;
  return validationException(
    `1 validation error detected: Value ${shown} at '${member}' failed to satisfy constraint: ${constraint}`,
  );
}

export function runtimeValidationError(message: string): AwsError {
  return new AwsError('ValidationError', message, 400);
}

export function serviceUnavailable(message: string): AwsError {
  return new AwsError('ServiceUnavailable', message, 503);
}

export interface ModelErrorContext {
  region: string;
  accountId: string;
  endpointName: string;
  logFile: string;
}

/**
 * SageMaker's answer when the model container rejects a request: 424, with the
 * container's own status and message passed through (the gateway shows
 * OriginalMessage to the SQL user). "primary" is how SageMaker names a model's
 * single container.
 */
export function modelError(originalStatus: number, originalMessage: string, context: ModelErrorContext): AwsError {
  const kind = originalStatus >= 500 ? 'server' : 'client';
  const message =
    `Received ${kind} error (${originalStatus}) from primary with message "${originalMessage}". ` +
    `See ${context.logFile} for more information.`;
  return new AwsError('ModelError', message, 424, {
    ErrorCode: `${kind.toUpperCase()}_ERROR_FROM_MODEL`,
    OriginalStatusCode: originalStatus,
    OriginalMessage: originalMessage,
    LogStreamArn: `arn:aws:logs:${context.region}:${context.accountId}:log-group:/aws/sagemaker/Endpoints/${context.endpointName}`,
  });
}
