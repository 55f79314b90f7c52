/**
 * Worker threads running the bundled sentiment model for batch mode's bulk
 * in-process calls: a million-document statement would otherwise score on the
 * event loop that also reads its rows. Workers start on first use and load
 * the model once; a worker that dies fails its task and is replaced on the
 * next one.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { startWorkerThread } from '../../util/worker-thread.js';
import type { SentimentReply, SentimentTask } from './sentiment-protocol.js';

export interface ScoredDocuments {
  /** Per document, its label's index in SENTIMENT_LABELS. */
  labels: Uint8Array;
  /** Per document, its Positive, Negative, Neutral and Mixed scores. */
  scores: Float64Array;
}

interface Pending {
  texts: string[];
  languageCode: string;
  resolve: (scored: ScoredDocuments) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  current: (Pending & { taskId: number }) | undefined;
}

export class SentimentPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextTaskId = 1;
  private closed = false;

  constructor(readonly size = availableParallelism()) {}

  detect(texts: string[], languageCode: string): Promise<ScoredDocuments> {
    if (this.closed) return Promise.reject(new Error('the sentiment pool is shut down'));
    return new Promise((resolve, reject) => {
      this.queue.push({ texts, languageCode, resolve, reject });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const pending of this.queue.splice(0)) pending.reject(new Error('the sentiment pool is shut down'));
    await Promise.all(this.slots.splice(0).map((slot) => slot.worker.terminate()));
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const slot = this.slots.find((s) => !s.current) ?? (this.slots.length < this.size ? this.spawn() : undefined);
      if (!slot) return;
      const pending = this.queue.shift()!;
      const task: SentimentTask = {
        taskId: this.nextTaskId++,
        texts: pending.texts,
        languageCode: pending.languageCode,
      };
      slot.current = { ...pending, taskId: task.taskId };
      slot.worker.postMessage(task);
    }
  }

  private spawn(): Slot {
    const worker = startWorkerThread(import.meta.url, 'sentiment-worker');
    const slot: Slot = { worker, current: undefined };
    worker.on('message', (reply: SentimentReply) => {
      const current = slot.current;
      if (!current || current.taskId !== reply.taskId) return;
      slot.current = undefined;
      if (reply.ok) current.resolve({ labels: reply.labels, scores: reply.scores });
      else current.reject(new Error(reply.message));
      this.dispatch();
    });
    const fail = (reason: string) => {
      const index = this.slots.indexOf(slot);
      if (index === -1) return;
      this.slots.splice(index, 1);
      slot.current?.reject(new Error(`a sentiment worker stopped: ${reason}`));
      slot.current = undefined;
      if (!this.closed) this.dispatch();
    };
    worker.on('error', (error) => fail(error.message));
    worker.on('exit', (code) => fail(`exit code ${code}`));
    // Idle workers must not keep a process alive that is otherwise done.
    worker.unref();
    this.slots.push(slot);
    return slot;
  }
}
