/**
 * Contracts between the model implementations (src/models/*) and the services
 * that host them (src/services/*). Models never see HTTP; services never see
 * model internals.
 */

/** Dense row-major feature matrix; NaN marks a missing value (an empty CSV field). */
export interface FeatureMatrix {
  readonly data: Float32Array | Float64Array;
  readonly rows: number;
  readonly cols: number;
}

/** The algorithms a SageMaker-style endpoint can host, chosen from the container image name. */
export type Algorithm = 'xgboost' | 'linear-learner' | 'randomcutforest' | 'onnx';

/** Predictions for a batch of rows, formatted the way SageMaker's built-in containers answer. */
export interface Predictions {
  readonly rows: number;
  /** One text/csv output line per input row, without the trailing newline. */
  csvLines(): string[];
  /** The application/json response body SageMaker's container for this algorithm returns. */
  json(): unknown;
}

export interface Predictor {
  readonly algorithm: Algorithm;
  /** Number of input features the model expects, when the model format records it. */
  readonly numFeatures: number | undefined;
  predict(input: FeatureMatrix): Predictions | Promise<Predictions>;
}

/** Raised when the model cannot use the rows it was given (SageMaker answers these as ModelError). */
export class ModelInputError extends Error {
  constructor(
    message: string,
    /** Zero-based index of the offending input row, when one row is at fault. */
    readonly row?: number,
  ) {
    super(message);
    this.name = 'ModelInputError';
  }
}

/** Raised when a model artifact cannot be read. */
export class ModelFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelFormatError';
  }
}
