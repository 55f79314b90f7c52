import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { UPGRADES, upgradeScript } from '../../src/extension/upgrade-script.js';
import { packagePath } from '../../src/util/paths.js';

const script = (name: string) => readFileSync(packagePath('src', 'extension', 'sql', 'extension', name), 'utf8');

describe('aws_ml extension scripts', () => {
  for (const { from, to } of UPGRADES) {
    it(`ship the upgrade from ${from} that the ${to} install script makes (npm run extension:upgrade)`, () => {
      expect(script(`aws_ml--${from}--${to}.sql`)).toBe(upgradeScript(script(`aws_ml--${to}.sql`), from, to));
    });
  }

  it('install the version the control file names, the last an upgrade leads to', () => {
    const latest = UPGRADES[UPGRADES.length - 1].to;
    expect(script('aws_ml.control')).toMatch(new RegExp(`^default_version = '${latest.replace('.', '\\.')}'$`, 'm'));
  });
});
