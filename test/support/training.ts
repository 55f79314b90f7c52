/** Data and helpers for the training tests: labeled CSV in SageMaker's convention (label first, no header). */
import { SeededRandom } from '../../src/models/random-cut-forest/random.js';

function gaussian(random: SeededRandom): number {
  return Math.sqrt(-2 * Math.log(1 - random.nextDouble())) * Math.cos(2 * Math.PI * random.nextDouble());
}

/** 8 features, nonlinear decision rule with noise, 3% missing values; label 0/1 first. */
export function classificationCsv(rows: number, seed: number): string {
  const random = new SeededRandom(seed);
  const lines: string[] = [];
  for (let r = 0; r < rows; r++) {
    const x = Array.from({ length: 8 }, () => Math.round(gaussian(random) * 1000) / 1000);
    const signal = 1.5 * x[0] - x[1] * x[2] + (x[3] > 0.3 ? 1 : -0.5) + 0.5 * x[4] * x[4] + gaussian(random) * 0.6;
    const fields = x.map((v) => (random.nextDouble() < 0.03 ? '' : String(v)));
    lines.push(`${signal > 0.4 ? 1 : 0},${fields.join(',')}`);
  }
  return `${lines.join('\n')}\n`;
}

/** 6 features, linear target plus Gaussian noise of variance 0.25; no missing values. */
export function regressionCsv(rows: number, seed: number): string {
  const random = new SeededRandom(seed);
  const lines: string[] = [];
  const weights = [3, -2, 0.5, 0, 1.5, -1];
  for (let r = 0; r < rows; r++) {
    const x = Array.from({ length: 6 }, () => Math.round(gaussian(random) * 1000) / 1000);
    const y = 10 + x.reduce((s, v, i) => s + v * weights[i], 0) + gaussian(random) * 0.5;
    lines.push(`${Math.round(y * 1e4) / 1e4},${x.join(',')}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Probability that a positive outscores a negative. */
export function auc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const order = Array.from({ length: labels.length }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let rankSum = 0;
  let positives = 0;
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j < order.length && scores[order[j]] === scores[order[i]]) j++;
    const rank = (i + j + 1) / 2;
    for (let k = i; k < j; k++) {
      if (labels[order[k]] === 1) {
        rankSum += rank;
        positives++;
      }
    }
    i = j;
  }
  const negatives = labels.length - positives;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** Polls DescribeTrainingJob (bounded) until the job leaves InProgress/Stopping. */
export async function waitForTrainingJob<
  T extends { TrainingJobStatus?: string; SecondaryStatusTransitions?: unknown },
>(describe: (name: string) => Promise<T>, name: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await describe(name);
    if (job.TrainingJobStatus !== 'InProgress' && job.TrainingJobStatus !== 'Stopping') return job;
    if (Date.now() > deadline)
      throw new Error(`training job ${name} still ${job.TrainingJobStatus} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
