import {
  COMPREHEND_BATCH_LIMIT,
  type MlServices,
  OversizeAnswerError,
  SAGEMAKER_PAYLOAD_LIMIT_BYTES,
  type SentimentItem,
} from '../ml/client.js';
import { modelInputToCsv } from '../ml/model-input.js';
import { singleRowOutput } from '../ml/per-row.js';
import { retryingThrottled } from '../ml/throttling.js';
import type { FeatureMatrix } from '../models/types.js';
import { SqlError, SqlState } from '../util/errors.js';
import { DistinctKeyBytes } from './distinct-key-bytes.js';
import type { MlKind } from './ml-calls.js';
import type { BatchTally } from './statistics.js';

/** What one call returned: sentiment (label, confidence) or model output (text). */
export interface CallResult {
  outText: string | null;
  outReal: number | null;
  /** The service refused this input (see BatchScorer.declined): no answer is stored for it. */
  declined?: boolean;
}

const DECLINED: CallResult = { outText: null, outReal: null, declined: true };

/**
 * Extra requests a batch may spend finding the rows a model refuses (see
 * BatchScorer.isolating): each refused row costs about 2·log2(rows), so a
 * quarter of the rows lets a few dozen refused ones among 10,000 be found
 * instead of sending thousands of rows per row.
 */
const isolationRequests = (rows: number) => Math.max(64, Math.ceil(rows / 4));

/** Requests the search sends before giving up when none of them was answered. */
const ISOLATION_PROBES = 24;

interface IsolationBudget {
  left: number;
  spent: number;
  /** A request of the batch was answered: the model takes some of its rows. */
  answered: boolean;
}

/**
 * Errors about the inputs themselves (a document too long, a language or
 * endpoint that does not exist, a NULL one): the per-row path raises them only
 * for the rows PostgreSQL really calls for, which a CASE or a condition may
 * spare. Batch mode stores no answer for such inputs instead of failing, and
 * the statement's per-row fallback raises the error if the call is made.
 */
const INPUT_ERRORS = new Set<string>([
  SqlState.stringDataRightTruncation,
  SqlState.invalidParameterValue,
  SqlState.nullValueNotAllowed,
  SqlState.undefinedObject,
]);
const refusesInput = (error: unknown) => error instanceof SqlError && INPUT_ERRORS.has(error.sqlstate);

/** An endpoint answered a batch otherwise than one line per row (see BatchScorer.outputsOf). */
class UnbatchableAnswer extends Error {}

let figuresMade = 0;

/** Figures of one call group, for EXPLAIN ANALYZE and monitoring. */
export class BatchFigures {
  /** Tells one call group's batches from another's (see BatchScorer.enqueue). */
  readonly id = ++figuresMade;
  readonly sizes: number[] = [];
  readonly times: number[] = [];
  retries = 0;

  /** `tally` counts the function's batches for monitoring as they come (see BatchStatistics.tally). */
  constructor(private readonly tally?: BatchTally) {}

  record(size: number, ms: number): void {
    this.sizes.push(size);
    this.times.push(ms);
    this.tally?.batch(size, ms);
  }

  retried(): void {
    this.retries += 1;
    this.tally?.retry();
  }

  get rows(): number {
    return this.sizes.reduce((a, b) => a + b, 0);
  }

  /** Aurora's line: `Batch Processing: num batches=N avg/min/max batch size=… avg/min/max batch call time=…`. */
  describe(): string {
    const stats = (values: number[]) => {
      if (values.length === 0) return '0.000/0.000/0.000';
      const avg = values.reduce((a, b) => a + b, 0) / values.length;
      return `${avg.toFixed(3)}/${Math.min(...values).toFixed(3)}/${Math.max(...values).toFixed(3)}`;
    };
    return `Batch Processing: num batches=${this.sizes.length} avg/min/max batch size=${stats(this.sizes)} avg/min/max batch call time=${stats(this.times)}`;
  }
}

/** One answer, ready to be stored. */
export interface Completed {
  kind: MlKind;
  target: string;
  key: string;
  format: KeyFormat;
  result: CallResult;
}

/** The most bytes one number takes as a CSV field, separator included (`-1.2345678901234567e-308,`). */
const CSV_FIELD_BYTES = 25;

/** The most rows of `cols` numbers one endpoint request takes, as their CSV text could be at its longest. */
export const rowsPerEndpointRequest = (cols: number): number =>
  Math.max(1, Math.floor(SAGEMAKER_PAYLOAD_LIMIT_BYTES / (cols * CSV_FIELD_BYTES)));

export const AUTO_SENTIMENT_BATCH = COMPREHEND_BATCH_LIMIT;
export const AUTO_ENDPOINT_BATCH = 10_000;

export interface ScoringOptions {
  services: MlServices;
  /** Batches in flight at once. */
  concurrency: number;
  signal: AbortSignal;
  /** Throttled calls are retried until then (epoch ms). */
  deadline: number;
  onProgress?: (scored: number) => void;
  /**
   * An endpoint refused a batch of several rows whole (a request larger than its own limit), or answered it
   * otherwise than a line per row: its calls of the statement are made one row at a time from then on, by the
   * per-row fallback (said once per endpoint, with why and what to do).
   */
  onOneRowAtATime?: (reason: { label: string; target: string; message: string; hint: string }) => void;
  /** Keep a list of answers as they come (takeCompleted), for loading them per input. Default true. */
  listCompleted?: boolean;
}

/** How a key holds model inputs: the JSON array PostgreSQL built, or the CSV line the gateway wrote. */
export type KeyFormat = 'json' | 'csv';

interface Batch {
  kind: MlKind;
  target: string;
  format: KeyFormat;
  keys: string[];
  /** Model inputs as numbers instead of keys (see BatchScorer.addFeatureRows). */
  features?: FeatureMatrix;
  /** Where each input's answer goes (see BatchScorer.isAnswered / textOf / realOf). */
  slots: number[];
  figures: BatchFigures;
  label: string;
  number: number;
  bufferKey: string;
  /** Answers are listed for the results stored per input (takeCompleted); else read by slot only. */
  listed: boolean;
  /** The bytes of its keys, a newline each (endpoint batches: see enqueue). */
  bytes: number;
}

/** Which buffer an input goes to. */
interface BufferSpec {
  kind: MlKind;
  target: string;
  format: KeyFormat;
  batchSize: number;
  figures: BatchFigures;
  label: string;
  listed: boolean;
}

function sameBuffer(a: BufferSpec, b: BufferSpec): boolean {
  return (
    a.kind === b.kind &&
    a.target === b.target &&
    a.format === b.format &&
    a.batchSize === b.batchSize &&
    a.label === b.label &&
    a.listed === b.listed &&
    a.figures === b.figures
  );
}

/** One value per function, target and key format, found again without building its key on every row. */
class PerTarget<T> {
  private readonly values = new Map<string, T>();
  private last: { kind: MlKind; target: string; format: KeyFormat; value: T } | undefined;

  clear(): void {
    this.values.clear();
    this.last = undefined;
  }

  get(kind: MlKind, target: string, format: KeyFormat, make: () => T): T {
    const last = this.last;
    if (last && last.kind === kind && last.target === target && last.format === format) return last.value;
    const id = `${kind}\u0000${target}\u0000${format}`;
    let value = this.values.get(id);
    if (value === undefined) {
      value = make();
      this.values.set(id, value);
    }
    this.last = { kind, target, format, value };
    return value;
  }
}

/**
 * Collects the distinct inputs of a statement's ML calls, cuts them into
 * batches of max_rows_per_batch, keeps up to K batches in flight and keeps
 * every answer for loading into the results table.
 */
export class BatchScorer {
  /** The slot of each input seen, per kind and target (nested so that no key string is built per row). */
  private readonly seen = new PerTarget<Map<string, number>>();
  private readonly keyTables = new PerTarget<DistinctKeyBytes>();
  /** Answers by slot, kept as two columns (not an object per answer: a million-row statement keeps them all). */
  private readonly texts: (string | null | undefined)[] = [];
  private readonly reals: (number | null)[] = [];
  /** The buffer the previous input went to, found again without building its key. */
  private lastBuffer: { buffer: Batch; spec: BufferSpec } | undefined;
  private readonly completed: Completed[] = [];
  private readonly buffers = new Map<string, Batch>();
  /** Batches waiting for one of the K slots, oldest first (from `queueHead`). */
  private queue: (Batch | undefined)[] = [];
  private queueHead = 0;
  private inFlight = 0;
  /** Requests to the service in flight (see oneRequest), and those waiting for one to end. */
  private requestsInFlight = 0;
  private readonly requestWaiters: (() => void)[] = [];
  private failure: unknown;
  /** Slots whose input the service refused (few; most statements have none). */
  private readonly declined = new Set<number>();
  /** Function and target pairs the service refused whole (an unknown endpoint…): not called again. */
  private readonly refusedTargets = new Set<string>();
  /** Endpoints whose answers to a request grew too large, and the size of their answers (see AnswerSizes). */
  private readonly tooLarge = new AnswerSizes();
  private scored = 0;
  private batchNumber = 0;
  private drainWaiters: (() => void)[] = [];

  constructor(private readonly options: ScoringOptions) {
    // A statement stopped (a cancel, statement_timeout, the heap guard) may still read the rest of its argument rows,
    // unused: what it holds goes now, not when they end.
    options.signal.addEventListener('abort', () => this.release(), { once: true });
  }

  private release(): void {
    this.seen.clear();
    this.keyTables.clear();
    this.texts.length = 0;
    this.reals.length = 0;
    this.completed.length = 0;
    this.buffers.clear();
    this.lastBuffer = undefined;
    this.queue = [];
    this.queueHead = 0;
    this.declined.clear();
  }

  /**
   * Adds one input (one the SQL function would send: not NULL, not blank
   * sentiment text); a full buffer becomes a batch. Returns the slot its
   * answer will have (the same for a repeated input), or -1 when none will
   * come (the statement already failed).
   */
  add(
    kind: MlKind,
    target: string | null,
    key: string,
    batchSize: number,
    figures: BatchFigures,
    label: string,
    format: KeyFormat = 'json',
  ): number {
    if (!this.acceptsTarget(target)) return -1;
    const slots = this.seenSlots(kind, target, format);
    const known = slots.get(key);
    if (known !== undefined) return known;
    const slot = this.reserveSlot();
    slots.set(key, slot);
    this.enqueue({ kind, target, format, batchSize, figures, label, listed: true }, key, slot);
    return slot;
  }

  /**
   * Adds an input its caller found to be new and reserved a slot for (see
   * DistinctKeyBytes): its answer is read by slot only, never listed for the
   * results stored per input.
   */
  addNew(
    kind: MlKind,
    target: string,
    key: string,
    slot: number,
    batchSize: number,
    figures: BatchFigures,
    label: string,
    format: KeyFormat,
  ): void {
    if (this.failure) return;
    this.enqueue({ kind, target, format, batchSize, figures, label, listed: false }, key, slot);
  }

  private enqueue(to: BufferSpec, key: string, slot: number): void {
    const { kind, target, format, batchSize, figures, label, listed } = to;
    const last = this.lastBuffer;
    let buffer: Batch | undefined;
    if (last && sameBuffer(last.spec, to)) buffer = last.buffer;
    else {
      // (Each call group fills batches of its own, as each call site in Aurora does, and its figures count them.)
      const bufferKey = `${kind}\u0000${target}\u0000${format}\u0000${batchSize}\u0000${label}\u0000${listed}\u0000${figures.id}`;
      buffer = this.buffers.get(bufferKey);
      if (!buffer) {
        buffer = { kind, target, format, keys: [], slots: [], figures, label, number: 0, bufferKey, listed, bytes: 0 };
        this.buffers.set(bufferKey, buffer);
      }
      this.lastBuffer = { buffer, spec: to };
    }
    if (kind === 'endpoint') {
      // A batch is one request: it ends before the row that would take it past SageMaker's payload limit (its
      // text as the key has it, JSON or CSV: CSV is no longer). (A longer row alone is not sent: see endpoint.)
      const bytes = Buffer.byteLength(key) + 1;
      if (buffer.keys.length > 0 && buffer.bytes + bytes > SAGEMAKER_PAYLOAD_LIMIT_BYTES) {
        this.close(buffer);
        this.enqueue(to, key, slot);
        return;
      }
      buffer.bytes += bytes;
    }
    buffer.keys.push(key);
    buffer.slots.push(slot);
    if (buffer.keys.length >= batchSize) this.close(buffer);
  }

  /** Sends a full batch; the next input of its group starts another. */
  private close(buffer: Batch): void {
    this.buffers.delete(buffer.bufferKey);
    if (this.lastBuffer?.buffer === buffer) this.lastBuffer = undefined;
    this.dispatch(buffer);
  }

  /**
   * Whether inputs for `target` can still be scored. Those of a NULL target
   * are not: their rows get no answer, and the per-row fallback raises the
   * error for the ones PostgreSQL calls for.
   */
  acceptsTarget(target: string | null): target is string {
    return !this.failure && target !== null;
  }

  /** A slot for an input its caller has found to be new (see addFeatureRows). */
  reserveSlot(): number {
    this.texts.push(undefined);
    this.reals.push(null);
    return this.texts.length - 1;
  }

  /**
   * Scores rows of model inputs held as numbers, distinct and with their slots
   * reserved by the caller: one batch, answered as the CSV text of those numbers
   * would be. Needs MlServices.invokeEndpointRows.
   */
  addFeatureRows(target: string, features: FeatureMatrix, slots: number[], figures: BatchFigures, label: string) {
    if (this.failure) return;
    this.dispatch({
      kind: 'endpoint',
      target,
      format: 'csv',
      keys: [],
      features,
      slots,
      figures,
      label,
      number: 0,
      bufferKey: '',
      listed: false,
      bytes: 0,
    });
  }

  /** Whether the slot `add` returned has its answer, or will have none (isDeclined). */
  isAnswered(slot: number): boolean {
    return this.texts[slot] !== undefined || this.declined.has(slot);
  }

  /** The service refused the slot's input (see INPUT_ERRORS): its rows get no stored answer. */
  isDeclined(slot: number): boolean {
    return this.declined.has(slot);
  }

  textOf(slot: number): string | null {
    return this.texts[slot] ?? null;
  }

  realOf(slot: number): number | null {
    return this.reals[slot];
  }

  private answer(kind: MlKind, target: string, format: KeyFormat, key: string, slot: number, result: CallResult) {
    this.texts[slot] = result.outText;
    this.reals[slot] = result.outReal;
    if (this.options.listCompleted !== false) this.completed.push({ kind, target, key, format, result });
  }

  /** The statement's inputs of one function and target told apart by their bytes (for addNew). */
  keyBytes(kind: MlKind, target: string, format: KeyFormat): DistinctKeyBytes {
    return this.keyTables.get(kind, target, format, () => new DistinctKeyBytes());
  }

  private seenSlots(kind: MlKind, target: string, format: KeyFormat): Map<string, number> {
    return this.seen.get(kind, target, format, () => new Map());
  }

  /** Sends the partial batches left once an argument query is exhausted. */
  flush(): void {
    for (const buffer of this.buffers.values()) if (buffer.keys.length) this.dispatch(buffer);
    this.buffers.clear();
    this.lastBuffer = undefined;
  }

  /** Results completed since the last call, the oldest `max` at most (for streaming them into COPY). */
  takeCompleted(max = Number.POSITIVE_INFINITY): Completed[] {
    return this.completed.splice(0, Math.min(max, this.completed.length));
  }

  /** Resolves when a batch completes (or at once if none is running). */
  nextCompletion(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  get hasCompleted(): boolean {
    return this.completed.length > 0;
  }

  get busy(): boolean {
    return this.inFlight > 0 || this.queueHead < this.queue.length;
  }

  /** Waits for every batch; rethrows the first failure. */
  async finish(): Promise<void> {
    this.flush();
    while (this.busy) await this.nextCompletion();
    if (this.failure) throw this.failure;
  }

  get error(): unknown {
    return this.failure;
  }

  /** Inputs answered so far. */
  get scoredInputs(): number {
    return this.scored;
  }

  /** The batch's failure, or why it was stopped (a cancel, statement_timeout). */
  get stopped(): unknown {
    return this.failure ?? (this.options.signal.aborted ? this.options.signal.reason : undefined);
  }

  private dispatch(batch: Batch): void {
    this.batchNumber += 1;
    batch.number = this.batchNumber;
    this.queue.push(batch);
    this.startQueued();
  }

  /** Starts queued batches while slots are free (a queue, not a promise per waiting batch: there may be 40,000). */
  private startQueued(): void {
    if (this.failure || this.options.signal.aborted) {
      // Nothing more will be called; dropping the queue also keeps a long queue from unwinding recursively.
      this.queue = [];
      this.queueHead = 0;
      return;
    }
    while (this.inFlight < this.options.concurrency && this.queueHead < this.queue.length) {
      const batch = this.queue[this.queueHead]!;
      this.queue[this.queueHead] = undefined;
      this.queueHead += 1;
      this.inFlight += 1;
      void this.run(batch);
    }
    if (this.queueHead > 4096 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
  }

  private async run(batch: Batch): Promise<void> {
    try {
      if (this.failure || this.options.signal.aborted) return;
      const started = performance.now();
      let results: CallResult[] = [];
      const targetKey = `${batch.kind}\u0000${batch.target}`;
      let refused = this.refusedTargets.has(targetKey);
      try {
        results = refused ? [] : await this.call(batch);
      } catch (error) {
        // An error about every input of the batch (its endpoint or language), or an answer not a line per row:
        // none gets an answer.
        const unbatchable = error instanceof UnbatchableAnswer;
        if (!(refusesInput(error) || unbatchable) || this.options.signal.aborted) throw error;
        // (Said once, by the first of the batches in flight to be refused; not for an unknown endpoint, nor a
        // language: every row's call fails alike, and says why.)
        const first = !this.refusedTargets.has(targetKey);
        this.refusedTargets.add(targetKey);
        refused = true;
        const { label, target } = batch;
        if (unbatchable && first) {
          this.options.onOneRowAtATime?.({
            label,
            target,
            message: error.message,
            hint: 'A batch-mode endpoint answers one output line per input row (text/csv). For one that does not, pass max_rows_per_batch 1: its rows are then sent one per request, several at once.',
          });
        } else if (
          first &&
          batch.kind === 'endpoint' &&
          batch.slots.length > 1 &&
          (error as SqlError).sqlstate !== SqlState.undefinedObject
        ) {
          this.options.onOneRowAtATime?.({
            label,
            target,
            message: `a batch of ${batch.slots.length} rows was refused (${(error as SqlError).message})`,
            hint: 'If the endpoint takes smaller requests, pass a smaller max_rows_per_batch.',
          });
        }
      }
      if (refused) results = batch.slots.map(() => DECLINED);
      // A statement that ended meanwhile (cancel, timeout, failure) takes no more answers or progress.
      if (this.options.signal.aborted) return;
      // (Refused inputs were not scored; their rows are the per-row fallback's.)
      const answered = results.reduce((n, r) => (r.declined ? n : n + 1), 0);
      if (answered > 0) batch.figures.record(answered, performance.now() - started);
      const { kind, target, format, keys, slots } = batch;
      for (let i = 0; i < slots.length; i++) {
        if (results[i].declined) this.declined.add(slots[i]);
        else if (batch.listed) this.answer(kind, target, format, keys[i], slots[i], results[i]);
        else {
          this.texts[slots[i]] = results[i].outText;
          this.reals[slots[i]] = results[i].outReal;
        }
      }
      this.scored += answered;
      this.options.onProgress?.(this.scored);
    } catch (error) {
      this.failure ??= this.describeFailure(batch, error);
    } finally {
      this.inFlight -= 1;
      this.startQueued();
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  private describeFailure(batch: Batch, error: unknown): unknown {
    if (this.options.signal.aborted) {
      const reason = this.options.signal.reason;
      return reason instanceof SqlError
        ? reason
        : new SqlError(SqlState.queryCanceled, 'canceling statement due to user request');
    }
    if (error instanceof SqlError && error.sqlstate !== SqlState.queryCanceled) {
      return new SqlError(
        error.sqlstate,
        `${batch.label}: ${error.message}`,
        [error.detail, `batch ${batch.number} of the statement (${batch.slots.length} rows) failed`]
          .filter(Boolean)
          .join('; '),
        error.hint,
      );
    }
    return error;
  }

  private call(batch: Batch): Promise<CallResult[]> {
    if (batch.features) return this.endpointRows(batch, batch.features);
    return batch.kind === 'sentiment' ? this.sentiment(batch) : this.endpoint(batch);
  }

  private async sentiment(batch: Batch): Promise<CallResult[]> {
    const chunks: string[][] = [];
    for (let i = 0; i < batch.keys.length; i += COMPREHEND_BATCH_LIMIT) {
      chunks.push(batch.keys.slice(i, i + COMPREHEND_BATCH_LIMIT));
    }
    const answers = await Promise.all(
      chunks.map((texts) =>
        this.withRetries(batch, () => this.options.services.detectSentiment(texts, batch.target, this.options.signal)),
      ),
    );
    return answers.flat().map((item: SentimentItem | SqlError) => {
      if (item instanceof SqlError) {
        if (refusesInput(item)) return DECLINED;
        throw item;
      }
      return { outText: item.sentiment, outReal: item.confidence };
    });
  }

  private async endpoint(batch: Batch): Promise<CallResult[]> {
    const all = batch.format === 'csv' ? batch.keys : await csvLines(batch.keys);
    // A single NULL model input is an empty line: alone, the per-row call sends an empty body, which the
    // endpoint refuses; a line over the request limit is refused too, and an input no line can hold (a
    // composite, a nested array) has none. Such inputs are not sent; their rows are left to the per-row
    // fallback, which raises the error where the call is made (PostgreSQL may never make it).
    let sent: number[] = [];
    const sizes = new Float64Array(all.length); // bytes of each line, with its newline
    for (let i = 0; i < all.length; i++) {
      const line = all[i];
      if (line === UNCONVERTIBLE) continue;
      sizes[i] = Buffer.byteLength(line) + 1;
      // (Nor a line of blanks: alone, the endpoint reads no row from it, and fails; among others, a row of
      // missing values.)
      if (line.trim() !== '' && sizes[i] <= SAGEMAKER_PAYLOAD_LIMIT_BYTES) sent.push(i);
    }
    // Rows with different numbers of values (arrays of different lengths) go in requests of their own: a
    // model refuses a request whose rows differ, though it takes each of them alone, as per row.
    const widths = sent.map((i) => csvFieldCount(all[i]));
    if (widths.some((w) => w !== widths[0])) {
      const order = sent.map((_, j) => j).sort((a, b) => widths[a] - widths[b] || a - b);
      sent = order.map((j) => sent[j]);
      widths.splice(0, widths.length, ...order.map((j) => widths[j]));
    }
    const lines = sent.length === all.length && sent.every((i, j) => i === j) ? all : sent.map((i) => all[i]);
    if (lines.length === 0) return all.map(() => DECLINED);
    const requests: { first: number; count: number }[] = [];
    const mostRows = this.tooLarge.rowsPerRequest(batch.target) ?? lines.length;
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < lines.length; i++) {
      const size = sizes[sent[i]];
      const full = bytes + size > SAGEMAKER_PAYLOAD_LIMIT_BYTES || i - start >= mostRows;
      if (i > start && (full || widths[i] !== widths[start])) {
        requests.push({ first: start, count: i - start });
        start = i;
        bytes = 0;
      }
      bytes += size;
    }
    requests.push({ first: start, count: lines.length - start });
    const send = async (first: number, count: number): Promise<CallResult[]> => {
      const body = `${lines.slice(first, first + count).join('\n')}\n`;
      const answer = await this.withRetries(batch, () =>
        this.options.services.invokeEndpoint(batch.target, body, this.options.signal),
      );
      return this.outputsOf(batch, answer, count);
    };
    const budget: IsolationBudget = { left: isolationRequests(lines.length), spent: 0, answered: false };
    const parts = await Promise.all(
      requests.map(({ first, count }) => this.isolating(first, count, send, budget, batch.target)),
    );
    const out = parts.flat();
    if (lines === all) return out;
    const results = all.map(() => DECLINED);
    sent.forEach((i, j) => {
      results[i] = out[j];
    });
    return results;
  }

  /**
   * Rows of numbers, in requests no larger than their CSV text could be
   * (CSV_FIELD_BYTES per value), so that they split where CSV bodies would.
   */
  private async endpointRows(batch: Batch, features: FeatureMatrix): Promise<CallResult[]> {
    const invoke = this.options.services.invokeEndpointRows;
    if (!invoke) throw new Error('invokeEndpointRows is not available for these services');
    const { rows, cols, data } = features;
    const perRequest = Math.min(rowsPerEndpointRequest(cols), this.tooLarge.rowsPerRequest(batch.target) ?? rows);
    const send = async (first: number, count: number): Promise<CallResult[]> => {
      const part: FeatureMatrix = { data: data.subarray(first * cols, (first + count) * cols), rows: count, cols };
      const answer = await this.withRetries(batch, () => invoke(batch.target, part, this.options.signal));
      return this.outputsOf(batch, answer, count);
    };
    const budget: IsolationBudget = { left: isolationRequests(rows), spent: 0, answered: false };
    const requests: Promise<CallResult[]>[] = [];
    for (let first = 0; first < rows; first += perRequest) {
      requests.push(this.isolating(first, Math.min(perRequest, rows - first), send, budget, batch.target));
    }
    return (await Promise.all(requests)).flat();
  }

  /**
   * Sends rows [first, first + count) with `send`. A model error about one
   * row fails its whole request, and the row may be one PostgreSQL never
   * calls for (batch mode scores every row a statement might need): the
   * request is halved until the rows the model refuses are found. They get
   * no answer, so the per-row fallback raises the model's error only where
   * the call is really made. Once `budget` extra requests are spent, the rows
   * still undecided get no answer either.
   */
  private async isolating(
    first: number,
    count: number,
    send: (first: number, count: number) => Promise<CallResult[]>,
    budget: IsolationBudget,
    target: string,
  ): Promise<CallResult[]> {
    try {
      const results = await send(first, count);
      budget.answered = true;
      return results;
    } catch (error) {
      // A model error about one row, or answers too large for one request (many values a row): the rows are sent
      // again in halves. (A row whose answer alone is too large, or a model error, is left to the per-row
      // fallback, which fails the statement if PostgreSQL calls for that row.)
      const oversize = error instanceof OversizeAnswerError;
      const modelError = error instanceof SqlError && error.sqlstate === SqlState.externalRoutineException;
      if (!(oversize || modelError) || this.options.signal.aborted) throw error;
      if (count === 1) return [DECLINED];
      // The rows still undecided are left to the per-row fallback, which raises the model's error where
      // such an input is really called for: when the budget is spent, or when nothing the search sent
      // was answered (a model that refuses everything: the first such call fails the statement at once).
      const hopeless = !budget.answered && budget.spent >= ISOLATION_PROBES;
      if (budget.left < 2 || hopeless) return new Array<CallResult>(count).fill(DECLINED);
      budget.left -= 2;
      budget.spent += 2;
      if (oversize) this.tooLarge.note(target, count);
      // One half after the other: a batch never has more than one such request at the endpoint.
      const half = Math.ceil(count / 2);
      const left = await this.isolating(first, half, send, budget, target);
      const right = await this.isolating(first + half, count - half, send, budget, target);
      return [...left, ...right];
    }
  }

  /** An endpoint's answer to `expected` rows, one output line each. */
  private outputsOf(batch: Batch, answer: string, expected: number): CallResult[] {
    this.tooLarge.answered(batch.target, answer.length, expected);
    const outputs = splitOutputLines(answer, expected === 1);
    if (outputs.length !== expected) {
      // The endpoint does not answer a line per row (a blank line after its answers, one answer for the request):
      // which line is whose cannot be told, and the per-row path takes its answers as they come. Not a model
      // error about one row (see isolating), which would send every row alone.
      throw new UnbatchableAnswer(
        `endpoint ${batch.target} answered ${outputs.length} ${outputs.length === 1 ? 'line' : 'lines'} for ${expected} input rows`,
      );
    }
    // PostgreSQL's text cannot hold a NUL: such an answer is left to the per-row call, which fails on it
    // as PostgreSQL does (where the call is really made), instead of failing the load of the answers.
    return outputs.map((outText) => (outText.includes('\u0000') ? DECLINED : { outText, outReal: null }));
  }

  /**
   * Makes one request to the service once fewer than K are in flight: a batch larger than one request (more than
   * 25 documents, or over SageMaker's payload limit) sends several, and they count against K too.
   */
  private async oneRequest<T>(attempt: () => Promise<T>): Promise<T> {
    while (this.requestsInFlight >= this.options.concurrency) {
      await new Promise<void>((resolve) => this.requestWaiters.push(resolve));
    }
    this.requestsInFlight += 1;
    try {
      return await attempt();
    } finally {
      this.requestsInFlight -= 1;
      this.requestWaiters.shift()?.();
    }
  }

  private withRetries<T>(batch: Batch, attempt: () => Promise<T>): Promise<T> {
    const { signal, deadline } = this.options;
    // (The permit is held through the backoff of a throttled request: the service asked for fewer requests. And
    // the time a try takes, which decides whether another fits the deadline, is the request's, not the wait's.)
    return this.oneRequest(() =>
      retryingThrottled(attempt, {
        signal,
        deadline,
        onRetry: () => batch.figures.retried(),
      }),
    );
  }
}

/**
 * The answers of endpoints that answered a request with more than SageMaker's 6 MB: their later requests in the
 * statement take as many rows as fit in three quarters of it at the size their answers have had per row (one row
 * answering megabytes, whose request is halved down to it, does not make the others go one by one), or, before any
 * was answered, half the rows of the first request too large.
 */
class AnswerSizes {
  private readonly sizes = new Map<string, { chars: number; rows: number; firstHalf: number }>();

  note(target: string, rows: number): void {
    if (!this.sizes.has(target)) this.sizes.set(target, { chars: 0, rows: 0, firstHalf: Math.ceil(rows / 2) });
  }

  answered(target: string, chars: number, rows: number): void {
    const size = this.sizes.get(target);
    if (!size) return;
    size.chars += chars;
    size.rows += rows;
  }

  rowsPerRequest(target: string): number | undefined {
    const size = this.sizes.get(target);
    if (!size) return undefined;
    if (size.rows === 0) return size.firstHalf;
    return Math.max(1, Math.floor((SAGEMAKER_PAYLOAD_LIMIT_BYTES * 0.75) / (size.chars / size.rows)));
  }
}

/** How long model inputs are converted to CSV without a break (see csvLines). */
const CONVERT_SLICE_MS = 4;

/** csvLines' line for an input that cannot be sent to a model (see modelInputToCsv's errors). */
const UNCONVERTIBLE = '\u0000unconvertible';

/**
 * The CSV lines of JSON model inputs, converted in slices: a batch of 10,000
 * rows takes tens of milliseconds (mostly allocating strings, which a faster
 * scan would not spare), which the gateway's other sessions would wait.
 */
async function csvLines(keys: string[]): Promise<string[]> {
  const lines: string[] = [];
  let sliceStart = performance.now();
  for (const key of keys) {
    lines.push(csvLineOrUnconvertible(key));
    if (performance.now() - sliceStart < CONVERT_SLICE_MS) continue;
    await new Promise(setImmediate);
    sliceStart = performance.now();
  }
  return lines;
}

function csvLineOrUnconvertible(key: string): string {
  try {
    return modelInputToCsv(key);
  } catch (error) {
    if (error instanceof SqlError) return UNCONVERTIBLE;
    throw error;
  }
}

/** The number of values on a CSV line (commas outside double quotes, plus one). */
function csvFieldCount(line: string): number {
  let count = 1;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 34 /* " */) quoted = !quoted;
    else if (c === 44 /* , */ && !quoted) count += 1;
  }
  return count;
}

/**
 * One output line per row; a single-row answer may hold several values on its
 * line, and a quoted value line breaks (CSV's records, as per row returns each).
 */
function splitOutputLines(body: string, singleRow: boolean): string[] {
  if (singleRow) return [singleRowOutput(body)];
  const trimmed = body.endsWith('\n') ? body.slice(0, body.endsWith('\r\n') ? -2 : -1) : body;
  if (trimmed === '') return [];
  if (!trimmed.includes('"')) return trimmed.split(/\r?\n/);
  const lines: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < trimmed.length; i++) {
    const c = trimmed.charCodeAt(i);
    if (c === 34 /* " */) quoted = !quoted;
    else if (c === 10 /* \n */ && !quoted) {
      lines.push(trimmed.slice(start, i > start && trimmed.charCodeAt(i - 1) === 13 /* \r */ ? i - 1 : i));
      start = i + 1;
    }
  }
  lines.push(trimmed.slice(start));
  return lines;
}
