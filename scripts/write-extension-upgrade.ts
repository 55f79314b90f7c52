// Writes aws_ml--1.0--1.1.sql from aws_ml--1.1.sql (see src/extension/upgrade-script.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { upgradeScript } from '../src/extension/upgrade-script.js';
import { packagePath } from '../src/util/paths.js';

const directory = packagePath('src', 'extension', 'sql', 'extension');
const install = readFileSync(`${directory}/aws_ml--1.1.sql`, 'utf8');
writeFileSync(`${directory}/aws_ml--1.0--1.1.sql`, upgradeScript(install));
console.log('wrote aws_ml--1.0--1.1.sql');
