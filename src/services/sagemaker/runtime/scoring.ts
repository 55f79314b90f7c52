/**
 * One invocation from body to body: decode the rows, predict, encode the answer.
 * The same function runs on the event loop for small requests and in a worker
 * thread for large ones, so both paths answer byte for byte alike.
 */
import { type FeatureMatrix, ModelFormatError, ModelInputError, type Predictor } from '../../../models/types.js';
import { ContainerError, decodeInput, encodeOutput } from './codec.js';

export interface ScoreRequest {
  body: Buffer;
  /** Canonical input type (codec.inputType). */
  inputType: string;
  /** Canonical output type (codec.outputType). */
  outputType: string;
  /**
   * The rows of a text/csv body already read as numbers, by pgsage's own
   * gateway in this process (the body is then empty): exactly what decoding
   * the CSV text would give, without writing and parsing it.
   */
  features?: FeatureMatrix;
}

/** Timing of the stages, for the request log and the round-trip benchmark. */
export interface ScoreTiming {
  rows: number;
  decodeMs: number;
  predictMs: number;
  encodeMs: number;
}

export interface ScoreResult {
  body: string;
  timing: ScoreTiming;
}

/** Rejects only with ContainerError: the status and message a model container would answer with. */
export async function score(predictor: Predictor, request: ScoreRequest): Promise<ScoreResult> {
  try {
    const t0 = performance.now();
    const features = request.features ?? decodeInput(request.body, request.inputType);
    if (features.rows === 0) throw new ModelInputError('the request body contains no rows');
    const t1 = performance.now();
    const predictions = await predictor.predict(features);
    const t2 = performance.now();
    const body = encodeOutput(predictions, request.outputType);
    const t3 = performance.now();
    return { body, timing: { rows: features.rows, decodeMs: t1 - t0, predictMs: t2 - t1, encodeMs: t3 - t2 } };
  } catch (error) {
    throw asContainerError(error);
  }
}

export function asContainerError(error: unknown): ContainerError {
  if (error instanceof ContainerError) return error;
  // Bad rows are the caller's fault (4xx); anything else is the model's (5xx), as a container would say.
  if (error instanceof ModelInputError) return new ContainerError(400, error.message);
  if (error instanceof ModelFormatError) return new ContainerError(500, error.message);
  return new ContainerError(500, `prediction failed: ${(error as Error)?.message ?? String(error)}`);
}
