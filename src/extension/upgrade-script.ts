/** The shipped upgrade scripts: each made from the install script of the version it updates to. */
export const UPGRADES = [
  { from: '1.0', to: '1.1' },
  { from: '1.1', to: '1.2' },
  { from: '1.2', to: '1.3' },
  { from: '1.3', to: '1.4' },
] as const;

/**
 * An aws_ml upgrade script, made from the install script of the version it
 * updates to: every function and the statistics view as it defines them,
 * with CREATE OR REPLACE (views and wrapper functions over them stay), its
 * DDL event trigger made again, and its privileges on what the update made
 * (an administrator's grants and revokes on the rest stay). 1.0 changed
 * between pgsage builds before 1.1 was cut, so the update from 1.0 must apply
 * to any of them: it drops what earlier builds had and 1.1 does without, and
 * makes what some lacked. `npm run extension:upgrade` writes them; a unit
 * test checks the shipped files are what this makes.
 */
export function upgradeScript(installScript: string, from: string, to: string): string {
  const start = installScript.indexOf('CREATE FUNCTION aws_ml.bridge_conninfo()');
  if (start < 0) throw new Error('the install script no longer starts its functions with bridge_conninfo');
  const objects: string[] = [];
  const privileges: string[] = [];
  let comments: string[] = [];
  for (const line of installScript.slice(start).split('\n')) {
    if (line.startsWith('--')) {
      comments.push(line);
      continue;
    }
    // (A privilege moves to the end, and the comment about it goes.)
    if (/^(GRANT|REVOKE) /.test(line)) privileges.push(line);
    else objects.push(...comments, line);
    comments = [];
  }
  const made = objects
    .join('\n')
    .replaceAll('CREATE FUNCTION ', 'CREATE OR REPLACE FUNCTION ')
    .replace('CREATE VIEW aws_ml.batch_statistics', 'CREATE OR REPLACE VIEW aws_ml.batch_statistics')
    .replace(
      'CREATE EVENT TRIGGER aws_ml_ddl_watch',
      'DROP EVENT TRIGGER IF EXISTS aws_ml_ddl_watch;\nCREATE EVENT TRIGGER aws_ml_ddl_watch',
    )
    .replace(/\n{3,}/g, '\n\n');
  const fromOldBuilds =
    from === '1.0'
      ? `-- Functions of earlier 1.0 builds that 1.1 does without.
DROP FUNCTION IF EXISTS aws_ml.check_batch_size(int);
DROP FUNCTION IF EXISTS aws_ml.begin_batch();

-- Where the bridge listens, for servers pgsage cannot place a file in (upstream mode).
CREATE TABLE IF NOT EXISTS aws_ml.bridge_settings (conninfo text NOT NULL);
REVOKE ALL ON aws_ml.bridge_settings FROM PUBLIC;

`
      : '';
  const schemaOwners =
    to === '1.4'
      ? `-- The service schemas belong to the extension's owner, no longer to aws_ml, whose members could add
-- functions there that other roles' calls would resolve to. (Functions a member added stay: see docs/operations.md.)
DO $owners$
DECLARE
  owner text := (SELECT r.rolname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_roles r ON r.oid = e.extowner
                  WHERE e.extname = 'aws_ml');
BEGIN
  EXECUTE pg_catalog.format('ALTER SCHEMA aws_comprehend OWNER TO %I', owner);
  EXECUTE pg_catalog.format('ALTER SCHEMA aws_sagemaker OWNER TO %I', owner);
END
$owners$;

`
      : '';
  return `-- aws_ml ${from} -> ${to} (pgsage), for ALTER EXTENSION aws_ml UPDATE. Made from aws_ml--${to}.sql by
-- src/extension/upgrade-script.ts (npm run extension:upgrade): edit that script, not this one.

\\echo Use "ALTER EXTENSION aws_ml UPDATE" to load this file. \\quit

-- What the extension has before the update: ${to}'s privileges go only to what it makes.
SELECT pg_catalog.set_config('aws_ml.members_before', COALESCE((SELECT pg_catalog.string_agg(d.objid::text, ',')
  FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
 WHERE e.extname = 'aws_ml' AND d.deptype = 'e'), ''), true);

${fromOldBuilds}${schemaOwners}${made.trimEnd()}

${privilegesOnWhatWasMade(privileges, to)}
`;
}

/** Every function of these schemas: its privileges follow the ALL FUNCTIONS lines of the install script. */
const ALL_FUNCTIONS = [
  'REVOKE ALL ON ALL FUNCTIONS IN SCHEMA aws_ml, aws_comprehend, aws_sagemaker FROM PUBLIC;',
  'GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA aws_comprehend, aws_sagemaker TO aws_ml;',
];

/**
 * The install script's privileges, applied to the functions (and the view)
 * the update made: extension members now that were not before it. Those
 * there before keep the ones they had, the administrator's included
 * (whatever default privileges gave the new ones, these are the new version's).
 */
function privilegesOnWhatWasMade(lines: string[], to: string): string {
  for (const line of ALL_FUNCTIONS) {
    if (!lines.includes(line)) throw new Error(`the install script no longer says: ${line}`);
  }
  const statements = lines.flatMap((line) => {
    if (ALL_FUNCTIONS.includes(line) || / ON SCHEMA /.test(line)) return [];
    const fn = / ON FUNCTION (.+\)) (TO|FROM) /.exec(line);
    if (fn) return [`  IF to_regprocedure('${fn[1]}')::oid = ANY (made) THEN ${line} END IF;`];
    if (/ ON aws_ml\.batch_statistics /.test(line)) return [`  IF view_made THEN ${line} END IF;`];
    throw new Error(`the upgrade script does not know how to apply: ${line}`);
  });
  return `-- Privileges as ${to} gives them, on what this update made; an administrator's on the rest stay.
DO $upgrade$
DECLARE
  before oid[] := pg_catalog.string_to_array(pg_catalog.current_setting('aws_ml.members_before'), ',')::oid[];
  made oid[] := ARRAY(SELECT d.objid FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
                       WHERE e.extname = 'aws_ml' AND d.deptype = 'e' AND d.classid = 'pg_catalog.pg_proc'::regclass
                         AND d.objid <> ALL (before));
  view_made boolean := 'aws_ml.batch_statistics'::regclass::oid <> ALL (before);
  f oid;
BEGIN
  FOREACH f IN ARRAY made LOOP
    -- (As a fresh install leaves them, whatever default privileges gave them.)
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f::regprocedure);
    IF (SELECT p.pronamespace::regnamespace::text FROM pg_catalog.pg_proc p WHERE p.oid = f)
       IN ('aws_comprehend', 'aws_sagemaker') THEN
      EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO aws_ml', f::regprocedure);
    END IF;
  END LOOP;
${statements.join('\n')}
END
$upgrade$;`;
}
