/**
 * A scoring worker thread: keeps its own copy of each model it has been sent and
 * runs the same decode → predict → encode pipeline as the event loop does.
 */
import { parentPort } from 'node:worker_threads';
import { loadPredictor } from '../../../models/registry.js';
import type { Predictor } from '../../../models/types.js';
import { asContainerError, score } from './scoring.js';
import type { ScoreTask, WorkerReply, WorkerRequest } from './worker-protocol.js';

const port = parentPort;
if (!port) throw new Error('scoring-worker must run in a worker thread');

const predictors = new Map<string, Promise<Predictor>>();

port.on('message', (message: WorkerRequest) => {
  if (message.type === 'release') {
    predictors.delete(message.modelId);
    return;
  }
  void run(message).then((reply) => port.postMessage(reply));
});

async function run(task: ScoreTask): Promise<WorkerReply> {
  try {
    const result = await score(await predictorFor(task), {
      body: Buffer.from(task.body.buffer, task.body.byteOffset, task.body.byteLength),
      inputType: task.inputType,
      outputType: task.outputType,
      features: task.features,
    });
    return { taskId: task.taskId, ok: true, body: result.body, timing: result.timing };
  } catch (error) {
    const failure = asContainerError(error);
    return { taskId: task.taskId, ok: false, status: failure.status, message: failure.message };
  }
}

function predictorFor(task: ScoreTask): Promise<Predictor> {
  let predictor = predictors.get(task.modelId);
  if (!predictor) {
    const { artifact } = task;
    if (!artifact) throw new Error(`model ${task.modelId} was never sent to this worker`);
    predictor = loadPredictor(artifact.algorithm, {
      fileName: artifact.fileName,
      bytes: Buffer.from(artifact.bytes.buffer, artifact.bytes.byteOffset, artifact.bytes.byteLength),
    });
    predictors.set(task.modelId, predictor);
    // A model that fails to load here is forgotten so a later task can try again.
    predictor.catch(() => predictors.delete(task.modelId));
  }
  return predictor;
}
