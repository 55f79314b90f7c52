/**
 * The built-in algorithms a training job can run, chosen from its
 * AlgorithmSpecification.TrainingImage (…/sagemaker-xgboost:1.7-1,
 * …/linear-learner:1, …/randomcutforest:1), each reading its channels the way
 * SageMaker's container does (text/csv, no header; label first except for RCF)
 * and producing the files of /opt/ml/model. Runs inside the training worker.
 */

import { parseLinearLearnerParams } from '../../models/linear-learner/train/params.js';
import { trainLinearLearner } from '../../models/linear-learner/train/trainer.js';
import { parseRandomCutForestParams, trainRandomCutForest } from '../../models/random-cut-forest/train.js';
import { algorithmFromImage } from '../../models/registry.js';
import { type MetricValue, parseLabeledCsv, parseUnlabeledCsv } from '../../models/training-data.js';
import { ModelInputError } from '../../models/types.js';
import { parseXGBoostParams } from '../../models/xgboost/train/params.js';
import { trainXGBoost } from '../../models/xgboost/train/trainer.js';
import type { ArchiveFile } from './training-artifact.js';

export type TrainingAlgorithm = 'xgboost' | 'linear-learner' | 'randomcutforest';

export function trainingAlgorithmFromImage(image: string): TrainingAlgorithm | undefined {
  const algorithm = algorithmFromImage(image);
  return algorithm === 'onnx' ? undefined : algorithm;
}

/** Channels each algorithm reads (the first is required). */
export const CHANNELS: Record<TrainingAlgorithm, readonly string[]> = {
  xgboost: ['train', 'validation'],
  'linear-learner': ['train', 'validation', 'test'],
  randomcutforest: ['train', 'test'],
};

export interface TrainingProgress {
  readonly current: number;
  readonly total: number;
  /** round (XGBoost), epoch (Linear Learner) or trees (RCF). */
  readonly unit: string;
  readonly metrics: readonly MetricValue[];
}

export interface TrainingHooks {
  onProgress(progress: TrainingProgress): void;
  shouldStop(): boolean;
  log(line: string): void;
}

export interface TrainedModel {
  readonly files: ArchiveFile[];
  readonly finalMetrics: readonly MetricValue[];
  readonly stopped: boolean;
}

/**
 * A problem with the job's own input (hyperparameters, data): SageMaker reports
 * these as `ClientError: …` rather than `AlgorithmError: …`.
 */
export class ClientError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClientError';
  }
}

/** Trainers throw RangeError when the data does not fit the settings (e.g. a label outside the objective's range): the job's own input. */
function invalidSettingAsClientError(error: unknown): never {
  throw error instanceof RangeError ? new ClientError(error.message) : error;
}

export async function runAlgorithm(
  algorithm: TrainingAlgorithm,
  hyperparameters: Readonly<Record<string, string>>,
  channels: Readonly<Record<string, Buffer>>,
  hooks: TrainingHooks,
): Promise<TrainedModel> {
  const input = <T>(work: () => T): T => {
    try {
      return work();
    } catch (error) {
      if (error instanceof RangeError || error instanceof ModelInputError) throw new ClientError(error.message);
      throw error;
    }
  };
  const labeledChannels = () => ({
    train: input(() => parseLabeledCsv(channels.train, 'train channel')),
    validation: channels.validation
      ? input(() => parseLabeledCsv(channels.validation, 'validation channel'))
      : undefined,
  });
  switch (algorithm) {
    case 'xgboost': {
      const params = input(() => parseXGBoostParams(hyperparameters));
      const { train, validation } = labeledChannels();
      hooks.log(
        `train: ${train.features.rows} rows × ${train.features.cols} features` +
          (validation ? `; validation: ${validation.features.rows} rows` : ''),
      );
      const result = await trainXGBoost(train, validation, params, {
        shouldStop: hooks.shouldStop,
        onRound: (report) => {
          hooks.log(
            `[${report.round - 1}]\t${report.metrics.map((m) => `${m.name.replace(':', '-')}:${m.value.toFixed(5)}`).join('\t')}`,
          );
          hooks.onProgress({ current: report.round, total: report.numRound, unit: 'round', metrics: report.metrics });
        },
      }).catch(invalidSettingAsClientError);
      if (result.earlyStopped) hooks.log(`Stopping. Best iteration: [${result.bestIteration}]`);
      return {
        files: [{ name: 'xgboost-model', bytes: Buffer.from(result.modelJson) }],
        finalMetrics: result.finalMetrics,
        stopped: result.stopped,
      };
    }
    case 'linear-learner': {
      const params = input(() => parseLinearLearnerParams(hyperparameters));
      const { train, validation } = labeledChannels();
      hooks.log(`train: ${train.features.rows} rows × ${train.features.cols} features`);
      const result = await trainLinearLearner(train, validation, params, {
        shouldStop: hooks.shouldStop,
        onEpoch: (report) => {
          hooks.log(
            `#epoch ${report.epoch}: ${report.metrics.map((m) => `${m.name}=${m.value.toFixed(5)}`).join(', ')}`,
          );
          hooks.onProgress({ current: report.epoch, total: report.epochs, unit: 'epoch', metrics: report.metrics });
        },
      }).catch(invalidSettingAsClientError);
      return {
        files: [{ name: 'model.json', bytes: Buffer.from(result.modelJson) }],
        finalMetrics: result.finalMetrics,
        stopped: result.stopped,
      };
    }
    case 'randomcutforest': {
      const params = input(() => parseRandomCutForestParams(hyperparameters));
      const data = input(() => parseUnlabeledCsv(channels.train, 'train channel'));
      const result = input(() => trainRandomCutForest(data, params));
      hooks.log(
        `sampled ${params.numTrees} trees of ${params.numSamplesPerTree} from ${data.rows} rows (${result.distinctPoints} distinct points kept)`,
      );
      hooks.onProgress({ current: params.numTrees, total: params.numTrees, unit: 'tree', metrics: [] });
      return {
        files: [{ name: 'model.json', bytes: Buffer.from(result.modelJson) }],
        finalMetrics: [],
        stopped: false,
      };
    }
  }
}
