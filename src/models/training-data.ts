/**
 * Training data the way SageMaker's built-in algorithms read `text/csv`
 * channels: no header, one example per line, the label in the first column
 * (Random Cut Forest: no label at all). An empty field is a missing value.
 */
import { parseCsvFeatures } from './csv-features.js';
import { type FeatureMatrix, ModelInputError } from './types.js';

/** One evaluation a trainer reports, under SageMaker's name for it: `train:rmse`, `validation:auc`, … */
export interface MetricValue {
  readonly name: string;
  readonly value: number;
}

/** Features as float32 (what every trainer bins or multiplies), row-major, plus one label per row. */
export interface LabeledData {
  readonly features: FeatureMatrix & { readonly data: Float32Array };
  readonly labels: Float32Array;
}

/** Parses CSV whose first column is the label. */
export function parseLabeledCsv(body: Buffer | string, what = 'training data'): LabeledData {
  const matrix = parseCsvFeatures(body);
  if (matrix.rows === 0) throw new ModelInputError(`${what} has no rows`);
  if (matrix.cols < 2) throw new ModelInputError(`${what} needs a label column and at least one feature column`);
  return splitLabelColumn(matrix, what);
}

/** Parses CSV of features only (Random Cut Forest's convention). */
export function parseUnlabeledCsv(
  body: Buffer | string,
  what = 'training data',
): FeatureMatrix & { data: Float32Array } {
  const matrix = parseCsvFeatures(body);
  if (matrix.rows === 0) throw new ModelInputError(`${what} has no rows`);
  return { data: Float32Array.from(matrix.data), rows: matrix.rows, cols: matrix.cols };
}

export function splitLabelColumn(matrix: FeatureMatrix, what = 'training data'): LabeledData {
  const { rows, cols, data } = matrix;
  const featureCols = cols - 1;
  const labels = new Float32Array(rows);
  const features = new Float32Array(rows * featureCols);
  for (let r = 0; r < rows; r++) {
    const label = data[r * cols];
    if (Number.isNaN(label)) throw new ModelInputError(`${what}, row ${r + 1}: the label (first column) is missing`, r);
    labels[r] = label;
    features.set(data.subarray(r * cols + 1, (r + 1) * cols), r * featureCols);
  }
  return { features: { data: features, rows, cols: featureCols }, labels };
}
