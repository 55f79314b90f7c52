import { fileURLToPath } from 'node:url';
import { findRepoRoot } from '../../src/models/sentiment/model-path.js';

const root = findRepoRoot(fileURLToPath(new URL('.', import.meta.url)));

/**
 * Scratch space for translations; under node_modules so it is never committed.
 * PGSAGE_SENTIMENT_CACHE moves it (e.g. for a work tree whose node_modules is shared).
 */
export const CACHE_DIR = process.env.PGSAGE_SENTIMENT_CACHE ?? `${root}/node_modules/.cache/pgsage-sentiment`;
export const MODELS_DIR = `${root}/models/sentiment`;
export const REPO_ROOT = root;
