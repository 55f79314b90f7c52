/**
 * ONNX models through onnxruntime-node, loaded lazily so that pgsage installs and
 * runs without it: only an endpoint that serves an ONNX model needs the package.
 *
 * Input: the feature matrix as one float32 tensor [rows, cols] fed to the model's
 * first input. Output, per row:
 *   text/csv          the values of the first tensor output, comma-separated
 *   application/json  {"predictions":[{"<output name>": value or [values], …}]} over every tensor output
 * Non-tensor outputs (e.g. skl2onnx's ZipMap probabilities) are skipped: convert
 * classifiers with `options={'zipmap': False}`.
 */
import { type FeatureMatrix, ModelFormatError, ModelInputError, type Predictions, type Predictor } from '../types.js';

/** The part of onnxruntime-node's documented API used here. */
interface OrtTensor {
  readonly data: ArrayLike<number | bigint | string | boolean>;
  readonly dims: readonly number[];
  readonly type: string;
}
interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, unknown>>;
}
interface OrtModule {
  InferenceSession: { create(model: Uint8Array, options?: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
}

const PACKAGE = 'onnxruntime-node';
let runtime: Promise<OrtModule> | undefined;

async function loadRuntime(): Promise<OrtModule> {
  runtime ??= (async () => {
    try {
      // A variable specifier keeps TypeScript and bundlers from requiring the optional package.
      const specifier: string = PACKAGE;
      const loaded = (await import(specifier)) as OrtModule & { default?: OrtModule };
      return loaded.InferenceSession ? loaded : loaded.default!;
    } catch (error) {
      runtime = undefined;
      throw new ModelFormatError(
        `ONNX models need the optional package ${PACKAGE}, which is not installed ` +
          `(install it with: ONNXRUNTIME_NODE_INSTALL=skip npm install ${PACKAGE}): ${(error as Error).message}`,
      );
    }
  })();
  return runtime;
}

export class OnnxPredictor implements Predictor {
  readonly algorithm = 'onnx' as const;
  readonly numFeatures: number | undefined = undefined;

  private constructor(
    private readonly ort: OrtModule,
    private readonly session: OrtSession,
  ) {}

  static async fromBytes(bytes: Uint8Array): Promise<OnnxPredictor> {
    const ort = await loadRuntime();
    let session: OrtSession;
    try {
      session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
    } catch (error) {
      throw new ModelFormatError(`cannot load the ONNX model: ${(error as Error).message}`);
    }
    if (session.inputNames.length === 0) throw new ModelFormatError('the ONNX model has no inputs');
    return new OnnxPredictor(ort, session);
  }

  async predict(input: FeatureMatrix): Promise<OnnxPredictions> {
    const data = input.data instanceof Float32Array ? input.data : Float32Array.from(input.data);
    const tensor = new this.ort.Tensor('float32', data, [input.rows, input.cols]);
    let results: Record<string, unknown>;
    try {
      results = await this.session.run({ [this.session.inputNames[0]]: tensor });
    } catch (error) {
      throw new ModelInputError(`the ONNX model rejected the input: ${(error as Error).message}`);
    }
    const outputs: Array<{ name: string; values: number[]; width: number }> = [];
    for (const name of this.session.outputNames) {
      const out = results[name] as OrtTensor | undefined;
      if (!out || typeof out !== 'object' || !('dims' in out) || !('data' in out)) continue;
      const values = Array.from(out.data as ArrayLike<number | bigint>, Number);
      const width = input.rows === 0 ? 0 : values.length / input.rows;
      if (!Number.isInteger(width)) continue;
      outputs.push({ name, values, width });
    }
    if (outputs.length === 0) throw new ModelFormatError('the ONNX model produced no numeric tensor output');
    return new OnnxPredictions(input.rows, outputs);
  }
}

export class OnnxPredictions implements Predictions {
  constructor(
    readonly rows: number,
    readonly outputs: ReadonlyArray<{ name: string; values: number[]; width: number }>,
  ) {}

  private rowOf(output: { values: number[]; width: number }, r: number): number | number[] {
    return output.width === 1 ? output.values[r] : output.values.slice(r * output.width, (r + 1) * output.width);
  }

  csvLines(): string[] {
    const first = this.outputs[0];
    return Array.from({ length: this.rows }, (_, r) => {
      const row = this.rowOf(first, r);
      return Array.isArray(row) ? row.join(',') : String(row);
    });
  }

  json(): { predictions: Record<string, number | number[]>[] } {
    const predictions = Array.from({ length: this.rows }, (_, r) => {
      const entry: Record<string, number | number[]> = {};
      for (const output of this.outputs) entry[output.name] = this.rowOf(output, r);
      return entry;
    });
    return { predictions };
  }
}
