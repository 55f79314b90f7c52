/**
 * SageMaker on the edge: the control plane (JSON 1.1, `SageMaker.*`) and the
 * runtime (`POST /endpoints/{name}/invocations`), sharing one hosting state.
 *
 * More control-plane operations (training jobs) register under the same prefix
 * with their own map: `edge.jsonService(SAGEMAKER_TARGET_PREFIX, trainingOperations(…))`
 * adds to, and does not replace, the operations registered here.
 */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import type { ObjectStore } from '../../storage/object-store.js';
import type { Logger } from '../../util/log.js';
import type { ServiceEdge } from '../edge.js';
import { SageMakerHosting } from './hosting.js';
import { hostingOperations, SAGEMAKER_TARGET_PREFIX } from './hosting-operations.js';
import { ModelDataResolver } from './model-data.js';
import type { ArnScope } from './names.js';
import { invocationHandler } from './runtime/invocations.js';
import { ScoringPool } from './runtime/worker-pool.js';
import { JsonStateStore } from './state-store.js';

export type { SageMakerHosting } from './hosting.js';
export { SAGEMAKER_TARGET_PREFIX } from './hosting-operations.js';

/** Above this many rows a request is scored in a worker thread (a 2,000-row XGBoost batch takes ~1-2 ms inline). */
export const DEFAULT_WORKER_THRESHOLD_ROWS = 2000;

export interface SageMakerOptions {
  scope: ArnScope;
  /** `<dataDir>/sagemaker`: where the control-plane state is kept. */
  stateDir: string;
  /** Resolves s3:// ModelDataUrls. */
  objects: ObjectStore;
  logger: Logger;
  /** Shown in ModelError messages as the place to look. */
  logFile: string;
  workerThresholdRows?: number;
  workerThreads?: number;
}

export interface RunningSageMaker {
  hosting: SageMakerHosting;
  close(): Promise<void>;
}

export async function registerSageMaker(edge: ServiceEdge, options: SageMakerOptions): Promise<RunningSageMaker> {
  const pool = new ScoringPool(options.workerThreads ?? availableParallelism());
  const hosting = new SageMakerHosting({
    scope: options.scope,
    store: new JsonStateStore(options.stateDir, (file, error) =>
      options.logger.error({ file, err: error }, 'skipping an unreadable SageMaker state file'),
    ),
    modelData: new ModelDataResolver(options.objects),
    logger: options.logger,
    onModelsRetired: (ids) => {
      for (const id of ids) pool.release(id);
    },
  });
  await hosting.start();

  edge.jsonService(SAGEMAKER_TARGET_PREFIX, hostingOperations(hosting));
  edge.route(
    'POST',
    '/endpoints/:name/invocations',
    invocationHandler({
      hosting,
      pool,
      workerThresholdRows: options.workerThresholdRows ?? DEFAULT_WORKER_THRESHOLD_ROWS,
      logFile: options.logFile,
      logger: options.logger,
    }),
  );

  return {
    hosting,
    close: async () => {
      await hosting.close();
      await pool.close();
    },
  };
}

export function sagemakerStateDir(dataDir: string): string {
  return path.join(dataDir, 'sagemaker');
}
