import path from 'node:path';
import type { Config } from '../config/index.js';
import { createObjectStore } from '../storage/index.js';
import type { Logger } from '../util/log.js';
import { COMPREHEND_TARGET_PREFIX, comprehendOperations, warmComprehendModels } from './comprehend/operations.js';
import type { ServiceEdge } from './edge.js';
import { registerSageMaker, type SageMakerHosting, sagemakerStateDir } from './sagemaker/index.js';
import { registerTrainingJobs } from './sagemaker/training-operations.js';

export interface ServiceContext {
  config: Config;
  logger: Logger;
  /** Tuning the benchmarks and tests use; the defaults suit a server. */
  sagemaker?: { workerThresholdRows?: number; workerThreads?: number };
}

/** Handles to the services registered on the edge, for shutdown. */
export interface RunningServices {
  sagemaker: SageMakerHosting;
  close(): Promise<void>;
}

/** Registers every AWS-compatible service pgsage hosts on the edge. */
export async function registerServices(edge: ServiceEdge, context: ServiceContext): Promise<RunningServices> {
  const { config, logger } = context;

  edge.jsonService(COMPREHEND_TARGET_PREFIX, comprehendOperations());
  // Load the bundled models once the edge is up rather than during the first request.
  setImmediate(() => {
    const failure = warmComprehendModels();
    if (failure) logger.warn({ err: failure }, 'Comprehend models unavailable; Comprehend calls will fail');
  });

  // s3:// ModelDataUrls resolve in the configured object store (local directory or S3-compatible).
  const objects = createObjectStore(config);
  const sagemaker = await registerSageMaker(edge, {
    scope: { region: config.region, accountId: config.accountId },
    stateDir: sagemakerStateDir(config.dataDir),
    objects,
    logger: logger.child({ component: 'sagemaker' }),
    logFile: path.join(config.dataDir, 'logs', 'pgsage.log'),
    ...context.sagemaker,
  });
  const training = await registerTrainingJobs(edge, {
    scope: { region: config.region, accountId: config.accountId },
    dataDir: config.dataDir,
    objects,
    logger: logger.child({ component: 'sagemaker-training' }),
  });

  return {
    sagemaker: sagemaker.hosting,
    close: async () => {
      await training.close();
      await sagemaker.close();
      objects.close?.();
    },
  };
}
