/** Configuration errors and warnings name what the user wrote: the variable, flag or file, not the internal key. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { unknownVariableWarnings } from '../../src/config/load.js';

const dir = mkdtempSync(path.join(tmpdir(), 'pgsage-config-sources-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function failure(options: Parameters<typeof loadConfig>[0]): string {
  try {
    loadConfig({ cwd: dir, env: {}, ...options });
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('the configuration was accepted');
}

describe('configuration errors', () => {
  it('name the environment variable and its value', () => {
    expect(failure({ env: { PGSAGE_PORT: 'abc' } })).toBe(
      'invalid configuration:\n  - PGSAGE_PORT=abc: expected a port number (0–65535)',
    );
    expect(failure({ env: { PGSAGE_EDGE_ANONYMOUS: 'maybe' } })).toBe(
      'invalid configuration:\n  - PGSAGE_EDGE_ANONYMOUS=maybe: expected one of none, loopback, any',
    );
    expect(failure({ env: { PGSAGE_PG_PORT: '70000' } })).toBe(
      'invalid configuration:\n  - PGSAGE_PG_PORT=70000: expected a port number (0–65535)',
    );
  });

  it('name the flag when a flag set the value, over the environment', () => {
    expect(failure({ env: { PGSAGE_PORT: '7000' }, overrides: { port: 'abc' } })).toBe(
      'invalid configuration:\n  - --port abc: expected a port number (0–65535)',
    );
    // (A flag's value as commander passes it: any text.)
    expect(failure({ overrides: { log: { level: 'loud' as 'info' } } })).toBe(
      'invalid configuration:\n  - --log-level loud: expected one of fatal, error, warn, info, debug, trace, silent',
    );
  });

  it('name the file and the setting in it', () => {
    const file = path.join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ servicesPort: 'x', backend: 'cloud' }));
    expect(failure({ file })).toBe(
      'invalid configuration:\n' +
        `  - servicesPort: expected a port number (0–65535) (in ${file})\n` +
        `  - backend: expected one of local, aws (in ${file})`,
    );
  });
});

describe('unknown PGSAGE_* variables', () => {
  it('are warned about, with the close known name, and do not stop the load', () => {
    const warnings: string[] = [];
    const config = loadConfig({
      cwd: dir,
      env: { PGSAGE_PROT: '7000', PGSAGE_WHATEVER: '1', PGSAGE_SERVICES_URL: 'http://x', PGSAGE_PORT: '7001' },
      onWarning: (message) => warnings.push(message),
    });
    expect(config.port).toBe(7001);
    expect(warnings).toEqual([
      'unknown environment variable PGSAGE_PROT is ignored (did you mean PGSAGE_PORT?)',
      'unknown environment variable PGSAGE_WHATEVER is ignored',
    ]);
  });

  it('leave out the variables the client commands, tests and scripts read', () => {
    const env = {
      PGSAGE_CONFIG: path.join(dir, 'absent.json'),
      PGSAGE_SERVICES_URL: 'http://x',
      PGSAGE_KEEP_TEST_DATA: '1',
      PGSAGE_SENTIMENT_CONFIG: '{}',
      PGSAGE_SENTIMENT_CACHE: dir,
    };
    expect(unknownVariableWarnings(env)).toEqual([]);
  });
});
