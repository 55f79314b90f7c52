/**
 * An error in AWS's wire shape: `__type` (the exception name the SDKs turn
 * into a typed error), a message, an HTTP status and optional extra fields
 * (e.g. SageMaker's ModelError carries OriginalStatusCode and OriginalMessage).
 */
export class AwsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = type;
  }

  body(): Record<string, unknown> {
    return { __type: this.type, message: this.message, Message: this.message, ...this.extra };
  }
}

export const validationError = (message: string) => new AwsError('ValidationException', message, 400);
export const internalFailure = (message = 'An internal error occurred.') =>
  new AwsError('InternalFailure', message, 500);
