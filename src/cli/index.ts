import { ConfigError } from '../config/index.js';
import { createProgram } from './program.js';

createProgram()
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    if (error instanceof ConfigError) {
      process.stderr.write(`pgsage: ${error.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`pgsage: ${(error as Error).message}\n`);
    process.exit(1);
  });
