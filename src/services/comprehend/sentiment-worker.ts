/**
 * A sentiment worker thread: loads the bundled model once and answers each
 * task's documents with their labels (codes into SENTIMENT_LABELS) and their
 * four scores, as typed arrays that travel back without copying.
 */
import { parentPort } from 'node:worker_threads';
import { loadSentimentModel, type SentimentModel } from '../../models/sentiment/index.js';
import { SENTIMENT_LABELS, type SentimentReply, type SentimentTask } from './sentiment-protocol.js';

const port = parentPort;
if (!port) throw new Error('sentiment-worker must run in a worker thread');

let model: SentimentModel | undefined;

port.on('message', (task: SentimentTask) => {
  let reply: SentimentReply;
  try {
    model ??= loadSentimentModel();
    const results = model.detectBatch(task.texts, task.languageCode);
    const labels = new Uint8Array(results.length);
    const scores = new Float64Array(results.length * 4);
    for (let i = 0; i < results.length; i++) {
      const { sentiment, scores: s } = results[i];
      labels[i] = SENTIMENT_LABELS.indexOf(sentiment);
      scores.set([s.Positive, s.Negative, s.Neutral, s.Mixed], i * 4);
    }
    reply = { taskId: task.taskId, ok: true, labels, scores };
    port.postMessage(reply, [labels.buffer, scores.buffer]);
  } catch (error) {
    reply = { taskId: task.taskId, ok: false, message: (error as Error).message };
    port.postMessage(reply);
  }
});
