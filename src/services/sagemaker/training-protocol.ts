/** Messages between the training-job manager and the thread that trains one job. */
import type { TrainingAlgorithm, TrainingProgress } from './training-algorithms.js';

export interface TrainingTask {
  algorithm: TrainingAlgorithm;
  hyperparameters: Record<string, string>;
  /** Channel name → the channel's bytes (its objects concatenated). */
  channels: Record<string, Uint8Array>;
  /** Int32 flag: the manager sets it to 1 to ask the trainer to stop after the current round. */
  stop: SharedArrayBuffer;
}

export type TrainingMessage =
  | { type: 'log'; line: string }
  | { type: 'progress'; progress: TrainingProgress }
  | {
      type: 'done';
      files: { name: string; bytes: Uint8Array }[];
      finalMetrics: { name: string; value: number }[];
      stopped: boolean;
    }
  | { type: 'failed'; kind: 'ClientError' | 'AlgorithmError'; message: string };
