import { fileURLToPath } from 'node:url';
import { findRepoRoot } from '../../src/models/sentiment/model-path.js';

const root = findRepoRoot(fileURLToPath(new URL('.', import.meta.url)));

/** Scratch space for translations; under node_modules so it is never committed. */
export const CACHE_DIR = `${root}/node_modules/.cache/pgsage-sentiment`;
export const MODELS_DIR = `${root}/models/sentiment`;
export const REPO_ROOT = root;
