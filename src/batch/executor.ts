import { randomBytes } from 'node:crypto';
import { BackendError, type Hold } from '../gateway/backend.js';
import { IDLE_TIMEOUTS_SQL, type IdleTimeouts, idleTimeoutsOn } from '../gateway/idle-timeouts.js';
import { noticeResponse } from '../gateway/protocol.js';
import type { SessionControl } from '../gateway/session.js';
import type { MlServices } from '../ml/client.js';
import { csvFieldConverters, isNumberType } from '../ml/model-input.js';
import { UNTIMED_STATEMENT_BUDGET_MS } from '../ml/throttling.js';
import { type BoundValues, inlineParameters } from '../sql/inline-parameters.js';
import { quoteIdentifier, quoteLiteral } from '../sql/quote.js';
import { SqlError, SqlState } from '../util/errors.js';
import { parseBoolean } from '../util/pg-boolean.js';
import { type ArgumentRow, ArgumentRowReader } from './argument-rows.js';
import { BinaryArgumentReader, binaryReadable } from './binary-arguments.js';
import { isBlank, isBlankBytes } from './bytes.js';
import { reloptionOn } from './catalog.js';
import { copyField } from './copy-text.js';
import { DistinctFeatureRows } from './distinct-features.js';
import type { ViewRead } from './levels.js';
import type { MemoryGuard } from './memory-guard.js';
import {
  type BatchPlan,
  type CallGroup,
  type KeyRead,
  RESULTS,
  ROW_RESULTS,
  type SteppedLimit,
  WINDOW_SETTING,
} from './planner.js';
import { ANSWERED_NULL, ROW_RESULTS_COLUMNS, ROW_RESULTS_COPY, RowLog, rowResultsTableSql } from './row-results.js';
import {
  AUTO_ENDPOINT_BATCH,
  AUTO_SENTIMENT_BATCH,
  BatchFigures,
  BatchScorer,
  type KeyFormat,
  rowsPerEndpointRequest,
} from './scoring.js';
import type { BatchStatistics } from './statistics.js';

export interface BatchSettings {
  /**
   * Batch mode may run the statement's calls. Not when the session turned it
   * off, when the user may not make every call (batch mode must not call what
   * PostgreSQL would refuse), in a read-only transaction block that has no
   * results table yet (see tablesMade), on a hot standby (no temp tables), or
   * when client_encoding is not UTF8 (the gateway reads argument rows and
   * writes answers as UTF-8). The calls then take the per-row path.
   */
  batchable: boolean;
  /** The aws_ml extension (its batch functions) exists in this database. */
  extensionReady: boolean;
  /** The role running the statement: what `"$user"` on the search_path means (PostgreSQL reports no SET ROLE). */
  currentUser: string;
  /** For each KeyRead asked about (see readSettings), whether a unique index proves it reads one row at most. */
  oneRow: boolean[];
  concurrency: number;
  timeoutMs: number;
  progress: boolean;
  /** Of the candidate tables asked about, those whose rows may key stored results (see BatchPlan.rowIdentityTables). */
  rowTables: Set<string>;
  /** Of the views asked about (as written), those the statement may read in place (see PlanOptions.inlineViews). */
  inlineViews: Set<string>;
  /**
   * A view asked about has another definition than the catalog's, or a
   * wrapper the statement inlined was replaced or dropped (DDL the gateway
   * did not see): plan again.
   */
  staleDefinitions: boolean;
  /** A read-only transaction: statements that write are left to the per-row path (see BatchTarget.writes). */
  readOnly: boolean;
  /**
   * The gateway may make, empty and index its results tables here. Outside a
   * read-only transaction it does that in the client's transaction; in a
   * read-only session outside a block, in a read-write transaction of its own
   * (ownReadWrite), so that the client's statements stay read-only. A
   * read-only block may still write the temp tables that exist (PostgreSQL
   * allows that), but not make, empty or index them.
   */
  tablesMade: boolean;
  ownReadWrite: boolean;
  /** The per-input results table has its lookup index (a read-only block can use it, not build it). */
  lookupIndex: boolean;
  /**
   * The session's results tables exist (per input, per row), and their sizes.
   * Made inside a transaction block, they go when it rolls back, and a
   * read-only transaction cannot make them again.
   */
  resultsTables: {
    byInput: boolean;
    byRow: boolean;
    byInputBytes: number;
    byRowBytes: number;
    /** A relation of that name the session made itself: batch mode leaves it (and the statement) alone. */
    byInputForeign: boolean;
    byRowForeign: boolean;
  };
  /** The session's count of bytes loaded into each results table (see SessionTables), kept up to date. */
  loaded: SessionTables['loaded'];
  /** The tables PostgreSQL refused to empty in the current block (see SessionTables). */
  refusedInBlock: SessionTables['refusedInBlock'];
  /** The session's extra_float_digits: below 1, float8 prints rounded, and model inputs must be read as printed. */
  floatDigits: number;
  /** track_functions is on ('pl' or 'all'; the in-database functions are PL/pgSQL): batches are counted as calls. */
  trackFunctions: boolean;
  /** The idle timeouts the session has on, by name, as current_setting() prints them (see pauseIdleTimeouts). */
  idleTimeouts: IdleTimeouts;
  /**
   * The installed invoke_endpoint answers a NULL input itself, so it can be counted with a
   * no-op call (a database that created the extension before that change has the older body).
   */
  endpointNoOp: boolean;
  /** The extension has aws_ml.trust_batch (1.4): the functions read only answers the gateway vouched for. */
  vouches: boolean;
  /** The transaction is REPEATABLE READ or SERIALIZABLE: its statements read one snapshot. */
  oneSnapshot: boolean;
}

/**
 * SQL true when pg_catalog comes first on the session's search path (as it
 * does unless the path names it later): a view definition read in place
 * leaves built-in names unqualified, which another schema before pg_catalog
 * would capture.
 */
const CATALOG_FIRST = `(SELECT s FROM unnest(pg_catalog.current_schemas(true)) s
  WHERE s NOT LIKE 'pg\\_temp\\_%' LIMIT 1) = 'pg_catalog'`;

/** The columns of a relation, in order, as SQL (a text array). */
const columnsOf = (relation: string) => `ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
  WHERE a.attrelid = ${relation} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)`;

/** The per-input results table's columns (see aws_ml.begin_batch). */
const RESULTS_COLUMNS = "ARRAY['stmt', 'kind', 'target', 'key', 'out_text', 'out_real']";

const MS_PER_UNIT: Record<string, number> = { ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A time setting in milliseconds as SHOW prints it (`0`, `1500ms`, `5s`,
 * `2min`). (Read so rather than from pg_settings, which costs a millisecond.)
 */
function milliseconds(shown: string | null): number {
  const match = /^(\d+)\s*(ms|s|min|h|d)?$/.exec((shown ?? '').trim());
  return match ? Number(match[1]) * MS_PER_UNIT[match[2] ?? 'ms'] : 0;
}

/**
 * What a session knows of its results tables between statements: the OID of
 * each once found to be the gateway's own (made by begin_batch, with its
 * columns), so that later statements ask only whether it is still there; and
 * about how many bytes were loaded into it since it was made or emptied.
 * (Their sizes are not asked of PostgreSQL: pg_relation_size opens a temp
 * table, after which the transaction cannot PREPARE TRANSACTION.)
 */
export interface SessionTables {
  byInput?: string;
  byRow?: string;
  loaded: { byInput: number; byRow: number };
  /**
   * Tables PostgreSQL refused to empty in the current transaction block (a
   * cursor or portal reads them): not tried again before the block ends.
   */
  refusedInBlock: { byInput: boolean; byRow: boolean };
}

export const newSessionTables = (): SessionTables => ({
  loaded: { byInput: 0, byRow: 0 },
  refusedInBlock: { byInput: false, byRow: false },
});

/**
 * The per-input results table as `oid ok`, `oid -1` when it is not the one
 * begin_batch makes (made by the extension's owner, with its columns), NULL
 * when there is none. Once the OID is known to be that table's, only whether
 * it is still there (a rollback or DISCARD TEMP drops it).
 */
const inputTableStateSql = (known: string | undefined) =>
  known
    ? `to_regclass('${RESULTS}')::oid::text`
    : `(SELECT c.oid::text || CASE WHEN c.relowner = p.proowner AND c.relkind = 'r'
                 AND ${columnsOf('c.oid')} = ${RESULTS_COLUMNS} THEN ' ok' ELSE ' -1' END
         FROM pg_catalog.pg_class c, pg_catalog.pg_proc p
        WHERE c.oid = to_regclass('${RESULTS}') AND p.oid = to_regprocedure('aws_ml.begin_batch(integer, boolean)'))`;

/** The same for the per-row results table (any owner: the session makes it). */
const rowTableStateSql = (known: string | undefined) =>
  known
    ? `to_regclass('${ROW_RESULTS}')::oid::text`
    : `(SELECT c.oid::text || CASE WHEN c.relkind = 'r' AND ${columnsOf('c.oid')} = ${ROW_RESULTS_COLUMNS}
                 THEN ' ok' ELSE ' -1' END
         FROM pg_catalog.pg_class c WHERE c.oid = to_regclass('${ROW_RESULTS}'))`;

/**
 * A results table as readSettings found it: 'ok' (the gateway's), '-1' (a
 * relation of the session's own under that name) or null (none); `tables` is
 * updated. Undefined when a table known before is gone or replaced: the
 * question must be asked whole.
 */
function resultsTableState(
  found: string | null,
  tables: SessionTables,
  which: 'byInput' | 'byRow',
): 'ok' | '-1' | null | undefined {
  const known = tables[which];
  if (known !== undefined) {
    if (found === known) return 'ok';
    // (Gone: one made from now on starts empty.)
    tables[which] = undefined;
    tables.loaded[which] = 0;
    return undefined;
  }
  if (found === null) return null;
  const [oid, state] = found.split(' ');
  if (state !== 'ok') return '-1';
  tables[which] = oid;
  return 'ok';
}

/**
 * SQL of `to_regclass(name)` (name a text expression) that gives NULL rather than fail for a name in a schema the
 * user may not use: PostgreSQL reads such a relation for a view that names it (with the view owner's rights), and
 * the statement reading the view must not fail on the gateway's lookup.
 */
function regclassOf(name: string): string {
  return `(SELECT CASE WHEN pg_catalog.array_length(p.i, 1) < 2 OR COALESCE(pg_catalog.has_schema_privilege(n.oid, 'USAGE'), true)
      THEN pg_catalog.to_regclass(p.x) END
     FROM (SELECT ${name} AS x, pg_catalog.parse_ident(${name}) AS i) p
     LEFT JOIN pg_catalog.pg_namespace n ON n.nspname OPERATOR(pg_catalog.=) p.i[pg_catalog.array_length(p.i, 1) - 1])`;
}

/**
 * Reads the session's settings that steer batch mode, in one round trip, and
 * stops the in-database functions from reading the previous statement's results.
 * `session.tables` is the session's (see SessionTables); `endpointNoOp` the
 * catalog's (MlCatalog.endpointNoOp).
 */
export async function readSettings(
  control: SessionControl,
  session: { tables: SessionTables; endpointNoOp: boolean },
  tables: { schema?: string; name: string }[],
  privilegeChecks: string[] = [],
  rowCandidates: string[] = [],
  viewCandidates: ViewRead[] = [],
  wrappers: BatchPlan['wrappers'] = [],
  keyReads: (KeyRead | undefined)[] = [],
): Promise<BatchSettings> {
  const names = tables.map((t) =>
    quoteLiteral(t.schema ? `${quoteIdentifier(t.schema)}.${quoteIdentifier(t.name)}` : quoteIdentifier(t.name)),
  );
  const parallelWorkers = names.length
    ? `(SELECT max(substring(o from 'parallel_workers=(\\d+)')::int) FROM pg_catalog.pg_class c, unnest(c.reloptions) o
         WHERE c.oid = ANY (ARRAY[${names.map((n) => regclassOf(n)).join(', ')}]::oid[]))`
    : 'NULL';
  // Plain tables without inheritance children (their ctid names one row) that the user may read whole (SELECT
  // granted on some columns only does not cover ctid and xmin), and a session that may create its temp table
  // of per-row results.
  const rowTables = rowCandidates.length
    ? `(SELECT COALESCE(json_agg(n), '[]') FROM unnest(ARRAY[${rowCandidates.map(quoteLiteral).join(', ')}]::text[]) n
         JOIN pg_catalog.pg_class c ON c.oid = ${regclassOf('n')}
        WHERE c.relkind IN ('r', 'm') AND NOT c.relhassubclass AND has_table_privilege(c.oid, 'SELECT')
          AND has_database_privilege(current_database(), 'TEMP'))::text`
    : "'[]'";
  // Views the statement reads. Those whose definition is no longer the catalog's, or whose name as written now
  // finds another relation (a statement prepared under another search_path, a view per tenant), make it stale (its
  // argument queries were made of the old one). One may be read in place if the name as written resolves to the view
  // in this session, the user may read it, it is no security barrier, and it reads its tables with the user's
  // rights (owned by the user, or security_invoker). Anything else keeps the view.
  const checkable = viewCandidates.some((v) => v.qualified);
  const views = viewCandidates.length
    ? `(SELECT json_build_object(
          'inline', COALESCE(json_agg(v.written) FILTER (WHERE v.inlinable AND d.same AND ${CATALOG_FIRST}
            AND ${regclassOf('v.written')} = c.oid AND has_table_privilege(c.oid, 'SELECT')
            AND NOT ${reloptionOn('security_barrier')}
            AND (c.relowner = current_user::regrole OR ${reloptionOn('security_invoker')})), '[]'),
          'stale', COALESCE(bool_or(NOT d.same OR ${regclassOf('v.written')} IS DISTINCT FROM v.oid), false))
        FROM (VALUES ${viewCandidates
          .map(
            (v) =>
              `(${quoteLiteral(v.written)}, ${quoteLiteral(v.oid)}::oid, ${quoteLiteral(v.definition)}, ${v.inlinable}, ${v.qualified})`,
          )
          .join(', ')}) v(written, oid, definition, inlinable, qualified)
        LEFT JOIN pg_catalog.pg_class c ON c.oid = v.oid
        CROSS JOIN LATERAL (SELECT ${
          checkable
            ? 'NOT v.qualified OR CASE WHEN c.oid IS NULL THEN false ELSE aws_ml.view_definition(v.oid) = v.definition END'
            : 'true'
        } AS same) d)::text`
    : "'{}'";
  // The views' locks are taken first, in a statement of their own: one another session is changing (CREATE OR
  // REPLACE VIEW, DROP VIEW in a block) is waited for there, as the client's statement would wait, and the
  // settings are then read with a snapshot taken after (each statement of a Query gets its own), which sees the
  // definition committed meanwhile, not the one before. (pg_relation_size takes the lock, and gives NULL, not an
  // error, for a view dropped meanwhile; it is never negative, so the statement returns no row.)
  const viewLocks = viewCandidates.length
    ? `SELECT FROM unnest(ARRAY[${viewCandidates.map((v) => `${quoteLiteral(v.oid)}::oid`).join(', ')}]) v(oid)
        WHERE pg_catalog.pg_relation_size(v.oid) < 0;`
    : '';
  const { rows } = await control.backend.query(`${viewLocks}SELECT
      COALESCE(current_setting('aws_ml.enable_function_migration', true), 'on'),
      current_setting('max_parallel_workers_per_gather'),
      current_setting('statement_timeout'),
      -- (Progress lines are NOTICEs: a client that asked for warnings and errors only gets none, as from PostgreSQL.)
      CASE WHEN current_setting('client_min_messages') IN ('warning', 'error') THEN 'off'
           ELSE COALESCE(current_setting('aws_ml.progress', true), 'on') END,
      COALESCE(current_setting('aws_ml.max_concurrent_batches', true), ''),
      to_regprocedure('aws_ml.begin_batch(integer, boolean)') IS NOT NULL,
      pg_catalog.pg_is_in_recovery(),
      EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtenabled <> 'D' AND evtname <> 'aws_ml_ddl_watch'),
      to_regclass('pg_temp.aws_ml_results_key') IS NOT NULL,
      ${parallelWorkers},
      ${privilegeChecks.length ? [...new Set(privilegeChecks)].join(' AND ') : 'true'},
      ${rowTables},
      current_setting('transaction_read_only'),
      -- (Made by begin_batch, so owned by the extension's owner, with its columns: a relation the user
      -- made under that name is not it. -1: one the session made itself, which an aws_ml 1.0 begin_batch
      -- would drop: not called then. The per-row one: a table of that name the session made with other
      -- columns, which batch mode leaves alone.)
      ${inputTableStateSql(session.tables.byInput)},
      ${rowTableStateSql(session.tables.byRow)},
      current_setting('extra_float_digits'),
      current_setting('client_encoding'),
      current_setting('standard_conforming_strings'),
      current_setting('track_functions'),
      ${IDLE_TIMEOUTS_SQL},
      ${views},
      -- A wrapper inlined as the catalog had it, replaced or dropped since (on another connection), or no longer the
      -- only function of its name where it was (another that search_path or argument types may pick instead).
      ${
        wrappers.length
          ? `COALESCE((SELECT bool_or(p.oid IS NULL OR p.xmin::text <> w.version OR (w.was_unique AND EXISTS (
                 SELECT FROM pg_catalog.pg_proc q WHERE q.proname = w.name AND q.oid <> w.oid))
                 -- (Named without its schema: the search_path must still find it first, and no namesake of
                 -- other argument types, VARIADIC or argument names may compete with it.)
                 OR (w.by_path AND (pg_catalog.to_regprocedure(pg_catalog.format('%I(%s)', p.proname,
                       pg_catalog.oidvectortypes(p.proargtypes))) IS DISTINCT FROM w.oid OR EXISTS (
                   SELECT FROM pg_catalog.pg_proc q WHERE q.proname = w.name AND (q.proargtypes <> p.proargtypes
                     OR q.provariadic <> p.provariadic OR q.proargnames IS DISTINCT FROM p.proargnames)))))
               FROM (VALUES ${wrappers
                 .map(
                   (w) =>
                     `(${quoteLiteral(w.oid)}::oid, ${quoteLiteral(w.version)}, ${quoteLiteral(w.name)}, ${w.unique}, ${w.byPath})`,
                 )
                 .join(', ')}) w(oid, version, name, was_unique, by_path)
               LEFT JOIN pg_catalog.pg_proc p ON p.oid = w.oid), false)`
          : 'false'
      },
      ${keyReads.length ? `ARRAY[${keyReads.map(uniqueKeySql).join(', ')}]::text` : "'{}'"},
      to_regprocedure('aws_ml.trust_batch(integer, text)') IS NOT NULL,
      current_user::text,
      current_setting('transaction_isolation'),
      -- Results of earlier statements stop being read from here on (until begin_batch): by the functions, and by
      -- a statement prepared in batch form that runs without scoring (one that reads one row by a unique key),
      -- which would read a cursor's, numbered for the rest of its block.
      set_config('aws_ml.batch_results', '', false), set_config('aws_ml.batch_statement', '0', false)`);
  const [
    enabled,
    workersPerGather,
    timeout,
    progress,
    maxConcurrent,
    ready,
    inRecovery,
    eventTriggers,
    indexExists,
    tableWorkers,
    allowed,
    plainTables,
    readOnly,
    inputTable,
    rowTable,
    floatDigits,
    clientEncoding,
    conformingStrings,
    trackFunctions,
    idleInTransaction,
    idleSession,
    viewJson,
    staleWrappers,
    uniqueKeys,
    vouches,
    currentUser,
    isolation,
  ] = rows[0];
  const byInput = resultsTableState(inputTable, session.tables, 'byInput');
  const byRow = resultsTableState(rowTable, session.tables, 'byRow');
  if (byInput === undefined || byRow === undefined) {
    // (The set_config above ran: asking again changes nothing else.)
    return readSettings(control, session, tables, privilegeChecks, rowCandidates, viewCandidates, wrappers, keyReads);
  }
  const viewState = JSON.parse(viewJson ?? '{}') as { inline?: string[]; stale?: boolean };
  const warn = (message: string) =>
    control.toClient(noticeResponse({ severity: 'WARNING', code: SqlState.invalidParameterValue, message }));
  const off = (value: string | null, name: string) => {
    // ('' is a placeholder setting RESET, or a SET LOCAL ended, where no server value exists: unset.)
    const parsed = parseBoolean(value || 'on');
    // Set past the gateway's check of SET (set_config, ALTER ROLE … SET, a startup option): said, not obeyed.
    if (parsed === undefined) warn(`parameter "${name}" requires a Boolean value: "${value}" is taken as on`);
    return parsed === false;
  };
  const given = Number(maxConcurrent);
  const concurrencyGiven = Number.isInteger(given) && given > 0;
  // (A session's requests in flight are bounded: one session's setting must not flood the services others use.)
  const explicit = Math.min(given, MOST_CONCURRENT_BATCHES);
  if (maxConcurrent && !concurrencyGiven) {
    warn(`parameter "aws_ml.max_concurrent_batches" requires a positive integer: "${maxConcurrent}" is ignored`);
  } else if (concurrencyGiven && given > MOST_CONCURRENT_BATCHES) {
    warn(
      `parameter "aws_ml.max_concurrent_batches" is at most ${MOST_CONCURRENT_BATCHES}: "${maxConcurrent}" is taken as ${MOST_CONCURRENT_BATCHES}`,
    );
  }
  const workers = Math.max(Number(workersPerGather) || 0, Number(tableWorkers) || 0);
  const writable = readOnly !== 'on';
  // (Not where an event trigger of the database would run, and may write, in that read-write transaction.)
  const ownReadWrite = !writable && control.backend.status === 'I' && inRecovery !== 't' && eventTriggers !== 't';
  const tablesMade = writable || ownReadWrite;
  const resultsTables = {
    byInput: byInput === 'ok',
    byRow: byRow === 'ok',
    byInputBytes: byInput === 'ok' ? session.tables.loaded.byInput : 0,
    byRowBytes: byRow === 'ok' ? session.tables.loaded.byRow : 0,
    byInputForeign: byInput === '-1',
    byRowForeign: byRow === '-1',
  };
  return {
    // (Text the gateway parses and writes back assumes UTF8 and standard_conforming_strings, as libpg_query does.)
    batchable:
      !off(enabled, 'apg_enable_function_migration') &&
      allowed === 't' &&
      (tablesMade || resultsTables.byInput) &&
      clientEncoding === 'UTF8' &&
      conformingStrings === 'on',
    extensionReady: ready === 't',
    concurrency: concurrencyGiven ? explicit : Math.min(Math.max(2, workers + 1), MOST_CONCURRENT_BATCHES),
    timeoutMs: milliseconds(timeout),
    progress: !off(progress, 'aws_ml.progress'),
    // (A read-only block without the per-row results table keys all answers by input.)
    rowTables: new Set(
      (tablesMade || resultsTables.byRow) && !resultsTables.byRowForeign
        ? (JSON.parse(plainTables ?? '[]') as string[])
        : [],
    ),
    inlineViews: new Set(viewState.inline ?? []),
    staleDefinitions: viewState.stale === true || staleWrappers === 't',
    readOnly: !writable,
    tablesMade,
    ownReadWrite,
    lookupIndex: indexExists === 't',
    resultsTables,
    loaded: session.tables.loaded,
    refusedInBlock: session.tables.refusedInBlock,
    floatDigits: Number(floatDigits),
    trackFunctions: trackFunctions !== 'none',
    idleTimeouts: idleTimeoutsOn(idleInTransaction, idleSession),
    endpointNoOp: session.endpointNoOp,
    vouches: vouches === 't',
    currentUser: currentUser ?? '',
    oneSnapshot: isolation === 'repeatable read' || isolation === 'serializable',
    oneRow: (uniqueKeys ?? '{}')
      .slice(1, -1)
      .split(',')
      .map((value) => value === 't'),
  };
}

/**
 * SQL true when a unique index of the table (a plain one, without
 * inheritance children) has only key columns among `columns`: a statement
 * that reads it by their equality reads one row at the most.
 */
function uniqueKeySql(read: KeyRead | undefined): string {
  if (!read) return 'false';
  return `EXISTS (SELECT FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
      WHERE c.oid = ${regclassOf(quoteLiteral(read.table))} AND c.relkind = 'r' AND NOT c.relhassubclass
        AND i.indisunique AND i.indimmediate AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
        AND NOT EXISTS (SELECT FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
         WHERE k.n <= i.indnkeyatts
           AND a.attname <> ALL (ARRAY[${read.columns.map(quoteLiteral).join(', ')}]::text[])))`;
}

/**
 * Client parameters of one execution (extended protocol). Text values are
 * written into the argument queries as literals (see inlineParameters), so
 * they run as COPY like a simple query's; binary ones are passed on verbatim.
 */
export interface BindParameters extends BoundValues {
  types: number[];
}

/** A searched LIMIT (see SteppedLimit) for one execution, and what its search found. */
export interface LimitSearch {
  limit: SteppedLimit;
  /** The client's parameters, when the check must bind them. */
  params?: BindParameters;
  /** Set by the search: the statement runs restricted to the rows answered (WINDOW_SETTING its number). */
  restricted?: boolean;
}

export interface ArgumentWork {
  group: CallGroup;
  params?: BindParameters;
}

export interface BatchRunOptions {
  control: SessionControl;
  services: MlServices;
  memory?: MemoryGuard;
  /** Where statements, batches and retries are counted for monitoring. */
  statistics?: BatchStatistics;
  settings: BatchSettings;
  statementNumber: number;
  /** Inside a client transaction: argument queries run under savepoints so a failing one cannot abort it. */
  inTransaction: boolean;
  /** The caller already numbered the statement and made its results tables (beginBatch). */
  begun?: boolean;
  /** The statement's LIMIT is searched window by window (see SteppedLimit). */
  search?: LimitSearch;
  /**
   * The call of aws_ml.trust_batch that vouches for the answers just loaded for this statement in the
   * transaction with this ID: absent when the gateway has no bridge secret to prove itself with.
   */
  vouch?: (statementNumber: number, xid: string) => string;
}

/**
 * Gives the statement its number in the session's results table (made on first
 * use), emptying a table first once it holds EMPTY_FROM_BYTES: only their own
 * statements read earlier statements' rows. Inside a block a cursor or portal
 * may still be reading one: PostgreSQL then refuses its TRUNCATE (the table is
 * in use), under a savepoint of its own, and the table stays as it is until
 * the block ends.
 */
export async function beginBatch(
  control: SessionControl,
  statementNumber: number,
  inTransaction: boolean,
  rowResults: boolean,
  settings: Pick<BatchSettings, 'ownReadWrite' | 'resultsTables' | 'loaded' | 'refusedInBlock' | 'tablesMade'>,
) {
  const { byInput, byRow, byInputBytes, byRowBytes } = settings.resultsTables;
  // Emptying a table (and dropping the lookup index with it) is DDL that costs milliseconds: a small
  // table keeps earlier statements' rows, which only their own statement numbers read.
  const full = { byInput: byInput && byInputBytes >= EMPTY_FROM_BYTES, byRow: byRow && byRowBytes >= EMPTY_FROM_BYTES };
  if (!inTransaction) {
    await numberStatement(control, statementNumber, rowResults, settings, full);
    return;
  }
  const refused = settings.refusedInBlock;
  const emptied = { byInput: false, byRow: false };
  if (settings.tablesMade) {
    if (full.byInput && !refused.byInput) {
      emptied.byInput = await emptyUnlessInUse(control, `SELECT aws_ml.begin_batch(${statementNumber}, true)`);
      refused.byInput = !emptied.byInput;
    }
    if (full.byRow && !refused.byRow) {
      emptied.byRow = await emptyUnlessInUse(control, rowResultsTableSql(true));
      refused.byRow = !emptied.byRow;
    }
  }
  if (emptied.byInput) settings.loaded.byInput = 0;
  if (emptied.byRow) settings.loaded.byRow = 0;
  await numberStatement(control, statementNumber, rowResults, settings, { byInput: false, byRow: false });
}

/** Runs SQL that empties a results table under a savepoint; false when PostgreSQL refused it. */
async function emptyUnlessInUse(control: SessionControl, sql: string): Promise<boolean> {
  try {
    await control.backend.query(`SAVEPOINT aws_ml_empty; ${sql}; RELEASE SAVEPOINT aws_ml_empty`);
    return true;
  } catch (error) {
    if (!refusedByPostgres(error)) {
      throw error;
    }
    await control.backend.query('ROLLBACK TO SAVEPOINT aws_ml_empty; RELEASE SAVEPOINT aws_ml_empty');
    return false;
  }
}

/** begin_batch, and the per-row table made or emptied where asked (a full one even if this statement stores nothing in it). */
async function numberStatement(
  control: SessionControl,
  statementNumber: number,
  rowResults: boolean,
  settings: Pick<BatchSettings, 'ownReadWrite' | 'resultsTables' | 'loaded'>,
  empty: { byInput: boolean; byRow: boolean },
): Promise<void> {
  const { byInput, byRow } = settings.resultsTables;
  const begin = `SELECT aws_ml.begin_batch(${statementNumber}, ${empty.byInput})`;
  const rowTable = (rowResults && !byRow) || empty.byRow;
  if (byInput && !empty.byInput && !rowTable) {
    await control.backend.query(begin);
    return;
  }
  await tablesWork(control, settings, `${begin}${rowTable ? `; ${rowResultsTableSql(empty.byRow)}` : ''}`);
  if (empty.byInput) settings.loaded.byInput = 0;
  if (empty.byRow) settings.loaded.byRow = 0;
}

/**
 * PostgreSQL refused one of the gateway's statements (not a cancel, not a
 * lost connection): the gateway can step back from it and go on.
 */
function refusedByPostgres(error: unknown): error is BackendError {
  return error instanceof BackendError && error.code !== SqlState.queryCanceled && !error.code.startsWith('08');
}

/** A results table from this size up is emptied before a statement that stores answers. */
const EMPTY_FROM_BYTES = 1 << 20;

/**
 * The gateway's own work on its results tables (make, empty, index). In a
 * read-only session outside a block it runs in a read-write transaction of
 * its own; the client's statements and the argument queries stay read-only.
 */
async function tablesWork(control: SessionControl, settings: Pick<BatchSettings, 'ownReadWrite'>, sql: string) {
  if (!settings.ownReadWrite) {
    await control.backend.query(sql);
    return;
  }
  try {
    await control.backend.query(`BEGIN READ WRITE; ${sql}; COMMIT`);
  } catch (error) {
    await control.backend.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * Makes the session's results tables before a statement that may need them,
 * if they are missing. That is DDL, which a read-only block cannot run and an
 * event trigger may refuse, and a relation of the same name the session made
 * itself is the user's: batch mode then leaves the statement to the per-row
 * path (settings updated to say so), the session as it was (inside a block,
 * under a savepoint). Returns whether the per-input table is there.
 */
export async function ensureResultsTables(
  control: SessionControl,
  settings: BatchSettings,
  byRowWanted: boolean,
  refusals: TableRefusals,
): Promise<boolean> {
  const tables = settings.resultsTables;
  const makeRowTable = byRowWanted && !tables.byRow && !tables.byRowForeign;
  if (tables.byInput && !makeRowTable) return true;
  const refused = () => {
    // As if the tables could not be made: statements prepared now are prepared as written.
    settings.tablesMade = false;
    settings.batchable &&= tables.byInput;
    if (!tables.byRow) settings.rowTables.clear();
    return tables.byInput;
  };
  if (tables.byInputForeign) return refused();
  if (!settings.tablesMade) return tables.byInput;
  // Refused a moment ago (an event trigger that always refuses): not tried on every statement.
  if (Date.now() < refusals.until) return refused();
  const inBlock = control.backend.status === 'T';
  try {
    if (inBlock) await control.backend.query('SAVEPOINT aws_ml_tables');
    // (begin_batch points the in-database functions at the table: the statement may yet go per row, and a
    // function that looks at a temp table keeps its transaction from PREPARE TRANSACTION.)
    await tablesWork(
      control,
      settings,
      `SELECT aws_ml.begin_batch(0, false)${makeRowTable ? `; ${rowResultsTableSql(false)}` : ''}; ${CLEAR_RESULTS}`,
    );
    if (inBlock) await control.backend.query('RELEASE SAVEPOINT aws_ml_tables');
    tables.byInput = true;
    tables.byRow ||= makeRowTable;
    return true;
  } catch (error) {
    if (!refusedByPostgres(error)) {
      throw error;
    }
    if (inBlock) await control.backend.query('ROLLBACK TO SAVEPOINT aws_ml_tables; RELEASE SAVEPOINT aws_ml_tables');
    control.logger.warn(
      { err: error.message },
      'batch mode could not make its results tables; statements answer per row, trying again in 30 s',
    );
    refusals.until = Date.now() + TABLES_RETRY_MS;
    return refused();
  }
}

/** After it, the in-database functions read no stored answers (and do not look at the results table). */
export const CLEAR_RESULTS = "SELECT set_config('aws_ml.batch_results', '', false)";

/** A session's last refusal to make its results tables: none tried again before `until`. */
export interface TableRefusals {
  until: number;
}

const TABLES_RETRY_MS = 30_000;

/** Whether the statement reads some answers through per-row lookups or index probes, not joins. */
const readsThroughLookups = (groups: CallGroup[]) => groups.some((g) => !g.joined || g.probed);

/**
 * Whether some answers are read through per-row lookups (by the statement,
 * or by a later round's argument query), which need the results table's index.
 */
export function needsLookupIndex(groups: CallGroup[]): boolean {
  return readsThroughLookups(groups) || groups.some((g) => g.dependsOn.length > 0);
}

function rounds(work: ArgumentWork[]): ArgumentWork[][] {
  const depth = new Map<CallGroup, number>();
  const depthOf = (group: CallGroup, seen: Set<CallGroup>): number => {
    if (depth.has(group)) return depth.get(group)!;
    if (seen.has(group)) return 0;
    seen.add(group);
    const groupsById = new Map(work.map((w) => [w.group.id, w.group]));
    const d = Math.max(0, ...group.dependsOn.map((id) => 1 + depthOf(groupsById.get(id)!, seen)));
    depth.set(group, d);
    return d;
  };
  const out: ArgumentWork[][] = [];
  for (const item of work) {
    const d = depthOf(item.group, new Set());
    out[d] ??= [];
    out[d].push(item);
  }
  return out.filter(Boolean);
}

const ROWS_PER_COPY_CHUNK = 2000;

/**
 * The savepoint of a load in a block (see loadResults). A failed load leaves it in the failed block: named so
 * that no savepoint of the client's is shadowed by it (a ROLLBACK TO one would stop at the gateway's).
 */
const LOAD_SAVEPOINT = `aws_ml_load_${randomBytes(6).toString('hex')}`;

/** Loads from this many rows up get statistics (a sample of 3,000 rows of the columns the statement filters on). */
const ANALYZE_FROM_ROWS = 1000;

/**
 * Gives PostgreSQL statistics of the answers just loaded. Without them it
 * estimates the statement's rows of a results table as one (its conditions on
 * statement and group numbers look selective), and may pick a nested loop
 * that compares every row with every answer: minutes where a hash join takes
 * a second. The per-row table is the session user's (ANALYZEd when the
 * current role owns it); the per-input one the extension owner's.
 */
async function analyzeResults(control: SessionControl, byInput: boolean, byRow: boolean): Promise<void> {
  if (!byInput && !byRow) return;
  await control.backend.query(`DO $aws_ml$BEGIN
    IF ${byInput} AND to_regprocedure('aws_ml.analyze_batch()') IS NOT NULL THEN
      PERFORM aws_ml.analyze_batch();
    END IF;
    IF ${byRow} AND (SELECT c.relowner = current_user::regrole FROM pg_catalog.pg_class c
                      WHERE c.oid = to_regclass('${ROW_RESULTS}')) THEN
      ANALYZE ${ROW_RESULTS} (stmt, grp, row_file);
    END IF;
  END$aws_ml$`);
}

/** Where a statement's batch work spent its time (milliseconds), for benchmarks and logs. */
export interface BatchPhases {
  /** Running the argument queries (batches are already being scored meanwhile). */
  argumentsMs: number;
  /** After the last argument row, until the last batch was answered. */
  scoringTailMs: number;
  /** After the last answer, until the results were loaded. */
  loadTailMs: number;
  /** Argument rows whose model inputs were read and sent as numbers (binary COPY). */
  numericRows: number;
}

/**
 * Runs the argument queries of a statement's call groups on the client's own
 * session, scores their distinct inputs in batches, and loads the answers into
 * the session's results table, round by round (a round may read the previous
 * rounds' results). Returns the figures of each group.
 */
export async function computeBatchResults(
  work: ArgumentWork[],
  options: BatchRunOptions,
  phases?: BatchPhases,
): Promise<Map<CallGroup, BatchFigures>> {
  const { control, settings } = options;
  const { statistics } = options;
  const figures = new Map<CallGroup, BatchFigures>(
    work.map((w) => [w.group, new BatchFigures(statistics?.tally(w.group.label))]),
  );
  statistics?.recordStatement(work.map((w) => w.group.label));
  // (A cancel that came before this point would not fire the listener.)
  if (control.signal.aborted) throw control.signal.reason;
  const abort = new AbortController();
  const onCancel = () => abort.abort(control.signal.reason);
  control.signal.addEventListener('abort', onCancel, { once: true });
  const timer =
    settings.timeoutMs > 0
      ? setTimeout(
          () => abort.abort(new SqlError(SqlState.queryCanceled, 'canceling statement due to statement timeout')),
          settings.timeoutMs,
        )
      : undefined;
  const started = performance.now();
  const progress: ArgumentProgress = { rowsRead: 0, expectedRows: 0, estimate: settings.progress };
  /** Where the last progress NOTICE stood (the rate it gives is of the time since). */
  let lastNoticed: ProgressMark = { at: started, rowsRead: 0, scored: 0 };
  // Answers stored per input are listed as they come; those stored per row are read by slot.
  const keyRows = work.some((w) => !w.group.rowIdentity);
  const scorer = new BatchScorer({
    listCompleted: keyRows,
    services: options.services,
    concurrency: settings.concurrency,
    signal: abort.signal,
    deadline: Date.now() + (settings.timeoutMs > 0 ? settings.timeoutMs : UNTIMED_STATEMENT_BUDGET_MS),
    onProgress: (scored) => noteProgress(scored),
    onOneRowAtATime: ({ label, target, message, hint }) =>
      control.toClient(
        noticeResponse({
          severity: 'WARNING',
          code: SqlState.warning,
          message: `${label}: ${message}; the statement's calls to endpoint ${target} are made one row at a time`,
          hint,
        }),
      ),
  });
  const noteProgress = (scored: number) => {
    const now = performance.now();
    // (Less a little: the ticker's own timer may fire a few milliseconds early or late.)
    if (!settings.progress || now - lastNoticed.at < PROGRESS_EVERY_MS - 100) return;
    const since = lastNoticed;
    lastNoticed = { at: now, rowsRead: progress.rowsRead, scored };
    control.toClient(
      noticeResponse({
        severity: 'NOTICE',
        code: '00000',
        message: progressLine(progress, scored, since, now),
      }),
    );
  };
  // Also while no batch completes (a slow endpoint, retries after throttling).
  const ticker = settings.progress
    ? setInterval(() => noteProgress(scorer.scoredInputs), PROGRESS_EVERY_MS)
    : undefined;
  let unwatch: (() => void) | undefined;
  /** An argument query is running: PostgreSQL goes on sending its rows until it ends or is cancelled. */
  let readingArguments = false;
  /** The heap guard had PostgreSQL cancel the argument query: its 57014 is the guard's stop. */
  let guardCancelled = false;
  try {
    unwatch = options.memory?.watch({
      rowsRead: () => progress.rowsRead,
      stop: (reason) => {
        abort.abort(reason);
        // (Else the stopped statement would hold its session, and PostgreSQL a core, until the last row.)
        if (readingArguments) {
          guardCancelled = true;
          control.cancelBackend();
        }
      },
      stopping: () => abort.signal.aborted,
    });
    // A group scored for several Binds of its statement may read a row for each: its answer is stored once.
    const reads = new Map<CallGroup, number>();
    for (const { group } of work) if (group.rowIdentity) reads.set(group, (reads.get(group) ?? 0) + 1);
    const rowLogs = new Map([...reads].map(([group, count]) => [group, new RowLog(group, count > 1)]));
    if (!options.begun) {
      await beginBatch(control, options.statementNumber, options.inTransaction, rowLogs.size > 0, settings);
    }
    const ordered = rounds(work);
    const lastRound = ordered[ordered.length - 1];
    /** Runs one round's argument queries (over one window), then loads their answers; the most rows one read. */
    const runRound = async (round: ArgumentWork[], window?: ArgumentWindow) => {
      const started = performance.now();
      let read = 0;
      let failed = false;
      for (const item of round) {
        readingArguments = true;
        const before = progress.rowsRead;
        const streamed = await streamArguments(
          item,
          scorer,
          figures.get(item.group)!,
          options,
          rowLogs.get(item.group),
          progress,
          window,
        ).finally(() => {
          readingArguments = false;
        });
        read = Math.max(read, progress.rowsRead - before);
        failed ||= streamed.failed;
        if (phases) phases.numericRows += streamed.numericRows;
        // (Stopped while the rows came: nothing more to score or load.)
        if (abort.signal.aborted) throw abort.signal.reason;
      }
      scorer.flush();
      const argumentsDone = performance.now();
      let scoringDone = argumentsDone;
      const roundLogs = [...new Set(round.flatMap((w) => rowLogs.get(w.group) ?? []))];
      await loadResults(scorer, options, { keyRows, rows: roundLogs }, () => {
        scoringDone = performance.now();
      });
      // Per-row lookups (the next round's argument queries, calls not read through a join) need the index.
      if ((round !== lastRound || readsThroughLookups(work.map((w) => w.group))) && settings.tablesMade) {
        await tablesWork(control, settings, 'SELECT aws_ml.index_batch()');
      }
      if (phases) {
        phases.argumentsMs += argumentsDone - started;
        phases.scoringTailMs += scoringDone - argumentsDone;
        phases.loadTailMs += performance.now() - scoringDone;
      }
      if (abort.signal.aborted) throw abort.signal.reason;
      return { read, failed };
    };
    if (options.search) {
      await searchWindows(ordered, runRound, [...rowLogs.values()], options.search, options);
    } else {
      for (const round of ordered) await runRound(round);
    }
    const keyed = work.filter((w) => !w.group.rowIdentity).reduce((n, w) => n + figures.get(w.group)!.rows, 0);
    const byRow = [...rowLogs.values()].reduce((n, log) => n + log.size, 0);
    await analyzeResults(control, keyed >= ANALYZE_FROM_ROWS, byRow >= ANALYZE_FROM_ROWS);
    if (settings.trackFunctions) await countJoinedBatches(control, figures, settings.endpointNoOp);
    return figures;
  } catch (error) {
    const cancelledHere = guardCancelled && error instanceof BackendError && error.code === SqlState.queryCanceled;
    if (abort.signal.aborted && (!(error instanceof BackendError) || cancelledHere)) throw abort.signal.reason;
    throw error;
  } finally {
    unwatch?.();
    clearTimeout(timer);
    clearInterval(ticker);
    control.signal.removeEventListener('abort', onCancel);
    abort.abort(new SqlError(SqlState.queryCanceled, 'batch finished'));
  }
}

/** The most batches and requests a statement keeps in flight, whatever its settings ask for. */
const MOST_CONCURRENT_BATCHES = 64;

/** How often a statement that takes long sends a progress NOTICE. */
const PROGRESS_EVERY_MS = 2000;

/** How far a statement's argument queries have got, for progress NOTICEs. */
interface ArgumentProgress {
  rowsRead: number;
  /** The planner's estimate of the argument rows of the queries started so far (0: none known). */
  expectedRows: number;
  /** Ask the planner for the estimate (progress NOTICEs are on). */
  estimate: boolean;
}

/** Where a statement's progress stood at a time (performance.now()). */
interface ProgressMark {
  at: number;
  rowsRead: number;
  scored: number;
}

/**
 * `aws_ml: 600000 of about 1000000 rows read, 580000 inputs scored (45000 rows/s)`, the rate of
 * the time since the last line: rows read while they come, then inputs scored (`(680 inputs/s)`).
 */
function progressLine(progress: ArgumentProgress, scored: number, since: ProgressMark, now: number): string {
  const { rowsRead, expectedRows } = progress;
  const of = expectedRows > 0 ? ` of about ${Math.max(expectedRows, rowsRead)}` : '';
  const seconds = Math.max(now - since.at, 1) / 1000;
  const rate =
    rowsRead > since.rowsRead
      ? `${Math.round((rowsRead - since.rowsRead) / seconds)} rows/s`
      : `${Math.round((scored - since.scored) / seconds)} inputs/s`;
  return `aws_ml: ${rowsRead}${of} rows read, ${scored} inputs scored (${rate})`;
}

/** The planner's row estimate for a query (0 when it has none). */
async function estimatedRows(backend: BatchRunOptions['control']['backend'], sql: string): Promise<number> {
  const { rows } = await backend.query(`EXPLAIN (FORMAT JSON) ${sql}`);
  const plan = JSON.parse(rows[0]?.[0] ?? '[]') as { Plan?: { 'Plan Rows'?: number } }[];
  return Math.round(plan[0]?.Plan?.['Plan Rows'] ?? 0);
}

/** A call of each ML function that answers NULL at once, without a service call. */
const NO_OP_CALLS: Record<CallGroup['kind'], string> = {
  sentiment: "aws_comprehend.detect_sentiment(NULL::varchar, 'en')",
  endpoint: "aws_sagemaker.invoke_endpoint('', NULL, NULL::json)",
};

/**
 * Answers joined into the statement or read through an index probe never run
 * the in-database function, so pg_stat_user_functions would not see them:
 * with track_functions on, the function is called once per batch it stands
 * for, with a NULL input that returns at once. (Calls read per row count
 * themselves, one per row.)
 */
async function countJoinedBatches(
  control: SessionControl,
  figures: Map<CallGroup, BatchFigures>,
  endpointNoOp: boolean,
): Promise<void> {
  const batches = new Map<CallGroup['kind'], number>();
  for (const [group, figure] of figures) {
    // Answered through joins or index probes (aliases), not through the function's own lookup.
    if (group.aliases.length === 0 || (group.kind === 'endpoint' && !endpointNoOp)) continue;
    batches.set(group.kind, (batches.get(group.kind) ?? 0) + figure.sizes.length);
  }
  const counts = [...batches]
    .filter(([, n]) => n > 0)
    .map(([kind, n]) => `(SELECT count(${NO_OP_CALLS[kind]}) FROM pg_catalog.generate_series(1, ${n}))`);
  if (counts.length > 0) await control.backend.query(`SELECT ${counts.join(', ')}`);
}

/**
 * Streams one argument query into the scorer; returns how many rows were read
 * as numbers. A failing query leaves its calls to the per-row path.
 */
async function streamArguments(
  item: ArgumentWork,
  scorer: BatchScorer,
  figures: BatchFigures,
  options: BatchRunOptions,
  rows: RowLog | undefined,
  progress: ArgumentProgress,
  window?: ArgumentWindow,
): Promise<{ numericRows: number; failed: boolean }> {
  let numericRows = 0;
  let failed = false;
  const { group } = item;
  const backend = options.control.backend;
  const auto = automaticBatchSize(group);
  // An invalid batch size leaves the row to the per-row fallback, which raises the error where the call is made.
  const sizeOf = (batch: number | undefined): number | undefined => {
    const size = batch ?? group.batchSize ?? auto;
    return size < 1 ? undefined : size;
  };
  // A NULL (or, for sentiment, blank) input answers NULL itself; a NULL target or an invalid
  // batch size is the per-row fallback's to report where the call is made. Such a row gets no
  // stored result.
  const add = (row: ArgumentRow, format: KeyFormat) => {
    progress.rowsRead += 1;
    const key = row.key;
    let slot = -1;
    const blank = group.kind === 'sentiment' && key !== null && isBlank(key);
    if (key !== null && !blank && scorer.acceptsTarget(row.target)) {
      const size = sizeOf(row.batch);
      if (size !== undefined) slot = scorer.add(group.kind, row.target, key, size, figures, group.label, format);
    } else if (answeredNull(group, key === null || blank)) slot = ANSWERED_NULL;
    if (rows) rows.add(slot, row.file, row.block, row.offset, row.xmin);
  };
  if (options.inTransaction) await backend.query('SAVEPOINT aws_ml_arguments');
  try {
    const queries = argumentQueries(group, item.params);
    const params = queries.params;
    const separate = params ? undefined : await separateInputs(group, queries.separateSql, backend);
    const sql = `${separate ? queries.separateSql! : queries.argumentSql}${windowSql(window)}`;
    // (A query without FROM gives one row: no estimate worth a round trip. A window's rows are known.)
    if (progress.estimate && !params && !window && /\bfrom\b/i.test(sql))
      progress.expectedRows += await estimatedRows(backend, sql);
    const format: KeyFormat = separate ? 'csv' : 'json';
    // A one-column input whose answers are stored per row is told apart by its bytes, not by a string.
    const byBytes = rows !== undefined && !params && !separate;
    const reader = new ArgumentRowReader({
      inputs: separate?.converters,
      numericInputs: separate?.numeric,
      batchColumn: group.batchColumn,
      rowIdentity: Boolean(group.rowIdentity),
      keyBytes: byBytes,
    });
    const addByBytes = (row: ArgumentRow, payload: Buffer) => {
      progress.rowsRead += 1;
      let slot = -1;
      const blank = group.kind === 'sentiment' && row.key !== null && isBlankBytes(payload, row.keyStart, row.keyEnd);
      const size = row.key !== null && !blank ? sizeOf(row.batch) : undefined;
      if (answeredNull(group, row.key === null || blank)) slot = ANSWERED_NULL;
      else if (size !== undefined && scorer.acceptsTarget(row.target)) {
        const table = scorer.keyBytes(group.kind, row.target, format);
        slot = table.find(payload, row.keyStart, row.keyEnd);
        if (slot < 0) {
          slot = scorer.reserveSlot();
          table.remember(payload, row.keyStart, row.keyEnd, slot);
          const key = reader.decodeKey(payload)!;
          scorer.addNew(group.kind, row.target, key, slot, size, figures, group.label, format);
        }
      }
      rows!.add(slot, row.file, row.block, row.offset, row.xmin);
    };
    const binary =
      separate &&
      rows &&
      !group.batchColumn &&
      options.services.invokeEndpointRows &&
      binaryReadable(separate.target, separate.types, options.settings.floatDigits >= 1);
    if (binary) {
      numericRows = await streamFeatureRows(
        sql,
        separate.types,
        { scorer, figures, rows, sizeOf, progress },
        item,
        options,
      );
    } else if (params) {
      const { types, values, formats } = params;
      await backend.streamRows(
        sql,
        types,
        values,
        formats,
        unlessStopped(scorer, (row) => add(reader.fromValues(row), format)),
        argumentsHold(options.settings),
      );
    } else {
      await backend.copyOut(
        `COPY (${sql}) TO STDOUT`,
        unlessStopped(
          scorer,
          byBytes
            ? (payload) => addByBytes(reader.fromCopy(payload), payload)
            : (payload) => add(reader.fromCopy(payload), format),
        ),
        argumentsHold(options.settings),
      );
    }
    if (options.inTransaction) await backend.query('RELEASE SAVEPOINT aws_ml_arguments');
  } catch (error) {
    if (!refusedByPostgres(error)) {
      throw error;
    }
    // The gateway's own failure while reading the rows (a bad max_rows_per_batch, say).
    if (error.raw.length === 0) throw new SqlError(error.code, error.message, error.fields.D, error.fields.H);
    options.control.logger.debug(
      { err: error.message, sql: group.argumentSql },
      'argument query failed; calls stay per-row',
    );
    failed = true;
    if (options.inTransaction) {
      await backend.query('ROLLBACK TO SAVEPOINT aws_ml_arguments; RELEASE SAVEPOINT aws_ml_arguments');
    }
  }
  if (scorer.error) throw scorer.error;
  return { numericRows, failed };
}

/** max_rows_per_batch NULL: the most rows a request of the group's service takes. */
const automaticBatchSize = (group: CallGroup): number =>
  group.kind === 'sentiment' ? AUTO_SENTIMENT_BATCH : AUTO_ENDPOINT_BATCH;

/** invalid_row_count_in_limit_clause, invalid_row_count_in_result_offset_clause. */
const INVALID_LIMIT = new Set(['2201W', '2201X']);

const WINDOW_OFF = `SELECT pg_catalog.set_config('${WINDOW_SETTING}', '', false)`;

/** A searched LIMIT's first window at the most: a round of batches in flight, which one endpoint batch fills. */
const MOST_ROWS_FIRST_WINDOW = 10_000;

type RoundRunner = (round: ArgumentWork[], window?: ArgumentWindow) => Promise<{ read: number; failed: boolean }>;

/**
 * Searches a LIMIT after an ML condition (see SteppedLimit): scores the rows window by window, each sized from
 * what the windows so far gave the LIMIT (at most doubling the rows read), until the check says the answers give
 * it its rows, or the rows run out. A row left without a stored answer (a declined batch, a NULL endpoint name),
 * a failed argument query or a check PostgreSQL refuses ends the search, and the statement runs unrestricted, its
 * per-row fallback covering such rows as it does elsewhere (sorted, after the rest of the rows are scored).
 */
async function searchWindows(
  ordered: ArgumentWork[][],
  runRound: RoundRunner,
  logs: RowLog[],
  search: LimitSearch,
  options: BatchRunOptions,
): Promise<void> {
  const { backend } = options.control;
  const batch = Math.max(...ordered.flat().map(({ group }) => group.batchSize ?? automaticBatchSize(group)));
  // As many rows as the LIMIT takes, when it is written so (a LIMIT 1 that the first row answers costs one input,
  // as per row), at most a round of batches in flight.
  const round = Math.min(batch * options.settings.concurrency, MOST_ROWS_FIRST_WINDOW);
  const wanted = search.limit.firstRows ?? (await boundRows(search, options));
  // (A LIMIT 0 computes no row; a negative one fails before any: nothing to score.)
  if (wanted !== null && wanted <= 0) return;
  const first = Math.min(wanted ?? round, round);
  // (Whole batches from one batch up.)
  const sized = (rows: number) => (rows < batch ? rows : Math.ceil(rows / batch) * batch);
  const runWindow = async (window: ArgumentWindow) => {
    let read = 0;
    let failed = false;
    for (const round of ordered) {
      const outcome = await runRound(round, window);
      read = Math.max(read, outcome.read);
      failed ||= outcome.failed;
    }
    return { read, failed };
  };
  search.restricted = false;
  await backend.query(`SELECT pg_catalog.set_config('${WINDOW_SETTING}', '${options.statementNumber}', false)`);
  let offset = 0;
  let rows = first;
  // The search ends early. Sorted, the statement reads every row: the rest are scored, as without the search.
  // Unsorted, it reads them as the scan gives them, and its per-row fallback makes the calls it needs, raising
  // what the rows refused raise where it reaches them.
  const rest = () => (search.limit.ordered ? runWindow({ offset, rows: undefined }) : undefined);
  for (;;) {
    const { read, failed } = await runWindow({ offset, rows });
    offset += read;
    if (failed || logs.some((log) => log.unanswered > 0)) {
      if (read === rows) await rest();
      break;
    }
    if (read < rows) break;
    const found = await checkWindows(search, options);
    // (A negative LIMIT or OFFSET: the statement fails as PostgreSQL fails it, before any call.)
    if (found === 'invalid') break;
    if (!found) {
      await rest();
      break;
    }
    if (found.wanted !== null && found.rows >= found.wanted) {
      search.restricted = true;
      break;
    }
    // Rows at this rate for the rest (a quarter more), else as many again.
    const more =
      found.rows > 0 && found.wanted !== null
        ? Math.ceil(((offset * (found.wanted - found.rows)) / found.rows) * 1.25)
        : offset;
    rows = sized(Math.min(Math.max(more, first), 2 * offset));
  }
  if (!search.restricted) await backend.query(WINDOW_OFF);
}

/**
 * Runs one of a search's own queries with the statement's parameters, if it has any, under a savepoint in a
 * block: PostgreSQL's refusal (a negative LIMIT, say) is given back, and leaves the client's block as it was.
 */
async function searchQuery(
  sql: string,
  search: LimitSearch,
  options: BatchRunOptions,
): Promise<(string | null)[] | BackendError> {
  const { backend } = options.control;
  const { params } = search;
  if (options.inTransaction) await backend.query('SAVEPOINT aws_ml_arguments');
  try {
    const result = params
      ? await backend.queryParams(sql, params.values, params.types, params.formats)
      : await backend.query(sql);
    if (options.inTransaction) await backend.query('RELEASE SAVEPOINT aws_ml_arguments');
    return result.rows[0];
  } catch (error) {
    if (!refusedByPostgres(error)) throw error;
    if (options.inTransaction) {
      await backend.query('ROLLBACK TO SAVEPOINT aws_ml_arguments; RELEASE SAVEPOINT aws_ml_arguments');
    }
    return error;
  }
}

/** n + m of a LIMIT given as parameters (null for none; 0 where PostgreSQL refuses the values). */
async function boundRows(search: LimitSearch, options: BatchRunOptions): Promise<number | null> {
  if (!search.params) return null;
  const row = await searchQuery(search.limit.rowsSql, search, options);
  if (row instanceof BackendError) return 0;
  return row[0] === null ? null : Number(row[0]);
}

/** A searched LIMIT's check: the rows the statement gives over the rows answered so far, and its LIMIT. */
async function checkWindows(
  search: LimitSearch,
  options: BatchRunOptions,
): Promise<{ rows: number; wanted: number | null } | 'invalid' | undefined> {
  const row = await searchQuery(search.limit.enoughSql, search, options);
  if (row instanceof BackendError) {
    options.control.logger.debug({ err: row.message }, 'a searched LIMIT check failed; the search ends');
    return INVALID_LIMIT.has(row.code) ? 'invalid' : undefined;
  }
  const [found, wanted] = row;
  return { rows: Number(found), wanted: wanted === null ? null : Number(wanted) };
}

/** Rows of a searched LIMIT's argument query read at once (see SteppedLimit): all of them when `rows` is undefined. */
interface ArgumentWindow {
  offset: number;
  rows: number | undefined;
}

const windowSql = (window: ArgumentWindow | undefined): string =>
  window ? ` OFFSET ${window.offset}${window.rows === undefined ? '' : ` LIMIT ${window.rows}`}` : '';

/**
 * A row whose sentiment text is NULL or blank answers NULL without the service. A searched LIMIT's rows get that
 * stored (its restriction keeps only rows with stored answers); others are left to the per-row fallback.
 */
const answeredNull = (group: CallGroup, free: boolean): boolean =>
  free && Boolean(group.stepped) && group.kind === 'sentiment';

/**
 * A group's argument queries for one execution: with the client's parameters
 * written in when they all can be, else as planned, with the parameters to bind.
 */
function argumentQueries(
  group: CallGroup,
  params: BindParameters | undefined,
): { argumentSql: string; separateSql?: string; params?: BindParameters } {
  const planned = { argumentSql: group.argumentSql, separateSql: group.separateInputs?.sql, params };
  if (!params) return planned;
  const argumentSql = inlineParameters(group.argumentSql, params);
  const separateSql = group.separateInputs && inlineParameters(group.separateInputs.sql, params);
  if (argumentSql === undefined || (group.separateInputs && separateSql === undefined)) return planned;
  return { argumentSql, separateSql };
}

/**
 * Converters from the separate input columns to CSV fields, when the group
 * has such a query and PostgreSQL says its inputs' types allow it.
 */
async function separateInputs(
  group: CallGroup,
  sql: string | undefined,
  backend: BatchRunOptions['control']['backend'],
): Promise<
  { converters: ((value: string | null) => string)[]; numeric: boolean; target: number; types: number[] } | undefined
> {
  if (!group.separateInputs || sql === undefined) return undefined;
  const columns = await backend.columnTypes(sql);
  const types = columns.slice(1, 1 + group.separateInputs.count);
  const converters = csvFieldConverters(types);
  return converters && { converters, numeric: types.every(isNumberType), target: columns[0], types };
}

/**
 * The argument query of an endpoint group whose model inputs are all numbers,
 * read in binary: rows are told apart by their bits and sent to the endpoint
 * as numbers (MlServices.invokeEndpointRows), with no text per row.
 */
async function streamFeatureRows(
  sql: string,
  inputTypes: number[],
  into: {
    scorer: BatchScorer;
    figures: BatchFigures;
    rows: RowLog;
    /** The group's batch size (a per-row size from a column keeps the text path). */
    sizeOf: (batch: number | undefined) => number | undefined;
    progress: ArgumentProgress;
  },
  item: ArgumentWork,
  options: BatchRunOptions,
): Promise<number> {
  const { scorer, figures, rows, sizeOf, progress } = into;
  let count = 0;
  const { group } = item;
  const cols = inputTypes.length;
  const sets = new Map<string, DistinctFeatureRows>();
  let size: number | undefined; // checked at the first row, as the SQL function checks it
  let current: DistinctFeatureRows | undefined;
  let last: { target: string; set: DistinctFeatureRows } | undefined;
  // Inputs of a row that will not be scored (NULL target) are read into scratch space.
  const scratch = new Float64Array(cols);
  const reader = new BinaryArgumentReader(inputTypes, {
    place(target) {
      current = undefined;
      // (A batch is one request: no more rows than SageMaker's payload limit takes.)
      if (size === undefined) {
        const given = sizeOf(undefined);
        size = given === undefined ? undefined : Math.min(given, rowsPerEndpointRequest(cols));
      }
      if (size === undefined || !scorer.acceptsTarget(target)) return { values: scratch, start: 0 };
      if (!last || last.target !== target) {
        let set = sets.get(target);
        if (!set) {
          set = new DistinctFeatureRows(cols, size, {
            reserveSlot: () => scorer.reserveSlot(),
            addFeatureRows: (features, slots) => scorer.addFeatureRows(target, features, slots, figures, group.label),
          });
          sets.set(target, set);
        }
        last = { target, set };
      }
      current = last.set;
      const start = current.rowStart(); // may grow the array: read it after
      return { values: current.values, start };
    },
    row(row) {
      count += 1;
      progress.rowsRead += 1;
      rows.add(current ? current.commit() : -1, row.file, row.block, row.offset, row.xmin);
    },
  });
  try {
    await options.control.backend.copyOut(
      `COPY (${sql}) TO STDOUT (FORMAT binary)`,
      unlessStopped(scorer, (payload) => reader.feed(payload)),
      argumentsHold(options.settings),
    );
    if (scorer.stopped === undefined) reader.finish();
    return count;
  } finally {
    // Every reserved slot must get its answer, even when the query failed part way (rows wait for them in order);
    // once stopped, none will be written.
    if (scorer.stopped === undefined) for (const set of sets.values()) set.flush();
  }
}

/**
 * An argument row consumer that does nothing once the statement is stopped (a
 * cancel, statement_timeout, a failed batch): the rest of the rows are
 * drained unread, since PostgreSQL's error comes after the megabytes of rows
 * already in the sockets.
 */
function unlessStopped<T>(scorer: BatchScorer, consume: (item: T) => void): (item: T) => void {
  return (item) => {
    if (scorer.stopped === undefined) consume(item);
  };
}

/** How long the answers are written without a break (see emitInSlices). */
const WRITE_SLICE_MS = 20;

/**
 * Writes what `emit` has ready, in slices: a million rows take a second or
 * more to write, and in between the gateway's other sessions, and this
 * one's cancel, get their turn.
 */
async function emitInSlices(emit: () => boolean, scorer: BatchScorer): Promise<void> {
  let sliceStart = performance.now();
  while (emit()) {
    if (performance.now() - sliceStart < WRITE_SLICE_MS) continue;
    await new Promise(setImmediate);
    if (scorer.stopped) throw scorer.stopped;
    sliceStart = performance.now();
  }
}

/**
 * COPYs answers into the results tables while the remaining batches finish:
 * per distinct input for groups joined on their inputs (`keyRows`), per table
 * row for groups joined by tuple identity (loaded after, when both are needed).
 */
async function loadResults(
  scorer: BatchScorer,
  options: BatchRunOptions,
  load: { keyRows: boolean; rows: RowLog[] },
  onScored: () => void,
): Promise<void> {
  const n = options.statementNumber;
  const backend = options.control.backend;
  /**
   * Writes what is ready, waits for the next batch, until every answer is
   * written. While batches are out, a row no statement reads goes in now and
   * then: PostgreSQL looks at a pending cancel (`pg_cancel_backend` from
   * another session) only as COPY rows come.
   */
  const drain = async (
    emitter: (write: (data: Buffer) => void) => () => boolean,
    write: (data: Buffer) => void,
    heartbeat: Buffer,
  ) => {
    let lastWrite = performance.now();
    const writeNoted = (data: Buffer) => {
      lastWrite = performance.now();
      write(data);
    };
    const emit = emitter(writeNoted);
    for (;;) {
      await emitInSlices(emit, scorer);
      // (Stopped: a cancel, statement_timeout, the heap guard, a failed batch.)
      if (scorer.stopped) throw scorer.stopped;
      if (!scorer.busy && !scorer.hasCompleted) break;
      // (Batches may complete while nothing can be written: rows go in table order, after a slow batch's.)
      if (performance.now() - lastWrite >= HEARTBEAT_MS) writeNoted(heartbeat);
      await completionWithin(scorer, HEARTBEAT_MS);
    }
    await scorer.finish();
    onScored();
  };
  const emitRows = (write: (data: Buffer) => void) => () => {
    let wrote = false;
    for (const log of load.rows) {
      const lines = log.take(n, scorer, ROWS_PER_COPY_CHUNK);
      if (lines) {
        options.settings.loaded.byRow += lines.length;
        write(Buffer.from(lines));
        wrote = true;
      }
    }
    return wrote;
  };
  if (load.keyRows) {
    // The in-database functions read only answers loaded in a (sub)transaction the gateway vouched for (see
    // aws_ml.trust_batch), in which nothing of the session's ran: a transaction of the load's own outside a
    // block, a savepoint of its own in one. The proof names that transaction (aws_ml.load_xid).
    const vouch = options.settings.vouches ? options.vouch : undefined;
    const inBlock = options.inTransaction;
    let vouched: string | null | undefined;
    try {
      let end = '';
      if (vouch) {
        const { rows } = await backend.query(
          `${inBlock ? `SAVEPOINT ${LOAD_SAVEPOINT}` : 'BEGIN'}; SELECT aws_ml.load_xid()`,
        );
        const xid = rows[0]?.[0];
        end = `${xid ? `; ${vouch(n, xid)}` : ''}; ${inBlock ? `RELEASE SAVEPOINT ${LOAD_SAVEPOINT}` : 'COMMIT'}`;
      }
      await loadKeyRows(`${RESULTS_COPY}${end}`, (row) => {
        vouched = row[0];
      });
    } catch (error) {
      // (In a block the failure is the statement's, which leaves the block failed.)
      if (vouch && !inBlock) await backend.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    // (Refused: the bridge secret is another gateway's, say. The statement's joins read the answers all the same.)
    if (vouch && vouched !== 't') {
      options.control.logger.warn('aws_ml.trust_batch refused to vouch: calls not joined go to the services per row');
    }
    if (load.rows.length === 0) return;
    // Every answer is in: the rows go in one pass.
    await backend.copyInStreaming(ROW_RESULTS_COPY, (write) => emitInSlices(emitRows(write), scorer));
    return;
  }
  await backend.copyInStreaming(ROW_RESULTS_COPY, (write) => drain(emitRows, write, ROW_RESULTS_HEARTBEAT));

  async function loadKeyRows(sql: string, onRow: (row: (string | null)[]) => void): Promise<void> {
    await backend.copyInStreaming(
      sql,
      (write) =>
        drain(
          (writeRows) => () => {
            // A chunk at a time, so that emitInSlices can break in: a million answers completed meanwhile
            // written in one go held the event loop for seconds.
            const done = scorer.takeCompleted(ROWS_PER_COPY_CHUNK);
            if (done.length === 0) return false;
            let chunk = '';
            for (const { kind, target, key, format, result } of done) {
              if (format !== 'json') continue; // model inputs as CSV belong to rows, not to lookups
              chunk += `${n}\t${kind}\t${copyField(target)}\t${copyField(key)}\t${copyField(result.outText)}\t${copyField(result.outReal)}\n`;
            }
            if (chunk) {
              options.settings.loaded.byInput += chunk.length;
              writeRows(Buffer.from(chunk));
            }
            return true;
          },
          write,
          RESULTS_HEARTBEAT,
        ),
      onRow,
    );
  }
}

/** How long the results COPY may go without a row while batches are out (see loadResults). */
const HEARTBEAT_MS = 250;
/** Answers found by their inputs loaded into the per-input results table (and the hold's rows, see Hold). */
const RESULTS_COPY = 'COPY pg_temp.aws_ml_results (stmt, kind, target, key, out_text, out_real) FROM STDIN';
/** Rows of statement 0, which is never current (statements count from 1), of no kind any call reads. */
const RESULTS_HEARTBEAT = Buffer.from('0\theartbeat\t\t\t\\N\t\\N\n');
const ROW_RESULTS_HEARTBEAT = Buffer.from('0\t0\t0\t(0,0)\t0\t\\N\t\\N\n');

/**
 * The hold after an argument query (see Hold): into the per-input results table, which the session has once the
 * statement is batched, nothing stored.
 */
const argumentsHold = (settings: Pick<BatchSettings, 'resultsTables'>): Hold | undefined =>
  settings.resultsTables.byInput
    ? {
        sql: `${RESULTS_COPY} WHERE false`,
        heartbeat: RESULTS_HEARTBEAT,
        everyMs: HEARTBEAT_MS,
      }
    : undefined;

/** Waits for the scorer's next completed batch, or `ms` at the most. */
async function completionWithin(scorer: BatchScorer, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([scorer.nextCompletion(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
