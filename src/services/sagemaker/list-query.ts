/**
 * The List* request members SageMaker shares across resource types: name and
 * time filters, SortBy/SortOrder (default: newest first), MaxResults and an
 * opaque NextToken.
 */
import { constraintViolation, validationException } from './errors.js';

export interface Listable {
  name: string;
  creationTime: number;
  lastModifiedTime?: number;
  status?: string;
}

const DEFAULT_MAX_RESULTS = 10;
const MAX_MAX_RESULTS = 100;

export function listPage<T extends Listable>(
  items: T[],
  input: Record<string, unknown>,
  sortKeys: readonly string[],
): { page: T[]; nextToken: string | undefined } {
  const sortBy = optionalString(input, 'SortBy') ?? 'CreationTime';
  if (!sortKeys.includes(sortBy)) {
    throw constraintViolation(sortBy, 'sortBy', `Member must satisfy enum value set: [${sortKeys.join(', ')}]`);
  }
  const sortOrder = optionalString(input, 'SortOrder') ?? 'Descending';
  if (sortOrder !== 'Ascending' && sortOrder !== 'Descending') {
    throw constraintViolation(sortOrder, 'sortOrder', 'Member must satisfy enum value set: [Ascending, Descending]');
  }
  const maxResults = input.MaxResults === undefined ? DEFAULT_MAX_RESULTS : Number(input.MaxResults);
  if (!Number.isInteger(maxResults) || maxResults < 1 || maxResults > MAX_MAX_RESULTS) {
    throw constraintViolation(
      input.MaxResults,
      'maxResults',
      `Member must have value between 1 and ${MAX_MAX_RESULTS}`,
    );
  }

  const contains = optionalString(input, 'NameContains')?.toLowerCase();
  const status = optionalString(input, 'StatusEquals');
  const createdBefore = optionalTime(input, 'CreationTimeBefore');
  const createdAfter = optionalTime(input, 'CreationTimeAfter');
  const modifiedBefore = optionalTime(input, 'LastModifiedTimeBefore');
  const modifiedAfter = optionalTime(input, 'LastModifiedTimeAfter');
  const selected = items.filter(
    (item) =>
      (contains === undefined || item.name.toLowerCase().includes(contains)) &&
      (status === undefined || item.status === status) &&
      (createdBefore === undefined || item.creationTime < createdBefore) &&
      (createdAfter === undefined || item.creationTime > createdAfter) &&
      (modifiedBefore === undefined || (item.lastModifiedTime ?? item.creationTime) < modifiedBefore) &&
      (modifiedAfter === undefined || (item.lastModifiedTime ?? item.creationTime) > modifiedAfter),
  );

  const direction = sortOrder === 'Ascending' ? 1 : -1;
  selected.sort((a, b) => {
    let order = 0;
    if (sortBy === 'Name') order = a.name.localeCompare(b.name);
    else if (sortBy === 'Status') order = (a.status ?? '').localeCompare(b.status ?? '');
    else order = a.creationTime - b.creationTime;
    // Ties broken by name so that pages never overlap or skip.
    return direction * (order || a.name.localeCompare(b.name));
  });

  const offset = decodeToken(input.NextToken);
  const page = selected.slice(offset, offset + maxResults);
  const next = offset + maxResults;
  return { page, nextToken: next < selected.length ? encodeToken(next) : undefined };
}

function optionalString(input: Record<string, unknown>, member: string): string | undefined {
  const value = input[member];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw validationException(`${member} must be a string`);
  return value;
}

/** JSON 1.1 sends timestamps as epoch seconds. */
function optionalTime(input: Record<string, unknown>, member: string): number | undefined {
  const value = input[member];
  if (value === undefined || value === null) return undefined;
  const seconds = typeof value === 'number' ? value : Date.parse(String(value)) / 1000;
  if (!Number.isFinite(seconds)) throw validationException(`${member} is not a valid timestamp`);
  return seconds;
}

function encodeToken(offset: number): string {
  return Buffer.from(JSON.stringify({ offset })).toString('base64url');
}

function decodeToken(token: unknown): number {
  if (token === undefined || token === null || token === '') return 0;
  try {
    const { offset } = JSON.parse(Buffer.from(String(token), 'base64url').toString('utf8')) as { offset: unknown };
    if (typeof offset === 'number' && Number.isInteger(offset) && offset >= 0) return offset;
  } catch {
    // fall through
  }
  throw validationException('Invalid pagination token');
}
