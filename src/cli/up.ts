import path from 'node:path';
import { type RunningPgsage, startPgsage } from '../app.js';
import type { Config } from '../config/index.js';
import { createLogger, type Logger, redactConnectionString } from '../util/log.js';
import { clientOptionsLine, connectLine, exposureWarnings, servicesUrl } from './banner.js';

/** `pgsage up`: everything in the foreground until SIGINT/SIGTERM. */
export async function up(config: Config): Promise<void> {
  const logDir = path.join(config.dataDir, 'logs');
  const logger = createLogger({ level: config.log.level, directory: logDir, stderr: config.log.stderr });
  const where = config.postgres.upstream ? `upstream ${redactConnectionString(config.postgres.upstream)}` : 'embedded';
  for (const warning of exposureWarnings(config)) {
    logger.warn(warning);
    process.stderr.write(`${warning}\n`);
  }
  process.stdout.write(`Starting pgsage (PostgreSQL: ${where}, data: ${config.dataDir}) …\n`);
  const running = await startPgsage(config, logger);
  // Listening for Ctrl-C before the banner asks for it: a SIGINT with no listener yet would kill pgsage
  // outright and leave PostgreSQL running.
  const stopped = untilStopped(running, logger, logDir);
  const clientOptions = clientOptionsLine(config, running);
  process.stdout.write(
    [
      '',
      'pgsage is running.',
      `  Connect:   ${connectLine(config, running)}`,
      `  Services:  ${servicesUrl(config, running)}  (AWS SDK/CLI: --endpoint-url ${servicesUrl(config, running)})`,
      `  Logs:      ${logDir}`,
      ...(clientOptions ? [`  CLI:       ${clientOptions}`] : []),
      '',
      'Then, in psql:  CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE;',
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );

  await stopped;
}

/** Resolves once pgsage has stopped: on SIGINT or SIGTERM, or when a part it needs stopped on its own. */
function untilStopped(running: RunningPgsage, logger: Logger, logDir: string): Promise<void> {
  return new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        process.stdout.write('Forced exit.\n');
        process.exit(130);
      }
      stopping = true;
      process.stdout.write(`\n${signal}: stopping pgsage …\n`);
      running
        .stop()
        .then(() => {
          process.stdout.write('pgsage stopped.\n');
          logger.flush();
          resolve();
        })
        .catch((error) => {
          process.stderr.write(`error while stopping: ${(error as Error).message}\n`);
          process.exitCode = 1;
          resolve();
        });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    // pgsage does not restart a PostgreSQL that died: what killed it (out of memory, an operator) would likely again.
    void running.failed.then((error) => {
      if (stopping) return;
      stopping = true;
      logger.error({ err: error }, 'stopping pgsage: a part it needs stopped');
      process.stderr.write(
        `pgsage: ${error.message}; stopping pgsage. ` +
          `See ${path.join(logDir, 'postgres.log')}, then start pgsage again.\n`,
      );
      running
        .stop()
        .catch((stopError) => logger.error({ err: stopError }, 'error while stopping'))
        .finally(() => {
          process.exitCode = 1;
          logger.flush();
          resolve();
        });
    });
  });
}
