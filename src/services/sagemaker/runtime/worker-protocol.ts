/** Messages between the scoring pool and its worker threads. */
import type { Algorithm } from '../../../models/types.js';
import type { ScoreTiming } from './scoring.js';

export interface ScoreTask {
  type: 'score';
  taskId: number;
  modelId: string;
  /** Sent the first time a worker sees a model; it keeps the loaded predictor until released. */
  artifact?: { algorithm: Algorithm; fileName: string; bytes: Uint8Array };
  body: Uint8Array;
  /** Rows already read as numbers (ScoreRequest.features), transferred rather than cloned. */
  features?: { data: Float64Array; rows: number; cols: number };
  inputType: string;
  outputType: string;
}

export interface ReleaseModel {
  type: 'release';
  modelId: string;
}

export type WorkerRequest = ScoreTask | ReleaseModel;

export type WorkerReply =
  | { taskId: number; ok: true; body: string; timing: ScoreTiming }
  | { taskId: number; ok: false; status: number; message: string };
