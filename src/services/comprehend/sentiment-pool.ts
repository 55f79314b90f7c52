/**
 * Worker threads running the bundled sentiment model for batch mode's
 * many-at-once in-process calls: a million-document statement would otherwise
 * score on the event loop that also reads its rows. Workers start on first
 * use and load the model once.
 *
 * A call's documents go to the workers in tasks of at most TASK_DOCUMENTS,
 * taken from the calls waiting in turn, so that one session's large call
 * does not hold up another's small one; a call whose signal aborts takes no
 * more tasks. A worker that dies fails its call, and is replaced on the next.
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

/** Small enough that a task takes about a millisecond. */
const TASK_DOCUMENTS = 250;

interface Call {
  texts: string[];
  languageCode: string;
  result: ScoredDocuments;
  /** The first document not yet sent, and how many sent ones are still being scored. */
  next: number;
  running: number;
  signal: AbortSignal | undefined;
  resolve: (scored: ScoredDocuments) => void;
  reject: (error: Error) => void;
  settled: boolean;
}

interface Slot {
  worker: Worker;
  current: { taskId: number; call: Call; first: number } | undefined;
}

export class SentimentPool {
  private readonly slots: Slot[] = [];
  /** Calls with documents still to send, served in turn. */
  private waiting: Call[] = [];
  private nextTaskId = 1;
  private closed = false;

  /** One worker fewer than the cores (at least one): the event loop and PostgreSQL need a core too. */
  constructor(readonly size = Math.max(1, availableParallelism() - 1)) {}

  detect(texts: string[], languageCode: string, signal?: AbortSignal): Promise<ScoredDocuments> {
    if (this.closed) return Promise.reject(new Error('the sentiment pool is shut down'));
    if (signal?.aborted) return Promise.reject(aborted(signal));
    return new Promise((resolve, reject) => {
      const call: Call = {
        texts,
        languageCode,
        result: { labels: new Uint8Array(texts.length), scores: new Float64Array(texts.length * 4) },
        next: 0,
        running: 0,
        signal,
        resolve,
        reject,
        settled: false,
      };
      if (texts.length === 0) {
        resolve(call.result);
        return;
      }
      signal?.addEventListener('abort', () => this.fail(call, aborted(signal)), { once: true });
      this.waiting.push(call);
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const stopped = new Error('the sentiment pool is shut down');
    for (const call of this.waiting.splice(0)) this.fail(call, stopped);
    for (const slot of this.slots) if (slot.current) this.fail(slot.current.call, stopped);
    await Promise.all(this.slots.splice(0).map((slot) => slot.worker.terminate()));
  }

  private fail(call: Call, error: Error): void {
    if (call.settled) return;
    call.settled = true;
    this.waiting = this.waiting.filter((c) => c !== call);
    call.reject(error);
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      const slot = this.slots.find((s) => !s.current) ?? (this.slots.length < this.size ? this.spawn() : undefined);
      if (!slot) return;
      const call = this.waiting.shift()!;
      const first = call.next;
      const texts = call.texts.slice(first, first + TASK_DOCUMENTS);
      call.next += texts.length;
      call.running += 1;
      // Back of the line once it has had its turn.
      if (call.next < call.texts.length) this.waiting.push(call);
      const task: SentimentTask = { taskId: this.nextTaskId++, texts, languageCode: call.languageCode };
      slot.current = { taskId: task.taskId, call, first };
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
      const { call, first } = current;
      call.running -= 1;
      if (!reply.ok) this.fail(call, new Error(reply.message));
      else if (!call.settled) {
        call.result.labels.set(reply.labels, first);
        call.result.scores.set(reply.scores, first * 4);
        if (call.next === call.texts.length && call.running === 0) {
          call.settled = true;
          call.resolve(call.result);
        }
      }
      this.dispatch();
    });
    const stop = (reason: string) => {
      const index = this.slots.indexOf(slot);
      if (index === -1) return;
      this.slots.splice(index, 1);
      if (slot.current) this.fail(slot.current.call, new Error(`a sentiment worker stopped: ${reason}`));
      slot.current = undefined;
      if (!this.closed) this.dispatch();
    };
    worker.on('error', (error) => stop(error.message));
    worker.on('exit', (code) => stop(`exit code ${code}`));
    // Idle workers must not keep a process alive that is otherwise done.
    worker.unref();
    this.slots.push(slot);
    return slot;
  }
}

function aborted(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('the call was canceled');
}
