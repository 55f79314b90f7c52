/**
 * Machine translation of training and held-out text with Debian's Apertium, cached on disk so a
 * re-run of training costs nothing. Apertium is rule-based and deterministic, which keeps the
 * training reproducible; words it does not know are dropped rather than left in the source language.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CACHE_DIR } from './paths.js';

/** Apertium mode names (`apertium -l`) for the pairs used here. */
export type ApertiumPair = 'eng-spa' | 'fr-es' | 'es-pt' | 'spa-ita' | 'es-fr';

/** `*word` unknown to the analyser, `@word` missing from the bilingual dictionary, `#word` not generated. */
const UNTRANSLATED = /(^|\s)[*@#][^\s]*/g;

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** Apertium's wrapper script misreads a piped stdin when not run from a shell, so it gets files. */
function runApertium(pair: ApertiumPair, input: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'apertium-'));
  const inFile = join(dir, 'in.txt');
  const outFile = join(dir, 'out.txt');
  writeFileSync(inFile, input);
  return new Promise<string>((resolve, reject) => {
    const child = spawn('apertium', [pair, inFile, outFile], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(readFileSync(outFile, 'utf8'));
      else reject(new Error(`apertium ${pair} exited with ${code}`));
    });
  }).finally(() => rmSync(dir, { recursive: true, force: true }));
}

/** Translate each text (one output per input, same order). */
export async function translate(texts: readonly string[], pair: ApertiumPair): Promise<string[]> {
  const lines = texts.map(oneLine);
  const key = createHash('sha256').update(pair).update('\0').update(lines.join('\n')).digest('hex').slice(0, 16);
  const dir = join(CACHE_DIR, 'translations');
  const file = join(dir, `${pair}-${key}.json`);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as string[];

  const started = Date.now();
  const output = (await runApertium(pair, `${lines.join('\n')}\n`)).split('\n');
  if (output.at(-1) === '') output.pop();
  if (output.length !== lines.length) {
    throw new Error(`apertium ${pair}: ${lines.length} lines in, ${output.length} out`);
  }
  const translated = output.map((line) => line.replace(UNTRANSLATED, '$1').replace(/\s+/g, ' ').trim());
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, JSON.stringify(translated));
  console.log(`translated ${lines.length} texts ${pair} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return translated;
}

export function apertiumAvailable(): boolean {
  return ['/usr/bin/apertium', '/usr/local/bin/apertium'].some((p) => existsSync(p));
}
