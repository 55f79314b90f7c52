import { Command } from 'commander';
import { ConfigError } from '../config/index.js';
import { registerBucketCommands } from './bucket.js';
import { registerEndpointCommands } from './endpoint.js';
import { registerIamCommands } from './iam.js';
import { configFromFlags, withConfigOptions } from './options.js';
import { registerTrainCommands } from './train.js';
import { up } from './up.js';

const program = new Command();
program
  .name('pgsage')
  .description('Machine-learning inference from SQL on real PostgreSQL, with the SQL surface of Aurora ML (aws_ml).')
  .showHelpAfterError();

withConfigOptions(
  program.command('up').description('start PostgreSQL, the gateway and the ML services in the foreground'),
).action(async (flags) => {
  await up(configFromFlags(flags));
});

registerEndpointCommands(program);
registerTrainCommands(program);
registerBucketCommands(program);
registerIamCommands(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`pgsage: ${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`pgsage: ${(error as Error).message}\n`);
  process.exit(1);
});
