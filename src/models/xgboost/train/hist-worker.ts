/**
 * A helper thread of the XGBoost trainer: builds its share of the histograms of
 * one tree level. Everything it reads (bins, gradients, the row partition) lives
 * in SharedArrayBuffers the training thread owns and does not touch while a
 * level is being built; results go to the helper's own shared output buffer.
 */
import { parentPort } from 'node:worker_threads';
import type { HelperReply, HelperRequest } from './hist-protocol.js';
import { accumulateHistogram, type BinnedMatrix } from './histogram.js';

const port = parentPort;
if (!port) throw new Error('hist-worker must run in a worker thread');

let matrix: BinnedMatrix | undefined;
let grad: Float32Array | undefined;
let hess: Float32Array | undefined;
let rowIndex: Int32Array | undefined;
let out: Float64Array | undefined;

port.on('message', (message: HelperRequest) => {
  if (message.type === 'init') {
    matrix = {
      bins: new Uint16Array(message.bins),
      rows: message.rows,
      cols: message.cols,
      slotOffsets: Int32Array.from(message.slotOffsets),
      slots: message.slots,
    };
    grad = new Float32Array(message.grad);
    hess = new Float32Array(message.hess);
    rowIndex = new Int32Array(message.rowIndex);
    return;
  }
  if (message.type === 'output') {
    // Sent only when the output buffer grows: posting a SharedArrayBuffer with every request costs milliseconds.
    out = new Float64Array(message.out);
    return;
  }
  if (!matrix || !grad || !hess || !rowIndex || !out) throw new Error('hist-worker used before init');
  const width = matrix.slots * 2;
  const { ranges } = message;
  for (let t = 0; t < ranges.length / 2; t++) {
    out.fill(0, t * width, (t + 1) * width);
    accumulateHistogram(matrix, grad, hess, rowIndex, ranges[2 * t], ranges[2 * t + 1], out, t * width);
  }
  const reply: HelperReply = { type: 'built', id: message.id };
  port.postMessage(reply);
});
