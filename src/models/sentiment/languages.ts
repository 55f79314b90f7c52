/** Language codes Amazon Comprehend's DetectSentiment accepts. */
export const COMPREHEND_LANGUAGES: readonly string[] = Object.freeze([
  'en',
  'es',
  'fr',
  'de',
  'it',
  'pt',
  'ar',
  'hi',
  'ja',
  'ko',
  'zh',
  'zh-TW',
]);

/**
 * Languages the bundled model was trained and scored on (see docs/models.md). Dutch is not a
 * Comprehend sentiment language, but labelled Dutch reviews exist offline, so the model knows it.
 */
export const SENTIMENT_LANGUAGES: readonly string[] = Object.freeze(['en', 'es', 'fr', 'de', 'it', 'pt', 'nl']);

const supported = new Set(SENTIMENT_LANGUAGES);

export function isSupportedLanguage(code: string): boolean {
  return supported.has(code);
}

export class UnsupportedLanguageError extends Error {
  constructor(readonly languageCode: string) {
    super(`sentiment model does not support language '${languageCode}'; supported: ${SENTIMENT_LANGUAGES.join(', ')}`);
    this.name = 'UnsupportedLanguageError';
  }
}
