/**
 * Which algorithm a SageMaker model runs (from its container image name) and
 * how to turn its artifact into a Predictor.
 */
import { artifactFiles, pickModelFile } from './artifact.js';
import { LinearLearnerPredictor } from './linear-learner/predictor.js';
import { OnnxPredictor } from './onnx/predictor.js';
import { RandomCutForestPredictor } from './random-cut-forest/predictor.js';
import { type Algorithm, ModelFormatError, type Predictor } from './types.js';
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

const ALGORITHM_NAMES: Record<Algorithm, string> = {
  xgboost: 'XGBoost',
  'linear-learner': 'Linear Learner',
  randomcutforest: 'Random Cut Forest',
  onnx: 'ONNX',
};

/**
 * The algorithm a model file is evidently for, from a cheap look at it, or undefined: XGBoost's JSON and UBJSON
 * models hold a `learner`, its legacy binary ones start with `binf`, pgsage's Linear Learner and Random Cut
 * Forest files name their algorithm, and ONNX files are known by their name.
 */
export function algorithmOfFile(file: { name: string; bytes: Buffer }): Algorithm | undefined {
  if (file.name.toLowerCase().endsWith('.onnx')) return 'onnx';
  if (file.bytes.subarray(0, 4).toString('latin1') === 'binf') return 'xgboost';
  const start = file.bytes.subarray(0, 64).toString('latin1').trimStart();
  if (!start.startsWith('{')) return undefined;
  try {
    const doc = JSON.parse(file.bytes.toString('utf8')) as Record<string, unknown>;
    if (doc.algorithm === 'linear-learner' || doc.algorithm === 'randomcutforest') return doc.algorithm;
    if (typeof doc.learner === 'object' && doc.learner !== null) return 'xgboost';
    return undefined;
  } catch {
    // Not JSON: UBJSON, whose keys are plain bytes in the file.
    return file.bytes.includes('learner', 0, 'latin1') ? 'xgboost' : undefined;
  }
}

export async function loadPredictor(
  algorithm: Algorithm,
  artifact: { fileName: string; bytes: Buffer },
): Promise<Predictor> {
  const files = artifactFiles(artifact);
  const onnxFiles = algorithm === 'onnx' ? files.filter((f) => f.name.toLowerCase().endsWith('.onnx')) : [];
  const file = pickModelFile(onnxFiles.length > 0 ? onnxFiles : files, MODEL_FILE_NAMES[algorithm], algorithm);
  try {
    return await predictorFor(algorithm, file);
  } catch (error) {
    // A model deployed as another algorithm fails with that algorithm's complaint about its format, which does not
    // say the one thing to change.
    const evident = algorithmOfFile(file);
    if (evident === undefined || evident === algorithm) throw error;
    throw new ModelFormatError(
      `${file.name} is ${evident === 'xgboost' || evident === 'onnx' ? 'an' : 'a'} ${ALGORITHM_NAMES[evident]} model, not ${ALGORITHM_NAMES[algorithm]}: ` +
        `deploy it as ${evident} (pgsage endpoint deploy --algorithm ${evident}, or a container image naming ${evident})`,
    );
  }
}

async function predictorFor(algorithm: Algorithm, file: { bytes: Buffer }): Promise<Predictor> {
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
