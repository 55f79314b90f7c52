/**
 * XGBoost scoring throughput: pgsage's TypeScript predictor against the real
 * XGBoost (Python, nthread=1, the way SageMaker's container serves), on the same
 * model files and the same rows, measured side by side in this run.
 *
 *   npm run build && node dist/bench/xgboost-predict.js [--seconds 1]
 *
 * Models: the 60-tree binary:logistic fixture (test/fixtures/models/xgboost) and,
 * when Python's xgboost is present, a larger 300-tree depth-6 model it trains here.
 * Also reports, for 1,000-row requests, text/csv parse speed next to scoring speed.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { artifactFiles } from '../src/models/artifact.js';
import { parseCsvFeatures } from '../src/models/csv-features.js';
import { SeededRandom } from '../src/models/random-cut-forest/random.js';
import type { FeatureMatrix } from '../src/models/types.js';
import { XGBoostPredictor } from '../src/models/xgboost/predictor.js';

const PYTHON = '/usr/bin/python3';
const BIG_BATCH_ROWS = 100_000;
const REQUEST_ROWS = 1_000;
const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 0.5;
const ROUNDS = 5;

function repoRoot(): string {
  let dir = import.meta.dirname;
  while (!existsSync(join(dir, 'test', 'fixtures', 'models', 'xgboost'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find test/fixtures/models/xgboost above ' + import.meta.dirname);
    dir = parent;
  }
  return dir;
}

/** Rows per second of `work(rows)`, repeated for about `seconds` after a warm-up. */
function throughput(rows: number, work: () => void): number {
  work();
  let done = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < seconds) {
    work();
    done += rows;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  }
  return done / elapsed;
}

/** Fixture-like rows: standard normal values rounded to 4 decimals, 8% missing. */
function syntheticRows(rows: number, cols: number, seed: number): FeatureMatrix {
  const random = new SeededRandom(seed);
  const data = new Float64Array(rows * cols);
  for (let i = 0; i < data.length; i++) {
    if (random.nextDouble() < 0.08) {
      data[i] = Number.NaN;
      continue;
    }
    const g = Math.sqrt(-2 * Math.log(1 - random.nextDouble())) * Math.cos(2 * Math.PI * random.nextDouble());
    data[i] = Math.round(g * 1e4) / 1e4;
  }
  return { data, rows, cols };
}

function toCsv(matrix: FeatureMatrix): string {
  const lines: string[] = [];
  for (let r = 0; r < matrix.rows; r++) {
    const fields: string[] = [];
    for (let c = 0; c < matrix.cols; c++) {
      const v = matrix.data[r * matrix.cols + c];
      fields.push(Number.isNaN(v) ? '' : String(v));
    }
    lines.push(fields.join(','));
  }
  return lines.join('\n') + '\n';
}

/**
 * The baseline runs as a long-lived worker: it loads the models once, then answers
 * one measurement per request line, so both sides are measured in alternating
 * rounds under the same machine load.
 */
const PYTHON_WORKER = `
import json, sys, time
import numpy as np
try:
    import xgboost as xgb
except ImportError as e:
    print(json.dumps({"error": str(e)}), flush=True); sys.exit(0)
cfg = json.load(open(sys.argv[1]))
if cfg.get("train_large"):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((10000, 20)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] * x[:, 2] - np.abs(x[:, 3]) + rng.standard_normal(10000) > 0).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    b = xgb.train({"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "nthread": 1, "seed": 5},
                  xgb.DMatrix(x, label=y), 300)
    b.save_model(cfg["train_large"])
cases = []
for case in cfg["cases"]:
    booster = xgb.Booster(model_file=case["model"])
    booster.set_param({"nthread": 1})
    x = np.fromfile(case["rows"], dtype=np.float32).reshape(-1, case["cols"])
    np.asarray(booster.inplace_predict(x, missing=np.nan), dtype=np.float32).tofile(case["rows"] + ".pred")
    cases.append((booster, x, x[: cfg["request_rows"]]))
def measure(fn, rows, seconds):
    fn()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(); done += rows
    return done / (time.perf_counter() - start)
# A DMatrix predicted on twice hits XGBoost's prediction cache, so each call builds a
# fresh one; inplace_predict (no DMatrix) is measured too and the faster one counts.
def best(booster, rows, seconds):
    return max(measure(lambda: booster.predict(xgb.DMatrix(rows, missing=np.nan, nthread=1)), rows.shape[0], seconds / 2),
               measure(lambda: booster.inplace_predict(rows, missing=np.nan), rows.shape[0], seconds / 2))
print(json.dumps({"ready": True, "xgboost_version": xgb.__version__}), flush=True)
for line in sys.stdin:
    i, which = json.loads(line)
    booster, big, small = cases[i]
    print(json.dumps({"rows_per_s": best(booster, big if which == "big" else small, cfg["seconds"])}), flush=True)
`;

/** The Python baseline worker, or the reason it is unavailable. */
class PythonBaseline {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  version = '';

  private constructor(child: ChildProcessWithoutNullStreams) {
    this.child = child;
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  static async start(config: object, dir: string): Promise<PythonBaseline | string> {
    if (!existsSync(PYTHON)) return `${PYTHON} not found`;
    const script = join(dir, 'baseline.py');
    const configFile = join(dir, 'config.json');
    writeFileSync(script, PYTHON_WORKER);
    writeFileSync(configFile, JSON.stringify(config));
    const child = spawn(PYTHON, [script, configFile], { env: { ...process.env, OMP_NUM_THREADS: '1' } });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const baseline = new PythonBaseline(child);
    const first = await baseline.lines.next();
    if (first.done) return stderr.trim().split('\n').pop() || 'the Python baseline exited';
    const hello = JSON.parse(first.value) as { error?: string; xgboost_version?: string };
    if (hello.error) return hello.error;
    baseline.version = hello.xgboost_version ?? '?';
    return baseline;
  }

  async measure(caseIndex: number, which: 'big' | 'requests'): Promise<number> {
    this.child.stdin.write(JSON.stringify([caseIndex, which]) + '\n');
    const line = await this.lines.next();
    if (line.done) throw new Error('the Python baseline exited');
    return (JSON.parse(line.value) as { rows_per_s: number }).rows_per_s;
  }

  stop(): void {
    this.child.stdin.end();
  }
}

const fmt = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(0)}k`);

async function main(): Promise<void> {
  const root = repoRoot();
  const fixture = join(root, 'test', 'fixtures', 'models', 'xgboost', 'binary_logistic.json.model.tar.gz');
  const smallModel = artifactFiles({ fileName: fixture, bytes: readFileSync(fixture) })[0].bytes;
  const dir = mkdtempSync(join(tmpdir(), 'pgsage-xgb-bench-'));
  let python: PythonBaseline | string = 'not started';
  try {
    const cases = [
      { name: 'binary:logistic 60 trees depth 4, 12 features', model: join(dir, 'small.json'), cols: 12 },
      { name: 'binary:logistic 300 trees depth 6, 20 features', model: join(dir, 'large.json'), cols: 20 },
    ];
    writeFileSync(cases[0].model, smallModel);
    const inputs = cases.map((c, i) => syntheticRows(BIG_BATCH_ROWS, c.cols, 100 + i));
    inputs.forEach((m, i) => {
      writeFileSync(join(dir, `rows${i}.f32`), Float32Array.from(m.data));
    });

    python = await PythonBaseline.start(
      {
        seconds,
        request_rows: REQUEST_ROWS,
        train_large: cases[1].model,
        cases: cases.map((c, i) => ({ name: c.name, model: c.model, rows: join(dir, `rows${i}.f32`), cols: c.cols })),
      },
      dir,
    );
    const baseline = typeof python === 'string' ? undefined : python;
    console.log(`XGBoost scoring throughput, best of ${ROUNDS} alternating rounds of ${seconds}s, one thread each`);
    if (!baseline) {
      console.log(
        `baseline unavailable (${python}): install it with ` +
          '`apt-get install -y python3-xgboost` (Debian) to compare against the real XGBoost',
      );
    } else {
      console.log(
        `baseline: XGBoost ${baseline.version} (Python, nthread=1, the faster of predict(DMatrix) and inplace_predict)`,
      );
    }

    for (const [i, c] of cases.entries()) {
      if (!existsSync(c.model)) continue; // the large model exists only when Python trained it
      const predictor = XGBoostPredictor.fromBytes(readFileSync(c.model));
      const input = inputs[i];
      const request: FeatureMatrix = {
        ...input,
        data: input.data.subarray(0, REQUEST_ROWS * c.cols),
        rows: REQUEST_ROWS,
      };
      console.log(`\n${c.name}`);
      for (const which of ['big', 'requests'] as const) {
        const batch = which === 'big' ? input : request;
        let mine = 0;
        let real = 0;
        // Alternate the two sides so a burst of load elsewhere hits both; keep each side's best round.
        for (let round = 0; round < ROUNDS; round++) {
          mine = Math.max(
            mine,
            throughput(batch.rows, () => predictor.predict(batch)),
          );
          if (baseline) real = Math.max(real, await baseline.measure(i, which));
        }
        const label = which === 'big' ? `${fmt(BIG_BATCH_ROWS)}-row batch` : `${REQUEST_ROWS}-row requests`;
        console.log(
          `  ${label.padEnd(20)} pgsage ${fmt(mine).padStart(7)} rows/s` +
            (baseline ? `   xgboost ${fmt(real).padStart(7)} rows/s   ratio ${(mine / real).toFixed(2)}×` : ''),
        );
      }
      const predFile = join(dir, `rows${i}.f32.pred`);
      if (existsSync(predFile)) {
        const reference = new Float32Array(readFileSync(predFile).buffer.slice(0));
        const mine = predictor.predict(input).values;
        let worst = 0;
        for (let k = 0; k < reference.length; k++) worst = Math.max(worst, Math.abs(mine[k] - reference[k]));
        console.log(
          `  predictions vs xgboost: max |difference| ${worst.toExponential(2)} over ${reference.length} rows`,
        );
      }
    }

    // Where a 1,000-row text/csv request spends its time: parsing vs scoring.
    const predictor = XGBoostPredictor.fromBytes(smallModel);
    const body = Buffer.from(
      toCsv({ ...inputs[0], data: inputs[0].data.subarray(0, REQUEST_ROWS * 12), rows: REQUEST_ROWS }),
    );
    const parsed = parseCsvFeatures(body, 12);
    const best = (work: () => unknown) =>
      Math.max(...Array.from({ length: ROUNDS }, () => throughput(REQUEST_ROWS, () => work())));
    const parse = best(() => parseCsvFeatures(body, 12));
    const score = best(() => predictor.predict(parsed));
    const format = best(() => predictor.predict(parsed).csvLines().join('\n'));
    console.log(`\n1,000-row text/csv request on the 60-tree model (${(body.length / 1024).toFixed(0)} KiB body)`);
    console.log(`  parse CSV                 ${fmt(parse).padStart(7)} rows/s`);
    console.log(`  score                     ${fmt(score).padStart(7)} rows/s`);
    console.log(`  score + format answer     ${fmt(format).padStart(7)} rows/s`);
  } finally {
    if (typeof python !== 'string') python.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
