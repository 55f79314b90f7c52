export { ConfigError, type LoadOptions, loadConfig } from './load.js';
export { type Config, type ConfigInput, configSchema, DEFAULT_PG_PASSWORD } from './schema.js';
