/**
 * A fixed set of worker threads that score large invocations off the event loop,
 * so one 100,000-row request does not stall every other request on the edge.
 *
 * Workers start on first use. Each keeps the predictors it has been sent (the
 * artifact bytes travel once per worker and model); `release` drops a model
 * everywhere when its endpoint goes away. A worker that dies fails its task with
 * WorkerCrashedError and is replaced on the next dispatch.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { Algorithm } from '../../../models/types.js';
import { startWorkerThread } from '../../../util/worker-thread.js';
import { ContainerError } from './codec.js';
import type { ScoreRequest, ScoreResult } from './scoring.js';
import type { ScoreTask, WorkerReply, WorkerRequest } from './worker-protocol.js';

export interface PooledModel {
  /** Unique per load: a reloaded or replaced model gets a new id. */
  readonly id: string;
  readonly algorithm: Algorithm;
  readonly fileName: string;
  readonly bytes: Buffer;
}

export class WorkerCrashedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkerCrashedError';
  }
}

interface Pending {
  model: PooledModel;
  request: ScoreRequest;
  resolve: (result: ScoreResult) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  loaded: Set<string>;
  current: (Pending & { taskId: number }) | undefined;
}

export class ScoringPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextTaskId = 1;
  private closed = false;

  constructor(readonly size = availableParallelism()) {}

  run(model: PooledModel, request: ScoreRequest): Promise<ScoreResult> {
    if (this.closed) return Promise.reject(new WorkerCrashedError('the scoring pool is shut down'));
    return new Promise((resolve, reject) => {
      this.queue.push({ model, request, resolve, reject });
      this.dispatch();
    });
  }

  /** Forget a model in every worker (its endpoint was deleted or now serves another model). */
  release(modelId: string): void {
    const message: WorkerRequest = { type: 'release', modelId };
    for (const slot of this.slots) {
      if (slot.loaded.delete(modelId)) slot.worker.postMessage(message);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const pending of this.queue.splice(0)) pending.reject(new WorkerCrashedError('the scoring pool is shut down'));
    // Running tasks too: their workers' exit events find no slot once the slots are gone.
    for (const slot of this.slots) slot.current?.reject(new WorkerCrashedError('the scoring pool is shut down'));
    await Promise.all(this.slots.splice(0).map((slot) => slot.worker.terminate()));
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const pending = this.queue[0];
      const slot = this.idleSlot(pending.model.id);
      if (!slot) return;
      this.queue.shift();
      this.start(slot, pending);
    }
  }

  /** An idle worker, preferring one that already holds the model; a new one when all are busy. */
  private idleSlot(modelId: string): Slot | undefined {
    let idle: Slot | undefined;
    for (const slot of this.slots) {
      if (slot.current) continue;
      if (slot.loaded.has(modelId)) return slot;
      idle ??= slot;
    }
    if (idle) return idle;
    return this.slots.length < this.size ? this.spawn() : undefined;
  }

  private start(slot: Slot, pending: Pending): void {
    const taskId = this.nextTaskId++;
    const { model, request } = pending;
    // The body (and rows) are copied into buffers of their own so they can be transferred, not cloned.
    const body = new Uint8Array(request.body);
    const task: ScoreTask = {
      type: 'score',
      taskId,
      modelId: model.id,
      body,
      inputType: request.inputType,
      outputType: request.outputType,
    };
    const transfer: ArrayBuffer[] = [body.buffer as ArrayBuffer];
    if (request.features) {
      const data = new Float64Array(request.features.data);
      task.features = { data, rows: request.features.rows, cols: request.features.cols };
      transfer.push(data.buffer as ArrayBuffer);
    }
    if (!slot.loaded.has(model.id)) {
      task.artifact = { algorithm: model.algorithm, fileName: model.fileName, bytes: new Uint8Array(model.bytes) };
      slot.loaded.add(model.id);
    }
    slot.current = { ...pending, taskId };
    slot.worker.postMessage(task, transfer);
  }

  private spawn(): Slot {
    const worker = startWorkerThread(import.meta.url, 'scoring-worker');
    const slot: Slot = { worker, loaded: new Set(), current: undefined };
    worker.on('message', (reply: WorkerReply) => {
      const current = slot.current;
      if (!current || current.taskId !== reply.taskId) return;
      slot.current = undefined;
      if (reply.ok) current.resolve({ body: reply.body, timing: reply.timing });
      else current.reject(new ContainerError(reply.status, reply.message));
      this.dispatch();
    });
    const fail = (reason: string) => {
      const index = this.slots.indexOf(slot);
      if (index === -1) return;
      this.slots.splice(index, 1);
      slot.current?.reject(new WorkerCrashedError(`a scoring worker stopped: ${reason}`));
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
