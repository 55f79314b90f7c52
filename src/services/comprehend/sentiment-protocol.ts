/** Messages between the sentiment pool and its worker threads. */
import type { SentimentLabel } from '../../models/sentiment/index.js';

export const SENTIMENT_LABELS: readonly SentimentLabel[] = ['POSITIVE', 'NEGATIVE', 'NEUTRAL', 'MIXED'];

export interface SentimentTask {
  taskId: number;
  texts: string[];
  languageCode: string;
}

export type SentimentReply =
  | { taskId: number; ok: true; labels: Uint8Array; scores: Float64Array }
  | { taskId: number; ok: false; message: string };
