import path from 'node:path';
import { startPgsage } from '../app.js';
import type { Config } from '../config/index.js';
import { createLogger, redactConnectionString } from '../util/log.js';

/** `pgsage up`: everything in the foreground until SIGINT/SIGTERM. */
export async function up(config: Config): Promise<void> {
  const logDir = path.join(config.dataDir, 'logs');
  const logger = createLogger({ level: config.log.level, directory: logDir, stderr: config.log.stderr });
  const where = config.postgres.upstream ? `upstream ${redactConnectionString(config.postgres.upstream)}` : 'embedded';
  process.stdout.write(`Starting pgsage (PostgreSQL: ${where}, data: ${config.dataDir}) …\n`);
  const running = await startPgsage(config, logger);
  process.stdout.write(
    [
      '',
      'pgsage is running.',
      `  Connect:   psql ${running.connectionString()}`,
      `  Services:  ${running.edge.url}  (AWS SDK/CLI: --endpoint-url ${running.edge.url})`,
      `  Logs:      ${logDir}`,
      '',
      'Then, in psql:  CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE;',
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );

  await new Promise<void>((resolve) => {
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
  });
}
