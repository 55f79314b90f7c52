import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The AWS CLI pointed at a pgsage edge, isolated from the user's AWS
 * configuration (HOME and config files in a scratch folder the test file may
 * also use, made before its other hooks and removed after them), run
 * asynchronously because the edge usually lives in the test's own process.
 * Call it at the top of a test file.
 */
export function awsCli(endpointUrl: () => string) {
  let folder = '';
  const scratch = () => folder;
  beforeAll(() => {
    folder = mkdtempSync(path.join(tmpdir(), 'pgsage-aws-cli-'));
  });
  afterAll(() => {
    if (folder) rmSync(folder, { recursive: true, force: true });
  });
  const aws = (...args: string[]): Promise<CliResult> =>
    new Promise((resolve) => {
      execFile(
        'aws',
        [...args, '--endpoint-url', endpointUrl(), '--region', 'us-east-1', '--output', 'json'],
        {
          env: {
            PATH: process.env.PATH,
            HOME: scratch(),
            AWS_ACCESS_KEY_ID: 'test',
            AWS_SECRET_ACCESS_KEY: 'test',
            AWS_CONFIG_FILE: path.join(scratch(), 'no-config'),
            AWS_SHARED_CREDENTIALS_FILE: path.join(scratch(), 'no-credentials'),
            AWS_PAGER: '',
            AWS_MAX_ATTEMPTS: '1',
          },
          timeout: 60_000,
        },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });
  // biome-ignore lint/suspicious/noExplicitAny: the CLI's JSON output is checked field by field by the assertions.
  const awsJson = async (...args: string[]): Promise<Record<string, any>> => {
    const result = await aws(...args);
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout || '{}');
  };
  return { aws, awsJson, scratch };
}
