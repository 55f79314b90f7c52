/**
 * Resource names and ARNs as SageMaker forms them: names are matched without
 * regard to case (one "Churn" and one "churn" cannot coexist) and appear in
 * lowercase in ARNs.
 */
import { constraintViolation } from './errors.js';

/** The most characters SageMaker allows in such a name (NAME_PATTERN says so too). */
export const NAME_MAX_LENGTH = 63;

/** SageMaker's pattern for model, endpoint-config, endpoint and variant names. */
const NAME_PATTERN = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;

/** Whether SageMaker accepts this as a model, endpoint-config, endpoint or variant name. */
export function validName(name: string): boolean {
  return NAME_PATTERN.test(name);
}

export type ArnResource = 'model' | 'endpoint-config' | 'endpoint' | 'training-job';

export interface ArnScope {
  region: string;
  accountId: string;
}

export function arnOf(scope: ArnScope, resource: ArnResource, name: string): string {
  return `arn:aws:sagemaker:${scope.region}:${scope.accountId}:${resource}/${name.toLowerCase()}`;
}

/** The key a resource is stored and looked up under. */
export function nameKey(name: string): string {
  return name.toLowerCase();
}

/** A required name member, checked against SageMaker's pattern; `member` is the camelCase wire name. */
export function requireName(input: Record<string, unknown>, field: string): string {
  const value = input[field];
  const member = field[0].toLowerCase() + field.slice(1);
  if (value === undefined || value === null) {
    throw constraintViolation(value, member, 'Member must not be null');
  }
  if (typeof value !== 'string' || !validName(value)) {
    throw constraintViolation(
      value,
      member,
      'Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}',
    );
  }
  return value;
}
