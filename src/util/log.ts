import { fchmodSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/** Field names that may carry credentials; pino replaces their values before anything is written. */
const secretPaths = [
  'password',
  'secret',
  'secretAccessKey',
  'authorization',
  'connectionString',
  '*.password',
  '*.secret',
  '*.secretAccessKey',
  '*.authorization',
  '*.connectionString',
  'headers.authorization',
  'req.headers.authorization',
];

export interface LoggerOptions {
  level: string;
  /** Directory for pgsage.log; omitted → no file. */
  directory?: string;
  stderr?: boolean;
}

/** pgsage's logs directory and files: readable by the user who runs it alone (statements may hold secrets). */
export const LOG_DIR_MODE = 0o700;
export const LOG_FILE_MODE = 0o600;

/** Opens a log file to append to, the user's alone (one made before with the default mode is narrowed too). */
export function openLogFile(file: string): number {
  const fd = openSync(file, 'a', LOG_FILE_MODE);
  fchmodSync(fd, LOG_FILE_MODE);
  return fd;
}

export function createLogger(options: LoggerOptions): Logger {
  const streams: pino.StreamEntry[] = [];
  if (options.directory) {
    mkdirSync(options.directory, { recursive: true, mode: LOG_DIR_MODE });
    // The file is opened here, synchronously, and only the writes are asynchronous: a destination that opens
    // its file itself is not ready for a tick, and pino's exit hook then throws "sonic boom is not ready yet"
    // from flushSync when the process exits early (e.g. `pgsage up` refusing a data directory in use).
    const fd = openLogFile(path.join(options.directory, 'pgsage.log'));
    streams.push({ level: options.level as pino.Level, stream: pino.destination({ fd, sync: false }) });
  }
  if (options.stderr) streams.push({ level: options.level as pino.Level, stream: pino.destination(2) });
  if (streams.length === 0) return pino({ level: 'silent' });
  return pino(
    { level: options.level, redact: { paths: secretPaths, censor: '[redacted]' }, base: { pid: process.pid } },
    pino.multistream(streams),
  );
}

/** A logger that writes nothing, for library use and tests. */
export const silentLogger: Logger = pino({ level: 'silent' });

/** Removes a password from a PostgreSQL connection string before it is shown to anyone. */
export function redactConnectionString(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return connectionString.replace(/password=\S+/gi, 'password=***');
  }
}
