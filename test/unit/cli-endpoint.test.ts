/** `pgsage endpoint deploy` refusing an endpoint name SageMaker would refuse, before it creates anything. */
import { Command } from 'commander';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerEndpointCommands } from '../../src/cli/endpoint.js';
import { freePort } from '../support/ports.js';

/** A port nothing listens on: a deploy that gets as far as the services fails there. */
let servicesUrl: string;

beforeAll(async () => {
  servicesUrl = `http://127.0.0.1:${await freePort()}`;
});

async function deployError(name: string): Promise<string> {
  const program = new Command().name('pgsage').exitOverride();
  registerEndpointCommands(program, { out: () => {}, progress: () => {} });
  const args = ['endpoint', '--services-url', servicesUrl, 'deploy', name];
  try {
    await program.parseAsync([...args, '--model', 's3://models/m.tar.gz', '--algorithm', 'xgboost'], { from: 'user' });
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('the deploy succeeded');
}

const rule = 'use only letters, digits and hyphens (no underscores or dots), at most 63 characters';

describe('pgsage endpoint deploy', () => {
  it('names the rule an invalid endpoint name breaks, not a derived model name', async () => {
    for (const name of ['endpt_name', 'churn.v2', 'churn-', 'a'.repeat(64)]) {
      const message = await deployError(name);
      expect(message).toContain(`invalid endpoint name "${name}": ${rule}`);
      expect(message).not.toMatch(/modelName|cannot reach/);
    }
  });

  it('accepts names SageMaker accepts (and then needs the services)', async () => {
    for (const name of ['churn', 'Churn-2', 'a--b', 'a'.repeat(63)]) {
      expect(await deployError(name)).toMatch(/^cannot reach pgsage's services/);
    }
  });
});
