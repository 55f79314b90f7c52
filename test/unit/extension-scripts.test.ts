import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { upgradeScript } from '../../src/extension/upgrade-script.js';
import { packagePath } from '../../src/util/paths.js';

const script = (name: string) => readFileSync(packagePath('src', 'extension', 'sql', 'extension', name), 'utf8');

describe('aws_ml extension scripts', () => {
  it('ship the upgrade from 1.0 that the 1.1 install script makes (npm run extension:upgrade)', () => {
    expect(script('aws_ml--1.0--1.1.sql')).toBe(upgradeScript(script('aws_ml--1.1.sql')));
  });

  it('install the version the control file names', () => {
    expect(script('aws_ml.control')).toMatch(/^default_version = '1\.1'$/m);
  });
});
