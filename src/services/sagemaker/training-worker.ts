/**
 * The thread one training job runs in, so training never blocks the edge's
 * event loop. It trains with the algorithm's own helper threads (XGBoost's
 * histogram threads) and reports log lines and progress as messages.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ClientError, runAlgorithm } from './training-algorithms.js';
import type { TrainingMessage, TrainingTask } from './training-protocol.js';

const port = parentPort;
if (!port) throw new Error('training-worker must run in a worker thread');
const task = workerData as TrainingTask;
const stop = new Int32Array(task.stop);
const send = (message: TrainingMessage, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

const channels: Record<string, Buffer> = {};
for (const [name, bytes] of Object.entries(task.channels)) {
  channels[name] = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

try {
  const model = await runAlgorithm(task.algorithm, task.hyperparameters, channels, {
    log: (line) => send({ type: 'log', line }),
    onProgress: (progress) => send({ type: 'progress', progress }),
    shouldStop: () => Atomics.load(stop, 0) === 1,
  });
  const files = model.files.map((file) => ({ name: file.name, bytes: new Uint8Array(file.bytes) }));
  send(
    { type: 'done', files, finalMetrics: [...model.finalMetrics], stopped: model.stopped },
    files.map((file) => file.bytes.buffer as ArrayBuffer),
  );
} catch (error) {
  const kind = error instanceof ClientError ? 'ClientError' : 'AlgorithmError';
  send({ type: 'failed', kind, message: (error as Error).message ?? String(error) });
}
