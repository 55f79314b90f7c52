/** Where `pgsage endpoint …` and `pgsage train` find the region: the flag, then the AWS variables, then pgsage's. */
import { describe, expect, it } from 'vitest';
import { serviceConnection } from '../../src/cli/services-connection.js';

const regionOf = (env: NodeJS.ProcessEnv, flag?: string) => serviceConnection({ region: flag }, env).region;

describe('the region of the CLI commands', () => {
  it('takes the flag, then AWS_REGION, AWS_DEFAULT_REGION and PGSAGE_REGION, in that order', () => {
    const all = { AWS_REGION: 'eu-west-1', AWS_DEFAULT_REGION: 'eu-west-2', PGSAGE_REGION: 'eu-west-3' };
    expect(regionOf(all, 'ap-south-1')).toBe('ap-south-1');
    expect(regionOf(all)).toBe('eu-west-1');
    expect(regionOf({ AWS_DEFAULT_REGION: 'eu-west-2', PGSAGE_REGION: 'eu-west-3' })).toBe('eu-west-2');
    expect(regionOf({ PGSAGE_REGION: 'eu-west-3' })).toBe('eu-west-3');
    expect(regionOf({})).toBe('us-east-1');
  });

  it('skips an empty variable and hands the region to the SDK clients', () => {
    const connection = serviceConnection({}, { AWS_REGION: '', AWS_DEFAULT_REGION: 'eu-north-1' });
    expect(connection.region).toBe('eu-north-1');
    expect(connection.sdkConfig.region).toBe('eu-north-1');
  });
});
