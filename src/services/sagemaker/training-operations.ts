/**
 * Training jobs as JSON 1.1 operations under the `SageMaker` prefix, next to
 * the hosting operations (the edge merges operation maps of one prefix).
 */
import path from 'node:path';
import type { ObjectStore } from '../../storage/object-store.js';
import type { Logger } from '../../util/log.js';
import type { JsonOperation, ServiceEdge } from '../edge.js';
import { SAGEMAKER_TARGET_PREFIX } from './hosting-operations.js';
import type { ArnScope } from './names.js';
import { requireName } from './names.js';
import { JsonStateStore } from './state-store.js';
import { type TrainingJobRecord, TrainingJobs } from './training-jobs.js';

export function trainingOperations(jobs: TrainingJobs): Record<string, JsonOperation> {
  return {
    CreateTrainingJob: async (input) => ({ TrainingJobArn: (await jobs.create(input)).TrainingJobArn }),
    DescribeTrainingJob: (input) => describe(jobs.describe(requireName(input, 'TrainingJobName'))),
    ListTrainingJobs: (input) => jobs.list(input),
    StopTrainingJob: async (input) => {
      await jobs.stop(requireName(input, 'TrainingJobName'));
      return {};
    },
  };
}

/** DescribeTrainingJob's output: the record without what ListTags would return. */
function describe(record: TrainingJobRecord): Record<string, unknown> {
  const { Tags: _tags, ...output } = record;
  return output;
}

export interface TrainingOptions {
  scope: ArnScope;
  dataDir: string;
  objects: ObjectStore;
  logger: Logger;
}

/** Registers CreateTrainingJob, DescribeTrainingJob, ListTrainingJobs and StopTrainingJob on the edge. */
export async function registerTrainingJobs(edge: ServiceEdge, options: TrainingOptions): Promise<TrainingJobs> {
  const jobs = new TrainingJobs({
    scope: options.scope,
    store: new JsonStateStore(path.join(options.dataDir, 'sagemaker'), (file, error) =>
      options.logger.error({ file, err: error }, 'skipping an unreadable training job file'),
    ),
    objects: options.objects,
    logger: options.logger,
    logDir: path.join(options.dataDir, 'logs', 'training'),
  });
  await jobs.start();
  edge.jsonService(SAGEMAKER_TARGET_PREFIX, trainingOperations(jobs));
  return jobs;
}
