/**
 * Which algorithm a SageMaker model runs (from its container image name) and
 * how to turn its artifact into a Predictor.
 */
import { artifactFiles, pickModelFile } from './artifact.js';
import { LinearLearnerPredictor } from './linear-learner/predictor.js';
import { OnnxPredictor } from './onnx/predictor.js';
import { RandomCutForestPredictor } from './random-cut-forest/predictor.js';
import type { Algorithm, Predictor } from './types.js';
import { XGBoostPredictor } from './xgboost/predictor.js';

/**
 * 'xgboost' for e.g. `683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1`,
 * 'linear-learner' for `…/linear-learner:1`, 'randomcutforest' for `…/randomcutforest:1`,
 * 'onnx' for any image naming onnx; undefined otherwise.
 */
export function algorithmFromImage(image: string): Algorithm | undefined {
  const name = image.toLowerCase();
  if (name.includes('xgboost')) return 'xgboost';
  if (name.includes('linear-learner') || name.includes('linear_learner')) return 'linear-learner';
  if (name.includes('randomcutforest') || name.includes('random-cut-forest')) return 'randomcutforest';
  if (name.includes('onnx')) return 'onnx';
  return undefined;
}

/** File names looked for inside a model.tar.gz, first match wins. */
const MODEL_FILE_NAMES: Record<Algorithm, readonly string[]> = {
  // What SageMaker's XGBoost training writes, then common hand-made names.
  xgboost: ['xgboost-model', 'xgboost-model.json', 'xgboost-model.ubj', 'model.json', 'model.ubj'],
  'linear-learner': ['model.json', 'linear-learner-model.json'],
  randomcutforest: ['model.json', 'randomcutforest-model.json'],
  onnx: ['model.onnx'],
};

export async function loadPredictor(
  algorithm: Algorithm,
  artifact: { fileName: string; bytes: Buffer },
): Promise<Predictor> {
  const files = artifactFiles(artifact);
  const onnxFiles = algorithm === 'onnx' ? files.filter((f) => f.name.toLowerCase().endsWith('.onnx')) : [];
  const file = pickModelFile(onnxFiles.length > 0 ? onnxFiles : files, MODEL_FILE_NAMES[algorithm], algorithm);
  switch (algorithm) {
    case 'xgboost':
      return XGBoostPredictor.fromBytes(file.bytes);
    case 'linear-learner':
      return LinearLearnerPredictor.fromBytes(file.bytes);
    case 'randomcutforest':
      return RandomCutForestPredictor.fromBytes(file.bytes);
    case 'onnx':
      return OnnxPredictor.fromBytes(file.bytes);
  }
}
