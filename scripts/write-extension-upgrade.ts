// Writes the aws_ml upgrade scripts from the install scripts they lead to (see src/extension/upgrade-script.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { UPGRADES, upgradeScript } from '../src/extension/upgrade-script.js';
import { packagePath } from '../src/util/paths.js';

const directory = packagePath('src', 'extension', 'sql', 'extension');
for (const { from, to } of UPGRADES) {
  const install = readFileSync(`${directory}/aws_ml--${to}.sql`, 'utf8');
  writeFileSync(`${directory}/aws_ml--${from}--${to}.sql`, upgradeScript(install, from, to));
  console.log(`wrote aws_ml--${from}--${to}.sql`);
}
