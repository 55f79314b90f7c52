/**
 * Request bodies → feature rows and predictions → response bodies, in the
 * content types SageMaker's built-in algorithm containers speak.
 *
 * Input:
 *   text/csv                one row per line, no header, empty field = missing
 *   application/json        {"instances":[{"features":[…]}, …]}            (Linear Learner, RCF, k-means …)
 *                           {"instances":[{"data":{"features":{"values":[…]}}}]}  (their long form)
 *                           {"instances":[[…], …]}, [[…], …] or a single row […]
 *   application/jsonlines   one {"features":[…]} or […] per line
 * Output (Accept):
 *   text/csv                one line per input row, joined with "\n" (no trailing newline,
 *                           so a one-row answer is exactly what the container prints)
 *   application/json        the algorithm's own JSON document
 *   application/jsonlines   each entry of that document's list on a line of its own
 */
import { parseCsvFeatures } from '../../../models/csv-features.js';
import { type FeatureMatrix, ModelInputError, type Predictions } from '../../../models/types.js';

export const CSV = 'text/csv';
export const JSON_TYPE = 'application/json';
export const JSON_LINES = 'application/jsonlines';

const INPUT_TYPES: Record<string, string> = {
  'text/csv': CSV,
  'application/csv': CSV,
  'application/json': JSON_TYPE,
  'application/jsonlines': JSON_LINES,
  'application/jsonl': JSON_LINES,
  'application/x-jsonlines': JSON_LINES,
};
const OUTPUT_TYPES: Record<string, string> = INPUT_TYPES;

/** A failure the model container would answer with this HTTP status (wrapped in a ModelError by the runtime). */
export class ContainerError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ContainerError';
  }
}

function mediaType(header: string): string {
  return header.split(';')[0].trim().toLowerCase();
}

/** The canonical input type for a Content-Type header; SageMaker's containers default to CSV. */
export function inputType(contentType: string | undefined): string {
  if (!contentType) return CSV;
  const type = INPUT_TYPES[mediaType(contentType)];
  if (!type) {
    throw new ContainerError(
      415,
      `Content type ${mediaType(contentType)} is not supported. Supported content types: text/csv, application/json, application/jsonlines`,
    );
  }
  return type;
}

/**
 * The response type for an Accept header: its most preferred supported type; a
 * wildcard or no header answers in the request's own type.
 */
export function outputType(accept: string | undefined, requestType: string): string {
  if (!accept) return requestType;
  const offers = accept
    .split(',')
    .map((part, order) => {
      const [type, ...params] = part.split(';');
      const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
      return { type: type.trim().toLowerCase(), q: q ? Number(q.slice(2)) : 1, order };
    })
    .filter((offer) => offer.type !== '' && offer.q > 0)
    .sort((a, b) => b.q - a.q || a.order - b.order);
  for (const { type } of offers) {
    if (type === '*/*' || type === `${requestType.split('/')[0]}/*`) return requestType;
    const known = OUTPUT_TYPES[type];
    if (known) return known;
    if (type === 'text/*') return CSV;
    if (type === 'application/*') return JSON_TYPE;
  }
  throw new ContainerError(
    406,
    `Accept type ${accept} is not supported. Supported accept types: text/csv, application/json, application/jsonlines`,
  );
}

export function decodeInput(body: Buffer, type: string): FeatureMatrix {
  switch (type) {
    case CSV:
      return parseCsvFeatures(body);
    case JSON_TYPE:
      return rowsToMatrix(jsonRows(parseJson(body.toString('utf8'), 'the request body')));
    default:
      return rowsToMatrix(jsonLinesRows(body.toString('utf8')));
  }
}

export function encodeOutput(predictions: Predictions, type: string): string {
  switch (type) {
    case CSV:
      return predictions.csvLines().join('\n');
    case JSON_TYPE:
      return JSON.stringify(predictions.json());
    default:
      return jsonLines(predictions.json());
  }
}

/**
 * Cheap upper estimate of the rows in a body, to decide where to score it before
 * parsing: line breaks for CSV and JSON lines, '[' for JSON (each row is one array).
 */
export function estimateRows(body: Buffer, type: string): number {
  const marker = type === JSON_TYPE ? 0x5b : 0x0a;
  let count = 1;
  for (let at = body.indexOf(marker); at !== -1; at = body.indexOf(marker, at + 1)) count++;
  return count;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ModelInputError(`${what} is not valid JSON: ${(error as Error).message}`);
  }
}

function jsonRows(document: unknown): unknown[] {
  if (Array.isArray(document)) {
    // A single row [1,2,3] or a list of rows [[…],[…]].
    return document.length > 0 && document.every((v) => typeof v === 'number' || v === null) ? [document] : document;
  }
  if (isObject(document)) {
    if (Array.isArray(document.instances)) return document.instances;
    if ('features' in document || 'data' in document) return [document];
  }
  throw new ModelInputError(
    'JSON input must be {"instances": [{"features": [...]}, ...]}, a list of rows [[...], ...], or one row [...]',
  );
}

function jsonLinesRows(text: string): unknown[] {
  const rows: unknown[] = [];
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    rows.push(parseJson(line, `JSON line ${index + 1}`));
  });
  return rows;
}

/** The feature list of one instance in any of the accepted shapes. */
function featuresOf(instance: unknown): unknown {
  if (Array.isArray(instance)) return instance;
  if (isObject(instance)) {
    if ('features' in instance) return instance.features;
    const data = instance.data;
    if (isObject(data) && isObject(data.features)) return data.features.values;
  }
  return undefined;
}

function rowsToMatrix(instances: unknown[]): FeatureMatrix {
  const rows = instances.length;
  let cols = -1;
  let data = new Float64Array(0);
  instances.forEach((instance, r) => {
    const features = featuresOf(instance);
    if (!Array.isArray(features)) {
      throw new ModelInputError(`instance ${r + 1}: expected a list of feature values or {"features": [...]}`, r);
    }
    if (cols === -1) {
      cols = features.length;
      data = new Float64Array(rows * cols);
    } else if (features.length !== cols) {
      throw new ModelInputError(`instance ${r + 1} has ${features.length} features, expected ${cols}`, r);
    }
    features.forEach((value, c) => {
      if (value === null) data[r * cols + c] = Number.NaN;
      else if (typeof value === 'number') data[r * cols + c] = value;
      else
        throw new ModelInputError(`instance ${r + 1}, feature ${c + 1}: ${JSON.stringify(value)} is not a number`, r);
    });
  });
  return { data, rows, cols: Math.max(cols, 0) };
}

function jsonLines(document: unknown): string {
  // As the containers' json_to_jsonlines: the entries of the document's one list, one per line.
  if (isObject(document)) {
    const values = Object.values(document);
    if (values.length === 1 && Array.isArray(values[0]))
      return values[0].map((entry) => JSON.stringify(entry)).join('\n');
  }
  return JSON.stringify(document);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
