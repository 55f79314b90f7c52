/** The `pgsage` command line, built apart from running it so that tests can read its help. */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { packagePath } from '../util/paths.js';
import { registerBucketCommands } from './bucket.js';
import { registerEndpointCommands } from './endpoint.js';
import { registerIamCommands } from './iam.js';
import { configFromFlags, withConfigOptions } from './options.js';
import { registerTrainCommands } from './train.js';
import { up } from './up.js';

export function packageVersion(): string {
  return (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }).version;
}

export function createProgram(): Command {
  const program = new Command();
  program
    .name('pgsage')
    .description('Machine-learning inference from SQL on real PostgreSQL, with the SQL surface of Aurora ML (aws_ml).')
    .version(packageVersion(), '-V, --version', 'print the pgsage version')
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
  return program;
}
