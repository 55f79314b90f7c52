/**
 * Builds the histograms of one tree level on several threads: each node's rows
 * are split into equal parts, the training thread sums the first part while
 * each helper thread sums one of the others into its own buffer, then the
 * training thread adds the helpers' partial histograms to its own. Row-parallel
 * rather than feature-parallel so that narrow data (3 features) still splits evenly.
 */
import type { Worker } from 'node:worker_threads';
import { startWorkerThread } from '../../../util/worker-thread.js';
import type { HelperReply, HelperRequest } from './hist-protocol.js';
import { accumulateHistogram, type BinnedMatrix } from './histogram.js';

/** Below this many bin reads a level is built on the training thread alone: a message round trip costs more. */
const PARALLEL_MIN_WORK = 60_000;

interface Helper {
  worker: Worker;
  out: SharedArrayBuffer;
  failure: Error | undefined;
}

export class HistogramPool {
  private readonly helpers: Helper[] = [];
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();

  constructor(
    private readonly matrix: BinnedMatrix,
    private readonly grad: Float32Array,
    private readonly hess: Float32Array,
    private readonly rowIndex: Int32Array,
    threads: number,
  ) {
    const shared = [matrix.bins, grad, hess, rowIndex].every((a) => a.buffer instanceof SharedArrayBuffer);
    if (!shared) threads = 1;
    for (let i = 1; i < threads; i++) this.helpers.push(this.spawn());
  }

  get threads(): number {
    return this.helpers.length + 1;
  }

  /** One histogram (slots × 2 doubles) per [begin, end) range of the row partition. */
  async build(ranges: Int32Array): Promise<Float64Array[]> {
    const count = ranges.length / 2;
    const width = this.matrix.slots * 2;
    const results = Array.from({ length: count }, () => new Float64Array(width));
    let rows = 0;
    for (let t = 0; t < count; t++) rows += ranges[2 * t + 1] - ranges[2 * t];
    const parts = this.helpers.length + 1;
    if (parts === 1 || rows * this.matrix.cols < PARALLEL_MIN_WORK) {
      for (let t = 0; t < count; t++) this.accumulate(ranges[2 * t], ranges[2 * t + 1], results[t]);
      return results;
    }
    // Part p of range t: rows [begin + p·len/parts, begin + (p+1)·len/parts).
    const split = (t: number, p: number) => {
      const begin = ranges[2 * t];
      const length = ranges[2 * t + 1] - begin;
      return begin + Math.floor((length * p) / parts);
    };
    const pending = this.helpers.map((helper, h) => {
      const mine: number[] = [];
      for (let t = 0; t < count; t++) mine.push(split(t, h + 1), split(t, h + 2));
      const bytes = count * width * 8;
      if (helper.out.byteLength < bytes) {
        helper.out = new SharedArrayBuffer(Math.max(bytes, helper.out.byteLength * 2));
        helper.worker.postMessage({ type: 'output', out: helper.out } satisfies HelperRequest);
      }
      return this.request(helper, { type: 'build', id: 0, ranges: mine });
    });
    for (let t = 0; t < count; t++) this.accumulate(ranges[2 * t], split(t, 1), results[t]);
    await Promise.all(pending);
    for (const helper of this.helpers) {
      const partial = new Float64Array(helper.out, 0, count * width);
      for (let t = 0; t < count; t++) {
        const result = results[t];
        const offset = t * width;
        for (let i = 0; i < width; i++) result[i] += partial[offset + i];
      }
    }
    return results;
  }

  async close(): Promise<void> {
    for (const { reject } of this.waiting.values()) reject(new Error('histogram pool closed'));
    this.waiting.clear();
    await Promise.all(this.helpers.splice(0).map((helper) => helper.worker.terminate()));
  }

  private accumulate(begin: number, end: number, hist: Float64Array): void {
    accumulateHistogram(this.matrix, this.grad, this.hess, this.rowIndex, begin, end, hist, 0);
  }

  private request(helper: Helper, message: HelperRequest & { type: 'build' }): Promise<void> {
    if (helper.failure) return Promise.reject(helper.failure);
    const id = this.nextId++;
    message.id = id;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      // Referenced only while it works for us: an idle helper must not keep the process alive.
      helper.worker.ref();
      helper.worker.postMessage(message);
    });
  }

  private spawn(): Helper {
    const worker = startWorkerThread(import.meta.url, 'hist-worker');
    const helper: Helper = { worker, out: new SharedArrayBuffer(8), failure: undefined };
    const init: HelperRequest = {
      type: 'init',
      bins: this.matrix.bins.buffer as SharedArrayBuffer,
      rows: this.matrix.rows,
      cols: this.matrix.cols,
      slotOffsets: this.matrix.slotOffsets,
      slots: this.matrix.slots,
      grad: this.grad.buffer as SharedArrayBuffer,
      hess: this.hess.buffer as SharedArrayBuffer,
      rowIndex: this.rowIndex.buffer as SharedArrayBuffer,
    };
    worker.postMessage(init);
    worker.on('message', (reply: HelperReply) => {
      const waiter = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      worker.unref();
      waiter?.resolve();
    });
    const fail = (error: Error) => {
      helper.failure = error;
      for (const [id, waiter] of this.waiting) {
        this.waiting.delete(id);
        waiter.reject(error);
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`a histogram helper thread exited (code ${code})`)));
    worker.unref();
    return helper;
  }
}
