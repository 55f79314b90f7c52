/**
 * The aws_ml upgrade script from 1.0 to the current version, made from the
 * current install script: every function and the statistics view as it
 * defines them, with CREATE OR REPLACE (views and wrapper functions over them
 * stay), its DDL event trigger made again, and its grants. 1.0 changed between
 * pgsage builds before 1.1 was cut, so the script must apply to any of them:
 * it drops what earlier builds had and 1.1 does without, and makes what some
 * lacked. `npm run extension:upgrade` writes it; a unit test checks the
 * shipped file is what this makes.
 */
export function upgradeScript(installScript: string): string {
  const start = installScript.indexOf('CREATE FUNCTION aws_ml.bridge_conninfo()');
  if (start < 0) throw new Error('the install script no longer starts its functions with bridge_conninfo');
  const objects = installScript
    .slice(start)
    .replaceAll('CREATE FUNCTION ', 'CREATE OR REPLACE FUNCTION ')
    .replace('CREATE VIEW aws_ml.batch_statistics', 'CREATE OR REPLACE VIEW aws_ml.batch_statistics')
    .replace(
      'CREATE EVENT TRIGGER aws_ml_ddl_watch',
      'DROP EVENT TRIGGER IF EXISTS aws_ml_ddl_watch;\nCREATE EVENT TRIGGER aws_ml_ddl_watch',
    );
  return `-- aws_ml 1.0 -> 1.1 (pgsage), for ALTER EXTENSION aws_ml UPDATE. Made from aws_ml--1.1.sql by
-- src/extension/upgrade-script.ts (npm run extension:upgrade): edit that script, not this one.

\\echo Use "ALTER EXTENSION aws_ml UPDATE" to load this file. \\quit

-- Functions of earlier 1.0 builds that 1.1 does without.
DROP FUNCTION IF EXISTS aws_ml.check_batch_size(int);
DROP FUNCTION IF EXISTS aws_ml.begin_batch();

-- Where the bridge listens, for servers pgsage cannot place a file in (upstream mode).
CREATE TABLE IF NOT EXISTS aws_ml.bridge_settings (conninfo text NOT NULL);
REVOKE ALL ON aws_ml.bridge_settings FROM PUBLIC;

${objects}`;
}
