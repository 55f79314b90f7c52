export { ConfigError, type LoadOptions, loadConfig } from './load.js';
export { type Config, type ConfigInput, configSchema } from './schema.js';
