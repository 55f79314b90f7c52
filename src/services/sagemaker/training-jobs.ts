/**
 * SageMaker training jobs on pgsage:
 *
 *   CreateTrainingJob → InProgress: Starting → Downloading → Training → Uploading → Completed
 *                                    any step fails  → Failed (FailureReason "ClientError: …" or "AlgorithmError: …")
 *   StopTrainingJob   → Stopping → Stopped (the trainer stops after its current round)
 *   MaxRuntimeInSeconds exceeded → Stopped, SecondaryStatus MaxRuntimeExceeded
 *   restart           → a job that was running is Failed (it cannot be resumed)
 *
 * Each job trains in its own worker thread (training-worker.ts) and writes its
 * log to `<dataDir>/logs/training/<job>.log`; the model goes to
 * `<S3OutputPath>/<job>/output/model.tar.gz`. Job records persist under
 * `<dataDir>/sagemaker/training-jobs/`.
 */
import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';
import { ObjectNotFoundError, type ObjectStore, parseS3Url } from '../../storage/object-store.js';
import type { Logger } from '../../util/log.js';
import { startWorkerThread } from '../../util/worker-thread.js';
import { AwsError } from '../errors.js';
import { constraintViolation, validationException } from './errors.js';
import { listPage } from './list-query.js';
import { type ArnScope, arnOf, nameKey } from './names.js';
import { nowSeconds } from './resources.js';
import type { JsonStateStore } from './state-store.js';
import type { TrainingProgress } from './training-algorithms.js';
import { modelTarGz } from './training-artifact.js';
import type { TrainingMessage, TrainingTask } from './training-protocol.js';
import { type CheckedTrainingRequest, checkTrainingRequest } from './training-request.js';

const JOBS = 'training-jobs';

export type TrainingJobStatus = 'InProgress' | 'Completed' | 'Failed' | 'Stopping' | 'Stopped';

export interface StatusTransition {
  Status: string;
  StartTime: number;
  EndTime?: number;
  StatusMessage?: string;
}

export interface TrainingJobRecord {
  TrainingJobName: string;
  TrainingJobArn: string;
  TrainingJobStatus: TrainingJobStatus;
  SecondaryStatus: string;
  FailureReason?: string;
  ModelArtifacts?: { S3ModelArtifacts: string };
  HyperParameters: Record<string, string>;
  CreationTime: number;
  TrainingStartTime?: number;
  TrainingEndTime?: number;
  LastModifiedTime: number;
  SecondaryStatusTransitions: StatusTransition[];
  FinalMetricDataList?: { MetricName: string; Value: number; Timestamp: number }[];
  TrainingTimeInSeconds?: number;
  BillableTimeInSeconds?: number;
  [member: string]: unknown;
}

interface RunningJob {
  stop: Int32Array;
  /** Why the trainer is being stopped: a StopTrainingJob call or the runtime limit. */
  stopReason: 'Stopped' | 'MaxRuntimeExceeded' | undefined;
  done: Promise<void>;
}

export interface TrainingJobsOptions {
  scope: ArnScope;
  store: JsonStateStore;
  objects: ObjectStore;
  logger: Logger;
  /** `<dataDir>/logs/training`. */
  logDir: string;
}

const MESSAGES: Record<string, string> = {
  Starting: 'Preparing the instances for training',
  Downloading: 'Downloading input data',
  Training: 'Training image download completed. Training in progress.',
  Uploading: 'Uploading generated training model',
  Completed: 'Training job completed',
  Stopping: 'Stopping the training job',
  Stopped: 'Training job stopped',
  MaxRuntimeExceeded: 'Training job stopped: it exceeded MaxRuntimeInSeconds',
  Failed: 'Training job failed',
};

export class TrainingJobs {
  private readonly jobs = new Map<string, TrainingJobRecord>();
  private readonly running = new Map<string, RunningJob>();
  private closed = false;

  constructor(private readonly options: TrainingJobsOptions) {}

  /** Loads persisted jobs; one that was running when pgsage stopped cannot be resumed and is marked so. */
  async start(): Promise<void> {
    for (const record of await this.options.store.list<TrainingJobRecord>(JOBS)) {
      this.jobs.set(nameKey(record.TrainingJobName), record);
      if (record.TrainingJobStatus === 'InProgress' || record.TrainingJobStatus === 'Stopping') {
        if (record.TrainingJobStatus === 'Stopping') this.finish(record, 'Stopped', 'Stopped');
        else {
          record.FailureReason =
            'InternalServerError: pgsage was restarted while the job was running; create the job again.';
          this.finish(record, 'Failed', 'Failed');
        }
        await this.persist(record);
      }
    }
  }

  /** Stops running trainers (their jobs are marked on the next start) and finishes pending writes. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.running.values()) Atomics.store(job.stop, 0, 1);
    await Promise.allSettled([...this.running.values()].map((job) => job.done));
    await this.options.store.flush();
  }

  async create(input: Record<string, unknown>): Promise<TrainingJobRecord> {
    const request = checkTrainingRequest(input);
    const key = nameKey(request.name);
    const arn = arnOf(this.options.scope, 'training-job', request.name);
    if (this.jobs.has(key)) {
      throw new AwsError(
        'ResourceInUse',
        `Training job names must be unique within an AWS account and region, and a training job with this name already exists (${arn})`,
        400,
      );
    }
    const { TrainingJobName: _name, HyperParameters: _hp, ...rest } = input;
    const now = nowSeconds();
    const record: TrainingJobRecord = {
      ...rest,
      TrainingJobName: request.name,
      TrainingJobArn: arn,
      TrainingJobStatus: 'InProgress',
      SecondaryStatus: 'Starting',
      HyperParameters: request.hyperparameters,
      CreationTime: now,
      LastModifiedTime: now,
      SecondaryStatusTransitions: [{ Status: 'Starting', StartTime: now, StatusMessage: MESSAGES.Starting }],
    };
    this.jobs.set(key, record);
    await this.persist(record);
    const job: RunningJob = {
      stop: new Int32Array(new SharedArrayBuffer(4)),
      stopReason: undefined,
      done: Promise.resolve(),
    };
    this.running.set(key, job);
    job.done = this.run(record, request, job)
      .catch((error) =>
        this.options.logger.error({ err: error, job: request.name }, 'training job failed unexpectedly'),
      )
      .finally(() => this.running.delete(key));
    return record;
  }

  describe(name: string): TrainingJobRecord {
    const record = this.jobs.get(nameKey(name));
    if (!record) throw validationException('Requested resource not found.');
    return record;
  }

  async stop(name: string): Promise<void> {
    const record = this.describe(name);
    if (record.TrainingJobStatus === 'Stopping') return;
    const job = this.running.get(nameKey(name));
    if (record.TrainingJobStatus !== 'InProgress' || !job) {
      throw validationException(
        `The request was rejected because the training job is in status ${record.TrainingJobStatus}.`,
      );
    }
    job.stopReason = 'Stopped';
    Atomics.store(job.stop, 0, 1);
    record.TrainingJobStatus = 'Stopping';
    this.transition(record, 'Stopping');
    await this.persist(record);
  }

  list(input: Record<string, unknown>) {
    const status = input.StatusEquals;
    if (
      status !== undefined &&
      !['InProgress', 'Completed', 'Failed', 'Stopping', 'Stopped'].includes(String(status))
    ) {
      throw constraintViolation(
        status,
        'statusEquals',
        'Member must satisfy enum value set: [InProgress, Completed, Failed, Stopping, Stopped]',
      );
    }
    const items = [...this.jobs.values()].map((record) => ({
      name: record.TrainingJobName,
      creationTime: record.CreationTime,
      lastModifiedTime: record.LastModifiedTime,
      status: record.TrainingJobStatus,
      record,
    }));
    const { page, nextToken } = listPage(items, input, ['Name', 'CreationTime', 'Status']);
    return {
      TrainingJobSummaries: page.map(({ record }) => ({
        TrainingJobName: record.TrainingJobName,
        TrainingJobArn: record.TrainingJobArn,
        CreationTime: record.CreationTime,
        ...(record.TrainingEndTime === undefined ? {} : { TrainingEndTime: record.TrainingEndTime }),
        LastModifiedTime: record.LastModifiedTime,
        TrainingJobStatus: record.TrainingJobStatus,
        SecondaryStatus: record.SecondaryStatus,
      })),
      NextToken: nextToken,
    };
  }

  // ── running a job ─────────────────────────────────────────────────────────

  private async run(record: TrainingJobRecord, request: CheckedTrainingRequest, job: RunningJob): Promise<void> {
    // Let CreateTrainingJob answer first, as SageMaker does.
    await new Promise<void>((resolve) => setImmediate(resolve));
    mkdirSync(this.options.logDir, { recursive: true });
    const log = createWriteStream(path.join(this.options.logDir, `${request.name}.log`), { flags: 'a' });
    const write = (line: string) => log.write(`${new Date().toISOString()} ${line}\n`);
    const runtimeLimit = setTimeout(() => {
      job.stopReason ??= 'MaxRuntimeExceeded';
      Atomics.store(job.stop, 0, 1);
    }, request.maxRuntimeSeconds * 1000);
    runtimeLimit.unref();
    try {
      write(
        `training job ${request.name}: algorithm ${request.algorithm}, hyperparameters ${JSON.stringify(request.hyperparameters)}`,
      );
      this.transition(record, 'Downloading');
      record.TrainingStartTime = nowSeconds();
      await this.persist(record);
      const channels = await this.download(request, write);
      if (this.stopRequested(job)) return await this.stopped(record, job, write);

      this.transition(record, 'Training');
      await this.persist(record);
      const outcome = await this.train(request, channels, job, write, (progress) => this.progress(record, progress));
      if (outcome.type === 'failed') {
        record.FailureReason = `${outcome.kind}: ${outcome.message}`;
        write(`failed: ${record.FailureReason}`);
        this.finish(record, 'Failed', 'Failed');
        return;
      }
      if (outcome.type !== 'done') throw new Error('the training thread ended without a result');
      if (outcome.stopped || this.stopRequested(job)) return await this.stopped(record, job, write);

      this.transition(record, 'Uploading');
      await this.persist(record);
      const { bucket, key } = outputLocation(request.outputPath, request.name);
      await this.options.objects.put(bucket, key, modelTarGz(outcome.files));
      const now = nowSeconds();
      record.ModelArtifacts = { S3ModelArtifacts: `s3://${bucket}/${key}` };
      record.FinalMetricDataList = outcome.finalMetrics
        .filter((m) => Number.isFinite(m.value))
        .map((m) => ({ MetricName: m.name, Value: m.value, Timestamp: now }));
      write(`model written to s3://${bucket}/${key}`);
      this.finish(record, 'Completed', 'Completed');
    } catch (error) {
      const message = (error as Error).message;
      record.FailureReason =
        error instanceof InputError ? `ClientError: ${message}` : `InternalServerError: ${message}`;
      write(`failed: ${record.FailureReason}`);
      this.finish(record, 'Failed', 'Failed');
    } finally {
      clearTimeout(runtimeLimit);
      await this.persist(record).catch((error) =>
        this.options.logger.error({ err: error, job: request.name }, 'cannot save training job state'),
      );
      await new Promise<void>((resolve) => log.end(resolve));
      this.options.logger.info({ job: request.name, status: record.TrainingJobStatus }, 'training job finished');
    }
  }

  /** Every object under each channel's S3 prefix, in key order, concatenated. */
  private async download(
    request: CheckedTrainingRequest,
    write: (line: string) => void,
  ): Promise<Record<string, Uint8Array>> {
    const channels: Record<string, Uint8Array> = {};
    for (const channel of request.channels) {
      const { bucket, prefix } = s3Prefix(channel.s3Uri);
      let objects: { key: string; size: number }[];
      try {
        objects = (await this.options.objects.list(bucket, prefix)).filter((o) => !o.key.endsWith('/') && o.size > 0);
      } catch (error) {
        if (error instanceof ObjectNotFoundError)
          throw new InputError(
            `Could not access the ${channel.name} channel at ${channel.s3Uri}: the bucket does not exist.`,
          );
        throw error;
      }
      if (objects.length === 0) {
        throw new InputError(`No objects found under the ${channel.name} channel's S3 URI ${channel.s3Uri}.`);
      }
      const parts: Buffer[] = [];
      for (const object of objects) {
        const bytes = await this.options.objects.get(bucket, object.key);
        parts.push(bytes);
        // Files are joined as lines: one without a final newline must not merge with the next one's first row.
        if (bytes.length && bytes[bytes.length - 1] !== 0x0a) parts.push(Buffer.from('\n'));
      }
      // Joined into a buffer of its own (never Node's shared Buffer pool): it is transferred to the training thread.
      const joined = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
      let offset = 0;
      for (const part of parts) {
        joined.set(part, offset);
        offset += part.length;
      }
      channels[channel.name] = joined;
      write(`channel ${channel.name}: ${objects.length} object(s), ${joined.length} bytes from ${channel.s3Uri}`);
    }
    return channels;
  }

  private train(
    request: CheckedTrainingRequest,
    channels: Record<string, Uint8Array>,
    job: RunningJob,
    write: (line: string) => void,
    onProgress: (progress: TrainingProgress) => void,
  ): Promise<TrainingMessage | { type: 'crashed' }> {
    const task: TrainingTask = {
      algorithm: request.algorithm,
      hyperparameters: request.hyperparameters,
      channels,
      stop: job.stop.buffer as SharedArrayBuffer,
    };
    const transfer = Object.values(channels).map((bytes) => bytes.buffer as ArrayBuffer);
    const worker = startWorkerThread(import.meta.url, 'training-worker', { workerData: task, transferList: transfer });
    return new Promise((resolve) => {
      let result: TrainingMessage | undefined;
      worker.on('message', (message: TrainingMessage) => {
        if (message.type === 'log') write(message.line);
        else if (message.type === 'progress') onProgress(message.progress);
        else result = message;
      });
      worker.on('error', (error) => {
        result ??= { type: 'failed', kind: 'AlgorithmError', message: error.message };
      });
      worker.on('exit', (code) => {
        resolve(
          result ?? { type: 'failed', kind: 'AlgorithmError', message: `the training thread exited with code ${code}` },
        );
      });
    });
  }

  private stopRequested(job: RunningJob): boolean {
    return Atomics.load(job.stop, 0) === 1;
  }

  private async stopped(record: TrainingJobRecord, job: RunningJob, write: (line: string) => void): Promise<void> {
    const reason = job.stopReason ?? 'Stopped';
    if (this.closed && job.stopReason === undefined) {
      record.FailureReason =
        'InternalServerError: pgsage was shut down while the job was running; create the job again.';
      write(`failed: ${record.FailureReason}`);
      this.finish(record, 'Failed', 'Failed');
      return;
    }
    write(reason === 'MaxRuntimeExceeded' ? 'stopped: MaxRuntimeInSeconds exceeded' : 'stopped on request');
    this.finish(record, 'Stopped', reason);
  }

  /** Progress goes where SageMaker tools look: the Training transition's StatusMessage. */
  private progress(record: TrainingJobRecord, progress: TrainingProgress): void {
    const current = record.SecondaryStatusTransitions[record.SecondaryStatusTransitions.length - 1];
    if (current?.Status !== 'Training') return;
    const metrics = progress.metrics.map((m) => `${m.name}=${formatMetric(m.value)}`).join(', ');
    current.StatusMessage = `Training in progress: ${progress.unit} ${progress.current} of ${progress.total}${metrics ? `; ${metrics}` : ''}`;
  }

  private transition(record: TrainingJobRecord, status: string): void {
    const now = nowSeconds();
    const transitions = record.SecondaryStatusTransitions;
    const last = transitions[transitions.length - 1];
    if (last && last.EndTime === undefined) last.EndTime = now;
    transitions.push({ Status: status, StartTime: now, StatusMessage: MESSAGES[status] ?? status });
    record.SecondaryStatus = status;
    record.LastModifiedTime = now;
  }

  private finish(record: TrainingJobRecord, status: TrainingJobStatus, secondary: string): void {
    this.transition(record, secondary);
    const now = nowSeconds();
    const transitions = record.SecondaryStatusTransitions;
    transitions[transitions.length - 1].EndTime = now;
    record.TrainingJobStatus = status;
    record.TrainingEndTime = now;
    const started = record.TrainingStartTime ?? record.CreationTime;
    record.TrainingTimeInSeconds = Math.max(0, Math.round(now - started));
    record.BillableTimeInSeconds = record.TrainingTimeInSeconds;
  }

  private persist(record: TrainingJobRecord): Promise<void> {
    return this.options.store.put(JOBS, nameKey(record.TrainingJobName), record);
  }
}

/** A problem with the job's input data: reported as ClientError. */
class InputError extends Error {}

function s3Prefix(uri: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!match) throw new InputError(`${uri} is not an s3:// URI`);
  return { bucket: match[1], prefix: match[2] };
}

/** `<S3OutputPath>/<job>/output/model.tar.gz`, as SageMaker lays it out. */
export function outputLocation(outputPath: string, jobName: string): { bucket: string; key: string } {
  const { bucket, prefix } = s3Prefix(outputPath);
  const base = prefix.replace(/\/+$/, '');
  const key = `${base ? `${base}/` : ''}${jobName}/output/model.tar.gz`;
  parseS3Url(`s3://${bucket}/${key}`);
  return { bucket, key };
}

function formatMetric(value: number): string {
  return Number.isFinite(value) ? String(Math.round(value * 1e6) / 1e6) : String(value);
}
