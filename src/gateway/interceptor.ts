import { createHash, randomBytes } from 'node:crypto';
import { EMPTY_CATALOG, type MlCatalog } from '../batch/catalog.js';
import type { CatalogRegistry, CatalogView } from '../batch/catalog-registry.js';
import type { DdlListener } from '../batch/ddl-listener.js';
import {
  type ArgumentWork,
  beginBatch,
  CLEAR_RESULTS,
  computeBatchResults,
  ensureResultsTables,
  type LimitSearch,
  needsLookupIndex,
  newSessionTables,
  readSettings,
  type SessionTables,
  type TableRefusals,
} from '../batch/executor.js';
import { annotateExplain } from '../batch/explain.js';
import type { MemoryGuard } from '../batch/memory-guard.js';
import { privilegeCheck } from '../batch/ml-calls.js';
import { type BatchPlan, type CallGroup, planBatch, type SteppedLimit, WINDOW_SETTING } from '../batch/planner.js';
import { readsTransactionStart } from '../batch/pure-functions.js';
import type { BatchFigures } from '../batch/scoring.js';
import type { BatchStatistics } from '../batch/statistics.js';
import {
  type BatchTarget,
  batchTarget,
  evaluatesOnce,
  isCatalogDdl,
  type SqlPrepared,
  tablesOf,
} from '../batch/targets.js';
import { installAwsMlByScript, storeBridgeConninfo } from '../extension/install.js';
import type { MlServices } from '../ml/client.js';
import { type AstNode, callsFunction, deparse, deparsesFaithfully, inner, nodeType, some } from '../sql/ast.js';
import { readsTheSameLater } from '../sql/inline-parameters.js';
import { parse } from '../sql/parser.js';
import { quoteLiteral } from '../sql/quote.js';
import { rewriteStatementText } from '../sql/rewrite.js';
import { searchPathSchemas } from '../sql/search-path.js';
import { asSqlError, SqlError, SqlState } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { parseBoolean } from '../util/pg-boolean.js';
import { type BackendChannel, BackendError } from './backend.js';
import {
  ClientErrors,
  carryWrittenText,
  errorAsWritten,
  NAMES_EXTENSION_SCHEMA,
  noteErrorInstead,
  noteExtensionHint,
  noteOrigins,
  noteWrittenText,
  withExtensionHint,
  withoutOwnContext,
} from './client-errors.js';
import { blockOpening, changesLaterStatements } from './group-order.js';
import { type IdleTimeouts, idleTimeoutsInBlock, pauseIdleTimeouts, readIdleTimeouts } from './idle-timeouts.js';
import {
  bindMessage,
  bindStatementName,
  ClientMessage,
  type ColumnDescription,
  closeMessage,
  commandComplete,
  countsAsReply,
  dataRow,
  type ErrorFields,
  errorResponse,
  executeMessage,
  executePortalName,
  type Message,
  noticeResponse,
  parseFields,
  parseMessage,
  queryMessage,
  readBind,
  readDataRow,
  readParse,
  readyForQuery,
  repliesTo,
  rowDescription,
  ServerMessage,
  syncMessage,
  type TransactionStatus,
  withOrigins,
} from './protocol.js';
import { READING_SETTINGS, type SessionControl, type SessionInterceptor } from './session.js';
import { putBackSetting, timeLeft, underTimeLeft } from './time-left.js';

const CREATE_AWS_ML = /^\s*create\s+extension\s+(if\s+not\s+exists\s+)?"?aws_ml"?[\s;]/i;

/**
 * Another kind of statement the gateway carries out itself before PostgreSQL
 * runs it (e.g. aws_s3.query_export_to_s3, which must COPY on the client's
 * session and upload). Its names join the pattern that routes statements here.
 */
export interface StatementHandler {
  names: string[];
  accepts(stmt: AstNode): boolean;
  /**
   * Does the work on the session; returns the SQL PostgreSQL runs instead.
   * Throw SqlError to fail the statement. `bound`: the statement came with
   * the extended protocol, its `$n` bound to these values (the SQL returned
   * may still read them).
   */
  prepare(control: SessionControl, stmt: AstNode, bound?: BoundStatement): Promise<string>;
}

/** A client's Bind of a statement a StatementHandler carries out, with the parameter types PostgreSQL inferred. */
export interface BoundStatement {
  values: (Buffer | null)[];
  formats: number[];
  types: number[];
}

export interface InterceptorContext {
  catalogs: CatalogRegistry;
  /** Hears DDL that does not pass through this gateway, for the sessions of a database that use its catalog. */
  ddl?: Pick<DdlListener, 'join'>;
  handlers?: StatementHandler[];
  services: MlServices;
  statistics: BatchStatistics;
  /** Stops the largest batched statement when the gateway's heap fills up. */
  memory?: MemoryGuard;
  /**
   * Upstream mode: PostgreSQL cannot read a file pgsage writes, so the bridge
   * location is stored in aws_ml.bridge_settings when the extension is created.
   */
  bridgeConninfoForUpstream?: () => string;
  /** The bridge's secret, with which the gateway vouches for the answers it loads (see aws_ml.trust_batch). */
  bridgeSecret?: string;
}

/** Messages the gateway slips into a client's group before the message at `at`; their replies are kept from the client. */
interface Injection {
  at: number;
  messages: Buffer[];
  /** Replies (see countsAsReply) the group's messages before `at` give. */
  repliesBefore: number;
  /** Replies the slipped messages give. */
  replies: number;
  /** The first value of the slipped statement's row, once its reply passed. */
  value?: string | null;
  /** What the client gets in place of the slipped statement's error (see failureBefore). */
  error?: Buffer;
  /** Runs once the group is answered (a Sync in its place), with the status the group left. */
  after?: (control: SessionControl, status: TransactionStatus) => Promise<void>;
}

/**
 * A statement that sets a value LOCAL to the transaction, slipped in before
 * the group's message at `at`, its replies kept from the client.
 */
function settingInjection(name: string, sql: string, at: number, repliesBefore: number): Injection {
  return {
    at,
    messages: [
      parseMessage(name, sql),
      bindMessage(name, name, []),
      executeMessage(name),
      closeMessage('P', name),
      closeMessage('S', name),
    ],
    repliesBefore,
    replies: 5, // ParseComplete, BindComplete, (DataRow) CommandComplete, CloseComplete twice
  };
}

const NO_PARALLEL_PLANS = 'aws_ml_no_parallel_plans';
const TIME_LEFT = 'aws_ml_time_left';

/**
 * For a group that opens a transaction block (BEGIN, START TRANSACTION: the
 * only statements it runs before) and then runs a statement that must not get a
 * parallel plan: parallel_setup_cost raised LOCAL to the block, right before
 * the statement's Bind, and put back once the group is answered (see
 * restoreParallelPlans; a rollback undoes both).
 */
function noParallelPlansAfterBegin(group: Message[], at: number): Injection | undefined {
  const begins = new Set<string>();
  let repliesBefore = 0;
  for (const message of group.slice(0, at)) {
    if (message.type === ClientMessage.Parse) {
      // (Parsing runs nothing: the statement itself may be parsed before.)
      const parse = readParse(message.bytes);
      if (/^\s*(begin|start\s+transaction)\b/i.test(parse.sql)) begins.add(parse.name);
      else begins.delete(parse.name);
    } else if (message.type === ClientMessage.Bind) {
      if (!begins.has(readBind(message.bytes).statement)) return undefined;
    } else if (message.type !== ClientMessage.Execute && message.type !== ClientMessage.Describe) {
      return undefined;
    }
    repliesBefore += repliesTo(message.bytes) ?? 0;
  }
  const injection = settingInjection(
    NO_PARALLEL_PLANS,
    "SELECT current_setting('parallel_setup_cost'), pg_catalog.set_config('parallel_setup_cost', '1e300', true)",
    at,
    repliesBefore,
  );
  injection.after = async (control, status) => {
    if (injection.value == null || status !== 'T') return;
    await restoreParallelPlans(control, injection.value, true);
  };
  return injection;
}

/**
 * For a group outside a block whose every statement has ML calls: what is
 * left of statement_timeout, LOCAL to the group's implicit transaction (it
 * ends at the Sync), before everything the group runs. (Not in a group with
 * other statements: one may open a block the setting would last into, or be
 * one that PostgreSQL refuses to run after another in a pipeline.)
 */
function timeLeftForGroup(left: number): Injection {
  return settingInjection(TIME_LEFT, `SELECT pg_catalog.set_config('statement_timeout', '${left}', true)`, 0, 0);
}

/**
 * Inside a block: what is left of statement_timeout for the group's
 * statements, put back once the group is answered unless they changed it (a
 * failed block's rollback puts it back itself).
 */
async function timeLeftInBlock(control: SessionControl, left: number): Promise<void> {
  const { rows } = await control.backend.query(
    `SELECT current_setting('statement_timeout'), pg_catalog.set_config('statement_timeout', '${left}', true)`,
  );
  const [previous, ours] = rows[0];
  control.afterIdle(async () => {
    if (control.backend.status !== 'T') return;
    await control.backend.query(putBackSetting('statement_timeout', ours ?? '', previous ?? '0'));
  });
}

/** Text that may change one of the settings that decide how text is read (a cheap look before parsing it). */
const MAY_CHANGE_READING = /standard_conforming_strings|client_encoding|\bnames\b|set_config|\breset\s+all\b/i;

/** Whether a group's calls read a parameter (in their arguments, or a wrapper's). */
function readsParameters(group: CallGroup): boolean {
  return group.sites.some((site) => some(site.call.node, (node) => nodeType(node) === 'ParamRef'));
}

/**
 * Whether a statement may change one of READING_SETTINGS: SET or RESET of one, RESET
 * ALL, a set_config call (of any setting: its name may be computed), or a DO
 * block or CALL whose text mentions them (their code is not parsed here).
 */
function changesReading(stmt: AstNode, text: string): boolean {
  const set = inner(stmt, 'VariableSetStmt');
  if (set) return set.kind === 'VAR_RESET_ALL' || READING_SETTINGS.has(set.name);
  if (inner(stmt, 'DoStmt') || inner(stmt, 'CallStmt')) return MAY_CHANGE_READING.test(text);
  return callsFunction(stmt, (name) => name === 'set_config');
}

/** Whether a Parse's text changes how PostgreSQL reads the statements parsed after it. */
function parseChangesReading(sql: string): boolean {
  if (!MAY_CHANGE_READING.test(sql)) return false;
  try {
    return parse(sql).some((s) => changesReading(s.stmt, sql));
  } catch {
    return false;
  }
}

/**
 * Runs the gateway's clean-up after a failure again when a cancel stopped it:
 * a client's cancel reaches PostgreSQL as the gateway's work stops, and may
 * land on the first statement sent after (PostgreSQL drops one that comes while
 * it is idle). A few times, for a client that cancels more than once.
 */
async function pastCancel<T>(cleanUp: () => Promise<T>, tries = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await cleanUp();
    } catch (error) {
      if (attempt >= tries || !(error instanceof BackendError) || error.code !== SqlState.queryCanceled) throw error;
    }
  }
}

/** The text of the statement the session prepared as `name` with the extended protocol, if it still has one. */
async function preparedText(control: SessionControl, name: string): Promise<string | undefined> {
  const { rows } = await control.backend.queryParams(
    'SELECT statement FROM pg_catalog.pg_prepared_statements WHERE name = $1 AND NOT from_sql',
    [name],
  );
  return rows[0]?.[0] ?? undefined;
}

/** PostgreSQL refused a statement's text (syntax, a name or type it does not know: class 42), not its running. */
const notAnalyzable = (error: BackendError) => error.code.startsWith('42');

const BATCH_FAILURE = 'aws_ml_batch_failure';
/** The name a statement carried out by a StatementHandler is prepared under, made of the SQL the handler returned. */
const HANDLED = 'aws_ml_handled';

/** A statement the client prepared that a StatementHandler carries out (see handledExtended). */
interface HandledStatement {
  handler: StatementHandler;
  stmt: AstNode;
  /** As the client wrote it. */
  sql: string;
  declaredTypes: number[];
}

/** The replies PostgreSQL gives the group's messages before `at`, or undefined if one is not a plain step. */
function repliesBefore(out: Buffer[], at: number): number | undefined {
  let replies = 0;
  for (const message of out.slice(0, at)) {
    const count = repliesTo(message);
    if (count === undefined) return undefined;
    replies += count;
  }
  return replies;
}

/**
 * For a group whose batch failed: a statement that fails, slipped in at `at`,
 * before the group's first Execute of a statement with ML calls, after
 * messages PostgreSQL answers with `replies` replies (see repliesBefore).
 * PostgreSQL then runs what comes before as it would (a statement parsed
 * there stays prepared, a statement executed there answers), fails there with
 * the batch's error in place of its own, aborts the transaction as that
 * failure would, and skips the rest to the Sync.
 */
function failureBefore(at: number, replies: number, error: Buffer): Injection {
  return {
    at,
    messages: [
      // (In case a failure left it prepared.)
      closeMessage('S', BATCH_FAILURE),
      parseMessage(
        BATCH_FAILURE,
        "DO $$ BEGIN RAISE EXCEPTION 'aws_ml batch call failed' USING ERRCODE = '38000'; END $$",
      ),
      bindMessage(BATCH_FAILURE, BATCH_FAILURE, []),
      executeMessage(BATCH_FAILURE),
    ],
    repliesBefore: replies,
    replies: 3, // CloseComplete, ParseComplete, BindComplete; the Execute fails
    error,
  };
}

const nameAt = (m: Buffer, at: number) => m.toString('utf8', at, m.indexOf(0, at));

/**
 * Where in the group the portal bound at out[index] is executed (before it
 * is bound again or closed), or -1.
 */
function executedLater(out: Buffer[], index: number, portal: string): number {
  for (let i = index + 1; i < out.length; i++) {
    const m = out[i];
    if (m[0] === ClientMessage.Execute && executePortalName(m) === portal) return i;
    if (m[0] === ClientMessage.Bind && nameAt(m, 5) === portal) return -1;
    if (m[0] === ClientMessage.Close && m[5] === 0x50 /* P */ && nameAt(m, 6) === portal) return -1;
  }
  return -1;
}

const MIGRATION_SETTING = 'aws_ml.enable_function_migration';
const AURORA_SETTING = /apg_enable_function_migration/i;

/**
 * The value of a `SET apg_enable_function_migration` (also SET LOCAL, TO) that
 * is not a boolean, as written; undefined for other statements.
 */
function notBoolean(set: AstNode | undefined): string | undefined {
  if (set?.name !== MIGRATION_SETTING || set.kind !== 'VAR_SET_VALUE') return undefined;
  const args = (set.args ?? []) as AstNode[];
  const values = args.map((arg) => {
    const constant = arg.A_Const as AstNode | undefined;
    return constant?.sval?.sval ?? constant?.ival?.ival ?? constant?.fval?.fval ?? (constant?.ival ? 0 : undefined);
  });
  if (values.length === 1 && values[0] !== undefined && parseBoolean(String(values[0])) !== undefined) return undefined;
  return values.map((v) => `"${v ?? '?'}"`).join(', ');
}

/**
 * Fails a `SET apg_enable_function_migration` whose value is not a boolean:
 * PostgreSQL takes any text for a setting it does not know; Aurora's is a
 * boolean, refused as one is. Returns whether it did.
 */
async function refusedSetting(control: SessionControl, stmt: AstNode): Promise<boolean> {
  const refused = notBoolean(inner(stmt, 'VariableSetStmt'));
  if (refused === undefined) return false;
  await refuseStatement(control, notBooleanError(refused));
  return true;
}

/** Aurora's error for such a SET, given the value as notBoolean wrote it. */
const notBooleanError = (refused: string) => ({
  code: SqlState.invalidParameterValue,
  message: 'parameter "apg_enable_function_migration" requires a Boolean value',
  detail: `It was given ${refused}.`,
});

/**
 * For a Parse (extended protocol) of such a SET: a statement that fails as
 * the SET is refused, when it is executed (PostgreSQL parses a SET of a
 * boolean to any value, and refuses it at the Execute). Undefined otherwise.
 */
function refusedSettingSql(sql: string): string | undefined {
  if (!AURORA_SETTING.test(sql)) return undefined;
  let refused: string | undefined;
  try {
    const statements = parse(rewriteStatementText(sql));
    if (statements.length === 1) refused = notBoolean(inner(statements[0].stmt, 'VariableSetStmt'));
  } catch {
    return undefined;
  }
  if (refused === undefined) return undefined;
  const { code, message, detail } = notBooleanError(refused);
  return `DO $aws_ml$BEGIN RAISE EXCEPTION USING ERRCODE = '${code}',
    MESSAGE = ${quoteLiteral(message)}, DETAIL = ${quoteLiteral(detail)}; END$aws_ml$`;
}

/** Answers a statement the gateway will not run with an error, a block it is sent in aborted as a failed statement leaves it. */
async function refuseStatement(control: SessionControl, error: ErrorFields): Promise<void> {
  if (control.backend.status === 'T') await abortBlock(control, 'statement refused', error.code);
  control.toClient(errorResponse(error));
}

/** PostgreSQL's error for a prepared statement whose result columns changed (drivers re-prepare on it). */
const RESULT_TYPE_CHANGED = errorResponse({
  code: SqlState.featureNotSupported,
  message: 'cached plan must not change result type',
  file: 'plancache.c',
  routine: 'RevalidateCachedQuery',
});

/** Hands a simple Query to PostgreSQL with Aurora's names mapped (see rewriteStatementText). */
function forwardRewritten(control: SessionControl, bytes: Buffer, sql: string, rewritten: string): void {
  // (A statement naming the extensions' schemas fails where a database has not made them: the error says how.)
  const hinted = NAMES_EXTENSION_SCHEMA.test(sql);
  if (rewritten === sql && !hinted) control.forward(bytes, 1);
  else {
    const message = rewritten === sql ? bytes : noteWrittenText(queryMessage(rewritten), sql);
    if (hinted) noteExtensionHint(message);
    control.forward(message, 1, new ClientErrors([message]));
  }
}

/** A relay filter that keeps an injection's replies (and its DataRow) from the client. */
function hideInjectedReplies(injection: Injection): (message: Message) => Buffer | null {
  let seen = 0;
  let hidden = 0;
  let failed = false;
  return (message) => {
    // After an error PostgreSQL skips to the Sync: the slipped messages get no replies.
    if (failed) return message.bytes;
    if (message.type === ServerMessage.ErrorResponse) {
      failed = true;
      // (The slipped statement's failure stands for the batch's; the client's own statements fail as they do.)
      return injection.error && seen >= injection.repliesBefore ? injection.error : message.bytes;
    }
    if (seen < injection.repliesBefore) {
      if (countsAsReply(message.type)) seen += 1;
      return message.bytes;
    }
    if (hidden < injection.replies && (countsAsReply(message.type) || message.type === ServerMessage.DataRow)) {
      if (countsAsReply(message.type)) hidden += 1;
      else injection.value = readDataRow(message.bytes)[0];
      return null;
    }
    return message.bytes;
  };
}

/** What an extended-protocol group does with the unnamed prepared statement (see forwardAfterOwnWork). */
interface UnnamedUse {
  /** A Bind uses the unnamed statement with ML calls prepared in an earlier group. */
  ml?: PreparedMl;
  /** A Bind uses the unnamed statement without ML calls prepared in an earlier group (unnamedPlain). */
  plainBound: boolean;
  /** The group parses the unnamed statement: its Parse as the server gets it, or null for one with ML calls. */
  parsed?: Buffer | null;
}

/** A statement the client prepared (extended protocol) that batch mode handles at each Bind. */
interface PreparedMl {
  target: BatchTarget;
  plan: BatchPlan;
  /** What the server was given to parse (the rewritten statement). */
  serverSql: string;
  /** How PostgreSQL describes the columns of the statement as written, when the server's form reads a view in place. */
  origins?: readonly ColumnDescription[];
  declaredTypes: number[];
  /** The statement as the client wrote it (rewritten only in what PostgreSQL reads alike), for the per-row path. */
  plainSql: string;
  /** Its groups' ids start here (see PlanOptions.firstGroupId). */
  firstGroupId: number;
  /** It must run without a parallel plan (see writesWithParallelPlan). */
  writes: boolean;
  inferredTypes?: number[];
  /** The ML catalog it was planned with: after a change (a wrapper replaced, made STRICT…) it is planned again. */
  catalog: MlCatalog;
  /** The SQL names of the inferred types (and of the types under domains), for writing bound values into argument queries. */
  typeNames?: { names: string[]; bases: string[] };
}

/**
 * Whether the gateway reads a client message's text exactly as PostgreSQL
 * will: it decodes text as UTF-8, which is right for a UTF8 client and for
 * ASCII in any client encoding PostgreSQL accepts; and it lexes strings with
 * standard_conforming_strings on, which is right for text without backslashes
 * whatever the setting.
 */
function readsExactly(control: SessionControl, bytes: Buffer, start: number): boolean {
  return misreadBecause(control, bytes, start) === undefined;
}

/** What keeps the gateway from reading a message's text as PostgreSQL will (see readsExactly). */
function misreadBecause(control: SessionControl, bytes: Buffer, start: number): 'encoding' | 'escapes' | undefined {
  const utf8 = control.clientEncoding === 'UTF8';
  const conforming = control.standardConformingStrings !== 'off';
  if (utf8 && conforming) return undefined;
  // The text ends at its NUL (a Parse's parameter types follow it).
  for (let i = start; i < bytes.length && bytes[i] !== 0; i++) {
    if (!utf8 && bytes[i] >= 0x80) return 'encoding';
    if (!conforming && bytes[i] === 0x5c /* backslash */) return 'escapes';
  }
  return undefined;
}

/**
 * CREATE TABLE AS, SELECT INTO, CREATE and REFRESH MATERIALIZED VIEW (and
 * EXPLAIN of them): statements that write while their query may run in
 * parallel. PostgreSQL refuses a new command during such a query, and a
 * VOLATILE PL/pgSQL function (the ML functions) starts one for each statement
 * or non-immutable expression it runs: a wrapper declared PARALLEL SAFE, as in
 * Aurora's guide, would get them a parallel plan.
 */
function writesWithParallelPlan(sql: string): boolean {
  if (!/\b(as|into|refresh)\b/i.test(sql)) return false;
  let statements: { stmt: AstNode }[];
  try {
    statements = parse(sql);
  } catch {
    return false;
  }
  // (A string of several statements may set the same setting or end the transaction block: left alone.)
  return (
    statements.length === 1 &&
    statements.some(({ stmt }) => {
      const explained = inner(stmt, 'ExplainStmt')?.query ?? stmt;
      const type = nodeType(explained);
      return (
        type === 'CreateTableAsStmt' ||
        type === 'RefreshMatViewStmt' ||
        (type === 'SelectStmt' && inner(explained, 'SelectStmt').intoClause !== undefined)
      );
    })
  );
}

/**
 * Makes parallel plans too costly to choose for the statement, and puts the
 * setting back once it has been answered (unless something else changed it
 * meanwhile). Inside a transaction block the change is LOCAL, so a rollback
 * undoes it too. The batch size settings are left alone: they also size batch
 * mode's concurrency.
 */
async function withoutParallelPlans(control: SessionControl): Promise<void> {
  const status = control.backend.status;
  if (status === 'E') return;
  const local = status === 'T';
  const { rows } = await control.backend.query(
    `SELECT current_setting('parallel_setup_cost'), set_config('parallel_setup_cost', '1e300', ${local})`,
  );
  control.afterIdle(async () => {
    if (failedBlock(control) || (local && control.backend.status !== 'T')) return;
    await restoreParallelPlans(control, rows[0][0] ?? '1000', local);
  });
}

/** Puts parallel_setup_cost back to `previous`, unless something other than the gateway changed it meanwhile. */
async function restoreParallelPlans(control: SessionControl, previous: string, local: boolean): Promise<void> {
  await control.backend.query(putBackSetting('parallel_setup_cost', '1e+300', previous, local));
}

/**
 * Leaves the client's transaction block aborted, as a failed statement of its
 * own would (the client is told the real error separately).
 */
async function abortBlock(control: SessionControl, message: string, code: string): Promise<void> {
  await control.backend
    .query(`DO $$ BEGIN RAISE EXCEPTION ${quoteLiteral(message)} USING ERRCODE = ${quoteLiteral(code)}; END $$`)
    .catch(() => undefined);
}

/** Replaces the rows of EXPLAIN's text output with the same plan annotated with batch mode's work. */
function explainRewrite(
  plan: Pick<BatchPlan, 'groups' | 'perRow'>,
  figures: Map<CallGroup, BatchFigures> | undefined,
  batchMs?: number,
): (message: Message) => Buffer | null {
  const lines: string[] = [];
  return (message) => {
    if (message.type === ServerMessage.DataRow) {
      lines.push(readDataRow(message.bytes)[0] ?? '');
      return null;
    }
    if (message.type === ServerMessage.CommandComplete) {
      const annotated = annotateExplain(lines, plan, figures, batchMs);
      return Buffer.concat([...annotated.map((line) => dataRow([line])), message.bytes]);
    }
    return message.bytes;
  };
}

/**
 * Ends a transaction block the gateway opened for a client's statements, as
 * PostgreSQL ends an implicit one: committed, or rolled back after an error.
 */
async function endOwnBlock(control: SessionControl): Promise<boolean> {
  if (control.backend.status === 'T') {
    // A deferred constraint can still fail at COMMIT: relay that, not the COMMIT tag.
    const outcome = await control.relay(queryMessage('COMMIT'), (m) =>
      m.type === ServerMessage.CommandComplete ? null : m.bytes,
    );
    return !outcome.failed;
  }
  if (control.backend.status === 'E') await control.backend.query('ROLLBACK');
  return false;
}

/** A statement's CommandComplete held back until the transaction it ends has committed. */
interface HeldCompletion {
  bytes?: Buffer;
}

/** A transaction whose statements read one snapshot (see SteppedLimit). */
const ONE_SNAPSHOT = 'BEGIN ISOLATION LEVEL REPEATABLE READ';

/**
 * How a transaction whose statements read one snapshot begins in this session: undefined in a read-only one,
 * whose block could not make the results tables (its statements are not searched with an ORDER BY).
 */
async function snapshotBegin(control: SessionControl): Promise<string | undefined> {
  const { rows } = await control.backend.query(
    `SELECT pg_catalog.current_setting('transaction_isolation'), pg_catalog.current_setting('transaction_read_only'),
       pg_catalog.current_setting('transaction_timeout', true)`,
  );
  const [isolation, readOnly, timeout] = rows[0];
  // (Nor under a transaction_timeout, which the search's time in the block would count against.)
  if (readOnly === 'on' || (timeout && timeout !== '0')) return undefined;
  return isolation === 'read committed' || isolation === 'read uncommitted' ? ONE_SNAPSHOT : 'BEGIN';
}

/**
 * A plan's searched LIMIT, if it may be searched (see SteppedLimit): with an ORDER BY, only from answers stored
 * per row (NULL texts too, which the rows before the last one answered may hold); without one, any answered rows
 * that pass answer it.
 */
function searchedLimit(plan: BatchPlan | undefined): SteppedLimit | undefined {
  const limit = plan?.stepping;
  return limit && (limit.byRow || !limit.ordered) ? limit : undefined;
}

/**
 * The search of a plan's LIMIT for one execution: with an ORDER BY, only where the search and the statement read
 * one snapshot (inside a block of REPEATABLE READ or SERIALIZABLE: outside a block each statement reads its own).
 */
function searchIn(plan: BatchPlan, oneSnapshot: boolean): LimitSearch | undefined {
  const limit = searchedLimit(plan);
  return limit && (!limit.ordered || oneSnapshot) ? { limit } : undefined;
}

/** Whether a statement, or a wrapper body inlined into it, reads its transaction's start time (now()…). */
function readsStartTime(stmt: AstNode, plan: BatchPlan): boolean {
  return (
    readsTransactionStart(stmt) ||
    plan.groups.some((g) =>
      g.sites.some((site) => site.call.wrapper && readsTransactionStart(site.call.wrapper.inlined)),
    )
  );
}

/** The session is in a failed transaction block (read afresh: the status changes as statements run). */
const failedBlock = (control: SessionControl) => control.backend.status === 'E';

/**
 * After it, no batch statement's answers are current: the functions and
 * rewritten statements read none, and the functions do not even look at the
 * results table (a transaction that touched a temp table cannot PREPARE).
 */
const CLEAR_STATEMENT_NUMBER = `${CLEAR_RESULTS}, set_config('aws_ml.batch_statement', '0', false), set_config('${WINDOW_SETTING}', '', false)`;

/**
 * The statement number and results kept for the rest of the block only
 * (LOCAL): after it, as after CLEAR_STATEMENT_NUMBER. (The subquery, which
 * calls volatile functions, runs first: it reads the values, then clears the
 * session's own.)
 */
const STATEMENT_NUMBER_FOR_BLOCK = `SELECT set_config('aws_ml.batch_statement', v.statement, true),
    set_config('aws_ml.batch_results', v.results, true)
  FROM (SELECT current_setting('aws_ml.batch_statement') AS statement,
               current_setting('aws_ml.batch_results') AS results,
               set_config('aws_ml.batch_statement', '0', false), set_config('aws_ml.batch_results', '', false)) v`;

/**
 * After a batched statement: no answers are current from now on, except a
 * cursor's inside its block, which its later FETCHes read until the block ends.
 * Inside a block see endInBlock; returns the error that ended the block, if one did.
 */
async function endStatementNumber(control: SessionControl, cursor: boolean): Promise<Buffer | undefined> {
  if (failedBlock(control)) return undefined;
  if (control.backend.status === 'T') return endInBlock(control, numberEnd(control, cursor));
  await control.backend.query(CLEAR_STATEMENT_NUMBER);
  return undefined;
}

const numberEnd = (control: SessionControl, cursor: boolean) =>
  cursor && control.backend.status === 'T' ? STATEMENT_NUMBER_FOR_BLOCK : CLEAR_STATEMENT_NUMBER;

/**
 * endStatementNumber as a follow-up, after the client's ReadyForQuery: sent
 * again after a cancel (a block's follow-ups are tried again by the session,
 * under a savepoint: see Session.runTasks).
 */
async function endStatementNumberLater(control: SessionControl, cursor: boolean): Promise<void> {
  if (failedBlock(control)) return;
  const sql = numberEnd(control, cursor);
  if (control.backend.status === 'T') await control.backend.query(sql);
  else await pastCancel(() => control.backend.query(sql), CANCEL_TRIES);
}

/** A CLOSE statement (see closeCursor). */
const CLOSES_CURSOR = /^\s*close\b/i;

/** Tries of the gateway's clean-up that cancels keep stopping (see endInBlock). */
const CANCEL_TRIES = 10;
/**
 * endInBlock's savepoint. No client's savepoint shares the name: one that did would be rolled back to when a
 * cancel stopped the SAVEPOINT itself.
 */
const END_SAVEPOINT = `aws_ml_end_${randomBytes(6).toString('hex')}`;

/**
 * The gateway's own statement in the client's block once the client's
 * statement is done. A cancel that lands on it (pg_cancel_backend from another
 * session: PostgreSQL ignores one that finds the session idle, as the client
 * believes it) would abort the block with no error the client saw: its COMMIT
 * would answer ROLLBACK, its writes lost. So it runs under a savepoint, rolled
 * back to and tried again. Only a cancel that lands on the SAVEPOINT itself
 * aborts the block: its error is returned, for the client to have.
 */
async function endInBlock(control: SessionControl, sql: string): Promise<Buffer | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      await control.backend.query(`SAVEPOINT ${END_SAVEPOINT}; ${sql}; RELEASE SAVEPOINT ${END_SAVEPOINT}`);
      return undefined;
    } catch (error) {
      if (!(error instanceof BackendError) || error.code !== SqlState.queryCanceled) throw error;
      const restored = await pastCancel(() =>
        control.backend.query(`ROLLBACK TO SAVEPOINT ${END_SAVEPOINT}; RELEASE SAVEPOINT ${END_SAVEPOINT}`),
      ).then(
        () => true,
        () => false,
      );
      if (!restored) return error.raw;
      if (attempt >= CANCEL_TRIES) throw error;
    }
  }
}

/**
 * Whether PostgreSQL takes a prepared statement as bound with a client's
 * values: its privileges (a SELECT bound to a portal, other statements
 * EXPLAINed, as written) and the values. The check waits for no lock (an
 * EXPLAIN of an UPDATE takes the table's ROW EXCLUSIVE lock, which a CREATE
 * INDEX holds up): one held by another session is left to the statement
 * itself to wait for, where a client's cancel and lock_timeout reach it. In a
 * block the check runs under a savepoint it is rolled back to, which also
 * takes back its lock_timeout. Errors other than a refusal are thrown.
 */
async function takesAsBound(
  control: SessionControl,
  entry: PreparedMl,
  checkedBy: 'bind' | 'explain',
  params: { values: (Buffer | null)[]; formats: number[] },
): Promise<boolean> {
  const backend = control.backend;
  const inBlock = backend.status === 'T';
  const prelude = [
    ...(inBlock ? [`SAVEPOINT ${CHECK_SAVEPOINT}`] : []),
    "SELECT pg_catalog.set_config('lock_timeout', '1', true)",
  ];
  try {
    const sql = entry.target.checkedSql ?? entry.plainSql;
    await backend.analyze(sql, entry.inferredTypes, checkedBy, params, prelude);
    return true;
  } catch (error) {
    if (!(error instanceof BackendError) || error.raw.length === 0) throw error;
    if (error.code === SqlState.lockNotAvailable) return true;
    if (!REFUSED_AS_BOUND.test(error.code)) throw error;
    return false;
  } finally {
    if (inBlock) await backend.query(`ROLLBACK TO SAVEPOINT ${CHECK_SAVEPOINT}; RELEASE SAVEPOINT ${CHECK_SAVEPOINT}`);
  }
}

/** Whether a failure is a cancel, statement_timeout or lock_timeout, which PostgreSQL raises where it stands. */
function stopsAtOnce(failure: Buffer): boolean {
  const code = parseFields(failure).C;
  return code === SqlState.queryCanceled || code === SqlState.lockNotAvailable;
}

/** SQLSTATE classes of a statement PostgreSQL refuses as written or bound: data, syntax or access, unsupported. */
const REFUSED_AS_BOUND = /^(22|42|0A)/;
const CHECK_SAVEPOINT = 'aws_ml_check';

/**
 * The aws_ml.trust_batch call that vouches for a statement's answers just loaded: a hash of the bridge
 * secret with the statement number and the ID of the transaction that loaded them.
 */
function voucher(secret: string | undefined): ((statementNumber: number, xid: string) => string) | undefined {
  if (!secret) return undefined;
  return (statementNumber, xid) => {
    const proof = createHash('sha256').update(`${secret}:vouch:${statementNumber}:${xid}`).digest('hex');
    return `SELECT aws_ml.trust_batch(${statementNumber}, '${proof}')`;
  };
}

/** Whether two Binds carry the same values in the same formats. */
function sameValues(
  a: { values: (Buffer | null)[]; formats: number[] },
  b: { values: (Buffer | null)[]; formats: number[] },
): boolean {
  return (
    a.values.length === b.values.length &&
    a.formats.length === b.formats.length &&
    a.formats.every((f, i) => f === b.formats[i]) &&
    a.values.every((v, i) => {
      const w = b.values[i];
      return v === null || w === null ? v === w : v.equals(w);
    })
  );
}

/** Where a Parse message's query text starts (after the statement name). */
const parseTextStart = (bytes: Buffer) => bytes.indexOf(0, 5) + 1;

/** The tables whose rows key the stored answers of a plan's groups. */
const rowTablesOf = (plan: BatchPlan) => plan.groups.flatMap((g) => (g.rowIdentity ? [g.rowIdentity.table] : []));

/**
 * SQL names of built-in types (OIDs below 16384, which PostgreSQL assigns at
 * initdb and never reuses), as typeNames gives them: the same in every
 * database and session, so read once per process.
 */
const builtinTypeNames = new Map<number, { name: string; base: string }>();
const FIRST_NORMAL_OID = 16384;

/** format_type's name of each type, and of the type under it when it is a domain, in order. */
async function typeNames(control: SessionControl, types: number[]): Promise<{ names: string[]; bases: string[] }> {
  if (types.every((t) => builtinTypeNames.has(t))) {
    return {
      names: types.map((t) => builtinTypeNames.get(t)!.name),
      bases: types.map((t) => builtinTypeNames.get(t)!.base),
    };
  }
  const { rows } = await control.backend.query(
    // typmod -1, not NULL: format_type(bpchar, NULL) is `character`, which as a cast means char(1).
    // A type outside pg_catalog is named with its schema: the names are kept for later executions,
    // when search_path may find another type under the bare name (PostgreSQL keeps the OID).
    // (Every name qualified: the built-in types' names are kept for the whole process, and this session's
    // search_path could put its own `||`, `=` or `unnest` first.)
    `SELECT CASE WHEN y.typnamespace OPERATOR(pg_catalog.<>) 'pg_catalog'::pg_catalog.regnamespace
                 THEN pg_catalog.concat(pg_catalog.quote_ident(s.nspname), '.', pg_catalog.quote_ident(y.typname))
                 ELSE pg_catalog.format_type(u.t, -1) END,
            pg_catalog.format_type(CASE WHEN y.typbasetype OPERATOR(pg_catalog.<>) 0 THEN y.typbasetype ELSE u.t END, -1)
       FROM pg_catalog.unnest('{${types.join(',')}}'::pg_catalog.oid[]) WITH ORDINALITY AS u(t, n)
       LEFT JOIN pg_catalog.pg_type y ON y.oid OPERATOR(pg_catalog.=) u.t
       LEFT JOIN pg_catalog.pg_namespace s ON s.oid OPERATOR(pg_catalog.=) y.typnamespace ORDER BY u.n`,
  );
  const names = rows.map((row) => row[0] ?? 'text');
  const bases = rows.map((row) => row[1] ?? 'text');
  types.forEach((t, i) => {
    if (t > 0 && t < FIRST_NORMAL_OID && rows[i][0] !== null)
      builtinTypeNames.set(t, { name: names[i], base: bases[i] });
  });
  return { names, bases };
}

/**
 * Whether a CREATE TABLE … AS can make its relation: none of that name where
 * the name leads (a schema, or the search path), and the user may create
 * there. Read from the catalog: unlike to_regclass or has_schema_privilege it
 * cannot fail (a schema without USAGE, or missing), which inside a block
 * would abort it.
 */
async function mayMake(
  control: SessionControl,
  relation: { schema?: string; name: string; temp: boolean },
): Promise<boolean> {
  const temp = relation.temp || relation.schema === 'pg_temp';
  const creatable = temp
    ? "pg_catalog.has_database_privilege(pg_catalog.current_database(), 'TEMP')"
    : `EXISTS (SELECT FROM pg_catalog.pg_namespace n WHERE n.nspname = ${
        relation.schema === undefined ? 'pg_catalog.current_schema()' : quoteLiteral(relation.schema)
      } AND pg_catalog.has_schema_privilege(n.oid, 'CREATE'))`;
  const { rows } = await control.backend.query(`SELECT ${creatable} AND NOT EXISTS (SELECT FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relname = ${quoteLiteral(relation.name)} AND ${schemaCondition(temp ? 'pg_temp' : relation.schema)})`);
  return rows[0][0] === 't';
}

/** Whether the session's role may run a statement, by its target's condition (see BatchTarget.mayRun). */
async function mayRun(control: SessionControl, condition: string): Promise<boolean> {
  const { rows } = await control.backend.query(`SELECT ${condition}`);
  return rows[0][0] === 't';
}

/** SQL true for the schemas `n` a relation name with this schema (or none) may be in. */
function schemaCondition(schema: string | undefined): string {
  if (schema === undefined) return 'n.nspname = ANY (pg_catalog.current_schemas(true))';
  if (schema === 'pg_temp') return 'n.oid = pg_catalog.pg_my_temp_schema()';
  return `n.nspname = ${quoteLiteral(schema)}`;
}

/** One statement of DDL that changes what the ML catalog holds, and not one batch mode runs (CREATE MATERIALIZED VIEW). */
function loneCatalogDdl(sql: string): boolean {
  // (Cheap test first: most statements are not DDL.)
  if (!/^\s*(create|drop|alter|do)\b/i.test(sql.replace(/^(\s*(--[^\n]*\n|\/\*[\s\S]*?\*\/))*/, ''))) return false;
  const stmt = loneStatement(sql);
  return stmt !== undefined && isCatalogDdl(stmt) && nodeType(stmt) !== 'CreateTableAsStmt';
}

/** The one statement of a text, or undefined for none, several or a syntax error. */
function loneStatement(sql: string): AstNode | undefined {
  let statements: { stmt: AstNode }[];
  try {
    statements = parse(sql);
  } catch {
    return undefined;
  }
  return statements.length === 1 ? statements[0].stmt : undefined;
}

/** Statements that run or forget a statement prepared with SQL's PREPARE. */
const SQL_PREPARED_USE = /^\s*(execute|deallocate|discard)\b|\bas\s+execute\b/i;

/**
 * A statement planned for batch mode. `plannedAs`: the statement number it
 * was planned with, every candidate table taken for a plain one (see
 * planForRun); it runs as planned if the session's settings agree.
 */
type Parsed =
  | { target: BatchTarget; plan: BatchPlan; catalog: MlCatalog; plannedAs?: number }
  /** `perRow`: a text EXPLAIN of calls made per row on purpose, which its output names. */
  | { forward: string; perRow?: BatchPlan['perRow'] };

/** Why a SELECT without FROM goes per row (see evaluatesOnce). */
const ONCE_REASON = 'a SELECT without FROM makes each call once: batch mode would only add round trips';

/** Taken for plain tables, whose rows key their answers, until the session's settings say (see planForRun). */
const EVERY_TABLE: Pick<ReadonlySet<string>, 'has'> = { has: () => true };

/**
 * The gateway's handling of statements that mention ML functions: Aurora's
 * call forms and setting names made acceptable to PostgreSQL, and batch mode
 * ("function migration"): argument queries, batched service calls, results
 * stored in the session, and the statement rewritten to read them.
 */
export class MlInterceptor implements SessionInterceptor {
  private statementNumber = 0;
  /** A statement was numbered since the number was last cleared outside a block (see noteRollback). */
  private numbered = false;
  /**
   * Batched cursors declared in the current block (simple protocol), whose statement's number stays current for
   * their FETCHes: once all are closed, it is cleared (see closeCursor).
   */
  private readonly blockCursors = new Set<string>();
  /** While a sequence runs its last statement: where that statement's CommandComplete waits (see runSequence). */
  private heldCompletion: HeldCompletion | undefined;
  private nextGroupId = 0;
  /** When the session last could not make its results tables (see ensureResultsTables). */
  private readonly tableRefusals: TableRefusals = { until: 0 };
  private readonly prepared = new Map<string, PreparedMl>();
  /** Statements the client prepared (extended protocol) that a StatementHandler carries out, by name. */
  private readonly handledStatements = new Map<string, HandledStatement>();
  /**
   * Names the session prepared with SQL's PREPARE in statements that mention
   * ML calls: an EXECUTE of one looks the statement up on the server first.
   */
  private readonly sqlPrepared = new Set<string>();
  /**
   * Function, view or schema DDL ran in a transaction block that has not
   * ended: its end (a rollback may undo the DDL) makes the catalog be read again.
   */
  private ddlInBlock = false;
  /** While `ddlInBlock`: the catalog as this session sees it (see CatalogRegistry.readOn), once read. */
  private ownCatalog: CatalogView | undefined;
  /** The catalog read in this REPEATABLE READ or SERIALIZABLE block's snapshot, until the block ends. */
  private snapshotCatalog: CatalogView | undefined;
  /** The session's results tables as last found (see SessionTables). */
  private readonly resultsTables: SessionTables = newSessionTables();
  /** Ends this session's share in hearing its database's DDL (see DdlListener.join). */
  private leaveDdlWatch: (() => void) | undefined;
  /** While an EXECUTE is planned and run: the statement it executes, as the server has it (see batchTarget). */
  private executing: ReadonlyMap<string, SqlPrepared> = new Map();
  /**
   * The client's unnamed statement when it has no ML calls: its Parse as the
   * server got it, and the backend's count of the gateway's own operations
   * then. Any later one drops it from the server, so a Bind of it after that
   * is preceded by this Parse again (see forwardAfterOwnWork).
   */
  private unnamedPlain: { bytes: Buffer; ownOperations: number } | undefined;
  /** The client's text of the simple Query being handled (error positions count in it). */
  private queryText: string | undefined;

  /**
   * The session's search_path and session user as PostgreSQL last reported them (see noteSearchPath), and the
   * role its last batched statement ran as (after SET ROLE, what `"$user"` means).
   */
  private readonly reported: { searchPath?: string; user?: string; currentUser?: string } = {};

  /** The aws_ml.trust_batch call of each load of answers, made with the bridge's secret. */
  private readonly vouch: ReturnType<typeof voucher>;

  constructor(
    private readonly context: InterceptorContext,
    private readonly database: string,
    private readonly logger?: Logger,
  ) {
    this.vouch = voucher(context.bridgeSecret);
  }

  close(): void {
    this.leaveDdlWatch?.();
  }

  noteSearchPath(setting: { searchPath?: string; user?: string }): void {
    // (A new session user, SET SESSION AUTHORIZATION, also ends any SET ROLE.)
    if (setting.user !== undefined) this.reported.currentUser = undefined;
    Object.assign(this.reported, setting);
  }

  /** The schemas of the session's search_path, once PostgreSQL has reported it (18 and later do). */
  private searchPath(): string[] | undefined {
    const { searchPath, user, currentUser } = this.reported;
    return searchPath === undefined ? undefined : searchPathSchemas(searchPath, currentUser ?? user);
  }

  asSent(sql: string): string {
    return rewriteStatementText(sql);
  }

  mentionsMl(sql: string): boolean {
    // Until this database's catalog has been read, look at everything once.
    const pattern = this.ddlInBlock
      ? this.ownCatalog?.pattern
      : (this.snapshotCatalog?.pattern ?? this.context.catalogs.pattern(this.database));
    if (this.sqlPrepared.size > 0 && SQL_PREPARED_USE.test(sql)) return true;
    if (this.blockCursors.size > 0 && CLOSES_CURSOR.test(sql)) return true;
    return pattern ? pattern.test(sql) : true;
  }

  /**
   * The server completed function, view or schema DDL (relayed or seen
   * passing): the catalog is read again before the next ML statement, and
   * once more when the block it ran in ends.
   */
  noteDdl(): void {
    this.catalogChanged();
    this.ddlInBlock = true;
  }

  /** The next statement's number in the session's results tables (see noteRollback for `numbered`). */
  private numberStatement(): number {
    this.numbered = true;
    return ++this.statementNumber;
  }

  /**
   * A CLOSE (sent as a Query) of a batched cursor of the block: once none is left open, its statement's number,
   * kept for their FETCHes, is cleared after it, so that per-row calls later in the block call the services.
   */
  private closeCursor(control: SessionControl, sql: string): void {
    let closes: AstNode | undefined;
    try {
      const statements = parse(sql);
      closes = statements.length === 1 ? inner(statements[0].stmt, 'ClosePortalStmt') : undefined;
    } catch {
      return;
    }
    if (!closes) return;
    if (closes.portalname) this.blockCursors.delete(closes.portalname);
    else this.blockCursors.clear(); // CLOSE ALL
    if (this.blockCursors.size > 0) return;
    control.afterIdle(() => endStatementNumberLater(control, false));
  }

  noteBlockLost(): void {
    this.context.statistics.blocksLost += 1;
  }

  noteRollback(control: SessionControl): void {
    // (A rollback to a savepoint may undo DDL this session's own catalog has.)
    if (this.ddlInBlock) this.ownCatalog = undefined;
    // A statement scored before the block began (a group that opens it: BEGIN, then the statement) numbered it for
    // the session, and cleared that in the block: the rollback puts the number back, and a later call would read
    // its answers, whatever the endpoint's model is by then. Cleared again, before the client's next statement.
    if (!this.numbered) return;
    // (A follow-up, which the session guards inside a block: see endStatementNumberLater.)
    control.afterIdle(async () => {
      await endStatementNumberLater(control, false);
      if (control.backend.status === 'I') this.numbered = false;
    });
  }

  noteStatus(status: TransactionStatus): void {
    if (status === 'I') {
      this.snapshotCatalog = undefined;
      this.blockCursors.clear();
      const refused = this.resultsTables.refusedInBlock;
      refused.byInput = refused.byRow = false;
    }
    if (!this.ddlInBlock || status !== 'I') return;
    this.ddlInBlock = false;
    this.catalogChanged();
  }

  /** DDL the gateway ran or relayed itself has completed (after its ReadyForQuery). */
  private ownDdlDone(status: TransactionStatus): void {
    this.noteDdl();
    this.noteStatus(status);
  }

  private catalogChanged(): void {
    this.ownCatalog = undefined;
    this.snapshotCatalog = undefined;
    this.context.catalogs.invalidate(this.database);
    // (An event trigger that refused the results tables may have changed too.)
    this.tableRefusals.until = 0;
  }

  /**
   * The ML catalog for this session's next statement: the database's shared
   * one, or, after DDL in a block that has not ended, one read on this
   * session and kept to it.
   */
  private async catalog(backend: BackendChannel): Promise<CatalogView> {
    if (this.ddlInBlock) {
      if (!this.ownCatalog && backend.status !== 'E') this.ownCatalog = await this.context.catalogs.readOn(backend);
      return this.ownCatalog ?? { catalog: EMPTY_CATALOG, pattern: /(?!)/ };
    }
    if (this.snapshotCatalog) return this.snapshotCatalog;
    this.leaveDdlWatch ??= this.context.ddl?.join(this.database);
    const { view, shared } = await this.context.catalogs.catalog(this.database, backend);
    // Read in a REPEATABLE READ or SERIALIZABLE block's snapshot: kept for the block, not read again per statement.
    if (!shared && backend.status === 'T') this.snapshotCatalog = view;
    return view;
  }

  get tracksAny(): boolean {
    return this.prepared.size > 0 || this.handledStatements.size > 0 || this.unnamedPlain !== undefined;
  }

  forget(statement: string, parse?: { bytes: Buffer; ownOperations: number }): void {
    this.prepared.delete(statement);
    this.handledStatements.delete(statement);
    if (statement === '') this.unnamedPlain = parse && { ...parse, bytes: Buffer.from(parse.bytes) };
  }

  tracks(message: Message, ownOperations: number): boolean {
    if (message.type !== ClientMessage.Bind) return false;
    const name = bindStatementName(message.bytes);
    return (
      (name === '' && this.unnamedPlainGone(ownOperations)) ||
      this.prepared.has(name) ||
      this.handledStatements.has(name)
    );
  }

  private unnamedPlainGone(ownOperations: number): boolean {
    return this.unnamedPlain !== undefined && ownOperations > this.unnamedPlain.ownOperations;
  }

  // ------------------------------------------------------------ simple protocol

  async handleQuery(control: SessionControl, sql: string, message: Message): Promise<void> {
    this.forget(''); // a simple query drops the unnamed statement
    if (writesWithParallelPlan(sql)) await withoutParallelPlans(control);
    this.queryText = sql;
    try {
      await this.query(control, sql, message);
    } catch (error) {
      if (!(error instanceof BackendError) || error.raw.length === 0) throw error;
      // One of the gateway's own statements failed: report it like any statement error.
      control.toClient([error.raw, readyForQuery(control.backend.status)]);
    } finally {
      this.queryText = undefined;
    }
  }

  private async query(control: SessionControl, sql: string, message: Message): Promise<void> {
    const misread = misreadBecause(control, message.bytes, 5);
    if (misread) {
      // Text the gateway cannot read faithfully is never rewritten: the statement goes as it came.
      if (rewriteStatementText(sql) === sql && !this.handlerFor(sql) && !CREATE_AWS_ML.test(`${sql} `)) {
        control.forward(message.bytes, 1);
        return;
      }
      await refuseStatement(control, {
        code: SqlState.featureNotSupported,
        ...(misread === 'encoding'
          ? {
              message: `pgsage cannot rewrite a statement with non-ASCII text while client_encoding is ${control.clientEncoding}`,
              hint: "SET client_encoding = 'UTF8' for this statement, or write aws_sagemaker.invoke_endpoint(name, max_rows_per_batch, json_build_array(...)) yourself.",
            }
          : {
              message: 'pgsage cannot rewrite a statement with backslashes while standard_conforming_strings is off',
              hint: 'SET standard_conforming_strings = on for this statement, or write aws_sagemaker.invoke_endpoint(name, max_rows_per_batch, json_build_array(...)) yourself.',
            }),
      });
      control.toClient(readyForQuery(control.backend.status));
      return;
    }
    if (this.context.bridgeConninfoForUpstream && CREATE_AWS_ML.test(`${sql} `)) {
      await this.createExtensionUpstream(control, sql);
      return;
    }
    const rewritten = rewriteStatementText(sql);
    // DDL alone needs no catalog: it is relayed, and the catalog read again when a statement next needs it (a
    // migration's many CREATEs pay no read each). (Its completion is noted here, not by its command tag: an ALTER
    // TABLE that renames a view says ALTER TABLE.)
    if (loneCatalogDdl(rewritten)) {
      await this.relayDdl(control, rewritten);
      return;
    }
    const { catalog, pattern } = await this.catalog(control.backend);
    if (this.sqlPrepared.size > 0 && SQL_PREPARED_USE.test(rewritten)) {
      if (await this.usePrepared(control, rewritten, catalog)) return;
    }
    if (this.blockCursors.size > 0 && CLOSES_CURSOR.test(sql)) this.closeCursor(control, sql);
    if (!pattern.test(sql)) {
      // (Rewritten all the same: while another session's lock holds up the catalog of a block that ran DDL, the
      // pattern matches nothing, and Aurora's forms and setting name still need their rewriting.)
      forwardRewritten(control, message.bytes, sql, rewritten);
      return;
    }
    let statements: { stmt: AstNode; location: number; length: number | undefined }[];
    try {
      statements = parse(rewritten);
    } catch {
      forwardRewritten(control, message.bytes, sql, rewritten);
      return; // PostgreSQL reports the syntax error itself
    }
    if (statements.length > 1) {
      await this.runSequence(control, statements, rewritten, catalog);
      return;
    }
    if (inner(statements[0].stmt, 'VariableShowStmt')?.name === MIGRATION_SETTING && AURORA_SETTING.test(sql)) {
      // PostgreSQL names a SHOW's column after the setting as given: Aurora's name, not pgsage's.
      await this.relayStatement(control, queryMessage(rewritten), (m) =>
        m.type === ServerMessage.RowDescription ? rowDescription([{ name: 'apg_enable_function_migration' }]) : m.bytes,
      );
      control.toClient(readyForQuery(control.backend.status));
      return;
    }
    if (await refusedSetting(control, statements[0].stmt)) {
      control.toClient(readyForQuery(control.backend.status));
      return;
    }
    const handled = this.handlerFor(rewritten);
    if (handled) {
      await this.runHandler(control, handled.handler, handled.stmt);
      return;
    }
    const prepare = inner(statements[0].stmt, 'PrepareStmt');
    if (prepare) this.sqlPrepared.add(prepare.name);
    const parsed = this.planForRun(rewritten, catalog);
    if ('forward' in parsed) {
      // (DDL the quick test above missed: after a nested comment, or a lone `;`.)
      if (parsed.forward === 'ddl') {
        await this.relayDdl(control, rewritten);
        return;
      }
      if (parsed.perRow) {
        await this.relayStatement(
          control,
          queryMessage(rewritten),
          explainRewrite({ groups: [], perRow: parsed.perRow }, undefined),
        );
        control.toClient(readyForQuery(control.backend.status));
        return;
      }
      forwardRewritten(control, message.bytes, sql, rewritten);
      return;
    }
    // Its argument queries and itself must read one start time: they run in one transaction, as a string of
    // several statements does. An ORDER BY … LIMIT searched window by window reads only the rows answered: its
    // search and itself must read one snapshot, or a row another session changed meanwhile would be missed.
    const startTime = readsStartTime(statements[0].stmt, parsed.plan);
    const searched = Boolean(parsed.plan.stepping?.ordered || parsed.plan.mayStepOrdered);
    if (control.backend.status === 'I' && !parsed.target.cursor && (startTime || searched)) {
      const begin = searched ? await snapshotBegin(control) : 'BEGIN';
      if (begin || startTime) {
        await this.runSequence(control, statements, rewritten, catalog, begin ?? 'BEGIN');
        return;
      }
    }
    await this.runBatchStatement(control, parsed, rewritten, true);
    if (isCatalogDdl(statements[0].stmt)) {
      // A new materialized view: the next statement that names it must be recognized.
      this.ownDdlDone(control.backend.status);
      await this.catalog(control.backend).catch(() => undefined);
    }
  }

  /**
   * EXECUTE of a statement prepared with ML calls is batched (see
   * batchTarget); DEALLOCATE and DISCARD forget statements. Returns false
   * for anything else, which goes on as usual.
   */
  private async usePrepared(control: SessionControl, sql: string, catalog: MlCatalog): Promise<boolean> {
    const stmt = loneStatement(sql);
    if (!stmt) return false;
    const deallocate = inner(stmt, 'DeallocateStmt');
    const discard = inner(stmt, 'DiscardStmt');
    if (deallocate?.isall || discard?.target === 'DISCARD_ALL') this.sqlPrepared.clear();
    else if (deallocate) this.sqlPrepared.delete(deallocate.name);
    const execute = inner(stmt, 'ExecuteStmt') ?? inner(inner(stmt, 'CreateTableAsStmt')?.query, 'ExecuteStmt');
    if (!execute || !this.sqlPrepared.has(execute.name) || control.backend.status === 'E') return false;
    // What the name stands for now (it may have been prepared again since, where the gateway did not look).
    const { rows } = await control.backend.query(
      `SELECT statement FROM pg_catalog.pg_prepared_statements WHERE name = ${quoteLiteral(execute.name)} AND from_sql`,
    );
    let prepared: SqlPrepared | undefined;
    try {
      const prepares = rows.length ? parse(String(rows[0][0])).map((s) => inner(s.stmt, 'PrepareStmt')) : [];
      // (Of a string that prepared the name twice, the later one stands.)
      const found = prepares.filter((p) => p?.name === execute.name).at(-1);
      if (found) prepared = { query: found.query, types: found.argtypes ?? [] };
    } catch {
      prepared = undefined;
    }
    if (!prepared) {
      this.sqlPrepared.delete(execute.name);
      return false;
    }
    this.executing = new Map([[execute.name, prepared]]);
    try {
      const parsed = this.planForRun(sql, catalog);
      if ('forward' in parsed) return false;
      await this.runBatchStatement(control, parsed, sql, true);
      return true;
    } finally {
      this.executing = new Map();
    }
  }

  /**
   * Several statements in one Query: PostgreSQL runs them as one implicit
   * transaction and stops at the first error. The gateway keeps that: it opens
   * the transaction itself when none is open, runs each statement (batched
   * where it can), and sends one ReadyForQuery at the end. Strings with their
   * own transaction control go to PostgreSQL unchanged. (Also a statement
   * whose argument queries must share its transaction.)
   */
  private async runSequence(
    control: SessionControl,
    statements: { stmt: AstNode; location: number; length: number | undefined }[],
    sql: string,
    catalog: MlCatalog,
    begin = 'BEGIN',
  ): Promise<void> {
    const backend = control.backend;
    const controlsTransactions = statements.some((s) => nodeType(s.stmt) === 'TransactionStmt');
    // COPY … FROM STDIN needs the client's data while the string runs, which the gateway holds back.
    const copiesIn = statements.some((s) => inner(s.stmt, 'CopyStmt')?.is_from && !inner(s.stmt, 'CopyStmt')?.filename);
    // PostgreSQL reads the whole string as the session stood before it: sent one by one, the statements after
    // such a SET would be read under the new setting.
    const readingChanges = statements.some((s) => changesReading(s.stmt, sql));
    if (controlsTransactions || copiesIn || readingChanges || backend.status === 'E') {
      control.forward(queryMessage(sql), 1);
      return;
    }
    const bytes = Buffer.from(sql);
    const texts = statements.map((s) =>
      bytes.toString('utf8', s.location, s.length === undefined ? bytes.length : s.location + s.length).trim(),
    );
    const wrap = backend.status === 'I';
    if (wrap) await backend.query(begin);
    let ok = true;
    let current = catalog;
    // PostgreSQL commits the implicit transaction before the last statement's CommandComplete: a failing COMMIT
    // (a deferred constraint) leaves that statement without one.
    const held: HeldCompletion = {};
    try {
      for (let i = 0; i < statements.length && ok; i++) {
        if (wrap && i === statements.length - 1) this.heldCompletion = held;
        ok = await this.runStatement(control, statements[i].stmt, texts[i], current);
        if (ok && isCatalogDdl(statements[i].stmt)) {
          // The next statements may use what it created (a wrapper, a function that writes).
          this.noteDdl();
          current = (await this.catalog(backend)).catalog;
        }
      }
    } catch (error) {
      // One of the gateway's own statements failed: the block it opened goes, as PostgreSQL's implicit one would.
      if (wrap && !backend.busy) await backend.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      this.heldCompletion = undefined;
    }
    if (wrap && ok) {
      if ((await endOwnBlock(control)) && held.bytes) control.toClient(held.bytes);
    } else if (wrap) {
      await backend.query('ROLLBACK');
    }
    if (statements.some((s) => isCatalogDdl(s.stmt))) this.ownDdlDone(backend.status);
    control.toClient(readyForQuery(backend.status));
  }

  /** One statement of a sequence; returns false when it failed (the client has the error). */
  private async runStatement(
    control: SessionControl,
    stmt: AstNode,
    text: string,
    catalog: MlCatalog,
  ): Promise<boolean> {
    if (await refusedSetting(control, stmt)) return false;
    const handler = (this.context.handlers ?? []).find((h) => h.accepts(stmt));
    if (handler) return this.runHandler(control, handler, stmt, false);
    const prepare = inner(stmt, 'PrepareStmt');
    if (prepare) this.sqlPrepared.add(prepare.name);
    const parsed = this.planForRun(text, catalog);
    if (!('forward' in parsed)) return this.runBatchStatement(control, parsed, text, false);
    const outcome = await this.relayStatement(control, queryMessage(text));
    return !outcome.failed;
  }

  /**
   * Relays a client's statement (see SessionControl.relay); while a sequence
   * runs its last statement, that statement's CommandComplete is held back
   * (see runSequence). Error positions, in `positionsIn` once `rewrite` has
   * passed them (the Query's own text by default), move into the client's.
   */
  private relayStatement(
    control: SessionControl,
    bytes: Buffer,
    rewrite?: (message: Message) => Buffer | null,
    positionsIn = bytes.toString('utf8', 5, bytes.length - 1),
  ): ReturnType<SessionControl['relay']> {
    const held = this.heldCompletion;
    const written = this.queryText;
    const asWritten = written === undefined || written === positionsIn ? undefined : written;
    const hinted = NAMES_EXTENSION_SCHEMA.test(positionsIn);
    const placed =
      asWritten === undefined && !hinted
        ? rewrite
        : (message: Message) => {
            const out = rewrite ? rewrite(message) : message.bytes;
            if (!out || out[0] !== ServerMessage.ErrorResponse) return out;
            const explained = hinted ? withExtensionHint(out) : out;
            return asWritten === undefined ? explained : errorAsWritten(explained, positionsIn, asWritten);
          };
    if (!held) return control.relay(bytes, placed);
    return control.relay(bytes, (message) => {
      const out = placed ? placed(message) : message.bytes;
      if (!out || message.type !== ServerMessage.CommandComplete) return out;
      // (Only the CommandComplete waits: rows a rewrite sends with it, as EXPLAIN's, go now.)
      const tail =
        out.length >= message.bytes.length && out.subarray(out.length - message.bytes.length).equals(message.bytes);
      held.bytes = tail ? message.bytes : out;
      return tail && out.length > message.bytes.length ? out.subarray(0, out.length - message.bytes.length) : null;
    });
  }

  private handlerFor(sql: string): { handler: StatementHandler; stmt: AstNode } | undefined {
    const handlers = this.context.handlers ?? [];
    if (!this.mentionsHandled(sql)) return undefined;
    try {
      const statements = parse(sql);
      if (statements.length !== 1) return undefined;
      const handler = handlers.find((h) => h.accepts(statements[0].stmt));
      return handler ? { handler, stmt: statements[0].stmt } : undefined;
    } catch {
      return undefined;
    }
  }

  private async runHandler(
    control: SessionControl,
    handler: StatementHandler,
    stmt: AstNode,
    standalone = true,
  ): Promise<boolean> {
    if (control.backend.status === 'E') {
      const outcome = await this.relayStatement(control, queryMessage(deparse(stmt)));
      if (standalone) control.toClient(readyForQuery(control.backend.status));
      return !outcome.failed;
    }
    let finalSql = '';
    const failure = await this.guarded(control, [], async () => {
      finalSql = await handler.prepare(control, stmt);
    });
    if (failure) return this.reportFailure(control, failure, standalone);
    const outcome = await this.relayStatement(control, queryMessage(finalSql));
    if (standalone) control.toClient(readyForQuery(control.backend.status));
    return !outcome.failed;
  }

  /**
   * After a statement whose scoring failed or was cancelled outside a block
   * (or in one still usable), no answers stay current: a PL/pgSQL function
   * or trigger calling an ML function later must call the service. (In a
   * failed block the setting goes back with the rollback.)
   */
  private async clearStatementNumber(control: SessionControl): Promise<void> {
    if (failedBlock(control)) return;
    // (A cancel that stopped the statement may land on this: it is sent again.)
    await pastCancel(() => endStatementNumber(control, false), CANCEL_TRIES).then(
      (lost) => lost && control.logger.warn('a cancel ended the transaction block as the gateway cleared its answers'),
      (error: unknown) =>
        control.ended || control.logger.warn({ err: error }, 'clearing the batch statement number failed'),
    );
  }

  /** Sends a statement's error (and, for a standalone statement, ReadyForQuery). */
  private reportFailure(control: SessionControl, failure: Buffer, standalone: boolean): false {
    const payload = withExtensionHint(failure);
    control.toClient(standalone ? [payload, readyForQuery(control.backend.status)] : payload);
    return false;
  }

  /**
   * Plans a statement about to run: as if each table that could key its
   * answers by row were a plain one (as it mostly is), and for the next
   * statement number, so that it need not be planned again once the
   * session's settings confirm that (runBatchStatement).
   */
  private planForRun(sql: string, catalog: MlCatalog): Parsed {
    const plannedAs = this.statementNumber + 1;
    const parsed = this.parseForBatch(sql, catalog, EVERY_TABLE, plannedAs);
    return 'forward' in parsed ? parsed : { ...parsed, plannedAs };
  }

  private parseForBatch(
    sql: string,
    catalog: MlCatalog,
    rowTables?: Pick<ReadonlySet<string>, 'has'>,
    statementNumber?: number,
    firstGroupId = this.nextGroupId,
    inlineViews?: ReadonlySet<string>,
  ): Parsed {
    let statements: { stmt: AstNode }[];
    try {
      statements = parse(sql);
    } catch {
      return { forward: 'syntax' }; // PostgreSQL reports the error itself
    }
    if (statements.length !== 1) {
      return { forward: statements.some((s) => isCatalogDdl(s.stmt)) ? 'ddl' : 'several statements' };
    }
    const [{ stmt }] = statements;
    // CREATE MATERIALIZED VIEW is DDL too, but its query is batched (the catalog is re-read after it).
    if (isCatalogDdl(stmt) && nodeType(stmt) !== 'CreateTableAsStmt') return { forward: 'ddl' };
    if (!deparsesFaithfully(stmt)) return { forward: 'syntax the gateway cannot rewrite faithfully' };
    let target: BatchTarget | undefined;
    let plan: BatchPlan;
    let once = false;
    try {
      const searchPath = this.searchPath();
      const planned = searchPath ? { ...catalog, searchPath } : catalog;
      target = batchTarget(stmt, planned, this.executing);
      if (!target && isCatalogDdl(stmt)) return { forward: 'ddl' };
      if (!target) return { forward: 'not batchable' };
      // (Read before planning, which rewrites the query.)
      // (EXPLAIN too: it shows how the statement runs.)
      once = !target.cursor && evaluatesOnce(target.query, planned);
      plan = planBatch(target.query, planned, {
        stored: target.stored,
        cursor: Boolean(target.cursor),
        rowTables,
        inlineViews,
        statementNumber,
        firstGroupId,
      });
      target.finalSql(plan); // (written again later; a statement it cannot write goes as it came)
    } catch (error) {
      this.logger?.warn({ err: error }, 'batch planning failed; the statement goes to PostgreSQL as written');
      return { forward: 'planning failed' };
    }
    // Group ids key stored rows: no two statements of the session share them.
    this.nextGroupId = Math.max(this.nextGroupId, firstGroupId + plan.groups.length);
    if (plan.groups.length === 0 && !target.explain) return { forward: 'no batchable calls' };
    if (once) {
      const perRow = target.explain?.text
        ? plan.groups.map((g) => ({ label: g.label, reason: ONCE_REASON }))
        : undefined;
      return { forward: 'one call each', perRow };
    }
    return { target, plan, catalog };
  }

  /**
   * Relays DDL that may create or drop wrappers or views, noting it done itself (the catalog is read again when a
   * statement next needs it): its tag may not say (a view renamed by ALTER TABLE says ALTER TABLE).
   */
  private async relayDdl(control: SessionControl, sql: string): Promise<void> {
    await this.relayStatement(control, queryMessage(sql));
    this.ownDdlDone(control.backend.status);
    control.toClient(readyForQuery(control.backend.status));
  }

  private async runBatchStatement(
    control: SessionControl,
    parsed: Exclude<Parsed, { forward: string }>,
    original: string,
    standalone: boolean,
    definitionsChecked = false,
  ): Promise<boolean> {
    let { target, plan } = parsed;
    const began = performance.now();
    const asIs = async () => {
      const outcome = await this.relayStatement(control, queryMessage(original));
      if (standalone) control.toClient(readyForQuery(control.backend.status));
      return !outcome.failed;
    };
    if (control.backend.status === 'E') return asIs();
    // (A Query string of several statements runs in a block of the gateway's, as PostgreSQL's implicit one.)
    if (target.inBlockOnly && control.backend.status !== 'T') return asIs();
    if (target.makes && !(await mayMake(control, target.makes))) return asIs();
    const settings = await readSettings(
      control,
      { tables: this.resultsTables, endpointNoOp: Boolean(parsed.catalog.endpointNoOp) },
      tablesOf(target.query),
      plan.groups.flatMap((g) => g.sites.map((site) => privilegeCheck(site.call))),
      plan.rowIdentityTables,
      plan.viewReads,
      plan.wrappers,
      [plan.keyRead],
    );
    this.reported.currentUser = settings.currentUser || undefined;
    if (settings.staleDefinitions && !definitionsChecked) {
      // A view it reads or a wrapper it inlined was changed where the gateway did not see it: plan again from the
      // catalog as it is now.
      this.catalogChanged();
      const { catalog } = await this.catalog(control.backend);
      const again = this.planForRun(original, catalog);
      if ('forward' in again) return asIs();
      return this.runBatchStatement(control, again, original, standalone, true);
    }
    // Without the privileges PostgreSQL will refuse the statement: call nothing and let it say so.
    if (!settings.batchable || !settings.extensionReady || settings.staleDefinitions) return asIs();
    // One row at the most, by a unique key: the per-row path makes the calls batch mode would, without its
    // round trips (its answers are the reference batch mode must give anyway).
    if (settings.oneRow[0] && !target.explain && !target.cursor) return asIs();
    if (settings.readOnly && target.writes) return asIs();
    if (!(await ensureResultsTables(control, settings, settings.rowTables.size > 0, this.tableRefusals))) return asIs();
    if (target.mayRun && !(await mayRun(control, target.mayRun))) return asIs();
    if (
      target.checkedBy &&
      !(await this.analyzes(control, target.checkedSql ?? original, standalone, target.checkedBy))
    )
      return false;
    const number = this.numberStatement();
    const asPlanned =
      parsed.plannedAs === number &&
      settings.inlineViews.size === 0 &&
      rowTablesOf(plan).every((t) => settings.rowTables.has(t));
    if (!asPlanned) {
      // Plan again with the tables whose rows may key their answers as they are, and the views it may
      // read in place read as subqueries.
      try {
        const replanned = this.parseForBatch(
          original,
          parsed.catalog,
          settings.rowTables,
          number,
          undefined,
          settings.inlineViews,
        );
        // (Planned again, nothing is batched, as a view read in place whose rows come from a volatile function: the
        // first plan, which took every table for a plain one, would read its rows by identity, which a view has not.)
        if ('forward' in replanned) return asIs();
        ({ target, plan } = replanned);
      } catch (error) {
        control.logger.warn({ err: error }, 'planning by row failed; results stay keyed by input');
      }
    }
    // A read-only block cannot build the lookup index: statements that read answers through it go per row.
    if (!settings.tablesMade && !settings.lookupIndex && needsLookupIndex(plan.groups)) return asIs();
    const planOnly = target.explain !== undefined && !target.explain.analyze;
    let figures: Map<CallGroup, BatchFigures> | undefined;
    let origins: ColumnDescription[] | undefined;
    const phases = { argumentsMs: 0, scoringTailMs: 0, loadTailMs: 0, numericRows: 0 };
    const batchStarted = performance.now();
    const failure = await this.guarded(
      control,
      plan.groups.map((g) => g.label),
      async (inTransaction) => {
        if (plan.inlinedViews.length > 0 && !target.explain) origins = await control.backend.columns(original);
        if (planOnly) {
          // EXPLAIN without ANALYZE calls nothing, but the rewritten statement must parse.
          await beginBatch(
            control,
            number,
            inTransaction,
            plan.groups.some((g) => g.rowIdentity),
            settings,
          );
          return;
        }
        figures = await computeBatchResults(
          plan.groups.map((group) => ({ group })),
          {
            control,
            services: this.context.services,
            memory: this.context.memory,
            statistics: this.context.statistics,
            settings,
            statementNumber: number,
            inTransaction,
            vouch: this.vouch,
            search: searchIn(plan, inTransaction && settings.oneSnapshot),
          },
          phases,
        );
      },
      { idleTimeouts: settings.idleTimeouts },
    );
    if (failure) {
      await this.clearStatementNumber(control);
      return this.reportFailure(control, failure, standalone);
    }
    const finalSql = target.finalSql(plan);
    const started = performance.now();
    const left = timeLeft(settings.timeoutMs, began, started);
    const inBlock = control.backend.status === 'T';
    // (A cursor declared outside a block fails as it would alone; one Query string would be a block to it.)
    const timed =
      left === undefined || (target.cursor && !inBlock)
        ? undefined
        : underTimeLeft(finalSql, left, settings.timeoutMs, inBlock);
    const explained = target.explain?.text
      ? explainRewrite(plan, figures, target.explain.analyze ? started - batchStarted : undefined)
      : undefined;
    const outcome = await this.relayStatement(
      control,
      queryMessage(timed?.sql ?? finalSql),
      (message) => {
        const shown = timed ? timed.hide(message) : message.bytes;
        if (shown && origins && message.type === ServerMessage.RowDescription) return withOrigins(shown, origins);
        return shown && explained ? explained(message) : shown;
      },
      finalSql,
    );
    this.context.statistics.lastStatement = {
      ...phases,
      statementMs: performance.now() - started,
      rows: [...(figures?.values() ?? [])].reduce((sum, f) => sum + f.rows, 0),
    };
    // A later statement the gateway leaves alone must call the services, not read these answers. Once the
    // client has its answer, as a follow-up: a cancel it sends on its CommandComplete then waits and goes
    // nowhere, as it finds PostgreSQL alone idle (sent on, it failed the clearing after the statement's success,
    // and in a block aborted the block). Before the next statement of a Query string, now: a cancel that aborts
    // the block then is the string's (see endInBlock).
    const cursor = Boolean(target.cursor);
    if (target.cursor && control.backend.status === 'T' && !outcome.failed) this.blockCursors.add(target.cursor);
    let lost: Buffer | undefined;
    if (standalone) control.afterIdle(() => endStatementNumberLater(control, cursor));
    else lost = await endStatementNumber(control, cursor);
    if (lost) control.toClient(lost);
    if (standalone) control.toClient(readyForQuery(control.backend.status));
    return !outcome.failed && !lost;
  }

  /**
   * Whether PostgreSQL accepts the statement as written (unknown columns,
   * functions, operators, a DISTINCT whose ORDER BY is not in its list…,
   * and the privileges on what it reads and writes: a column the user may
   * not read). If not, its error is the client's, and nothing is scored for a
   * statement that could never run.
   */
  private async analyzes(
    control: SessionControl,
    sql: string,
    standalone: boolean,
    privileges: 'bind' | 'explain',
  ): Promise<boolean> {
    try {
      await control.backend.analyze(sql, [], privileges);
      return true;
    } catch (error) {
      if (!(error instanceof BackendError) || error.raw.length === 0) throw error;
      // (Its position is in `sql`, one statement of the Query, maybe with Aurora's names mapped.)
      const written = this.queryText;
      const payload = written === undefined ? error.raw : errorAsWritten(error.raw, sql, written);
      return this.reportFailure(control, payload, standalone);
    }
  }

  /** Relays an EXPLAIN, adding the batch-mode lines to its text output. */
  /**
   * Runs the gateway's own work on the session before the client's statement,
   * under a savepoint inside a transaction block. On failure returns the
   * ErrorResponse to send (the session is then as a failed statement leaves it).
   */
  private async guarded(
    control: SessionControl,
    labels: string[],
    work: (inTransaction: boolean) => Promise<void>,
    { keepBlock = false, idleTimeouts }: { keepBlock?: boolean; idleTimeouts?: IdleTimeouts } = {},
  ): Promise<Buffer | undefined> {
    const inTransaction = control.backend.status === 'T';
    // A cancel that came while PostgreSQL was idle (the gateway planning, or between its own statements) reached
    // no statement there: it stops the gateway's work here.
    const cancelled = () => {
      if (control.signal.aborted) throw control.signal.reason;
    };
    let putBack: (() => Promise<void>) | undefined;
    try {
      cancelled();
      const timeouts = idleTimeouts ?? (await readIdleTimeouts(control.backend));
      const inBlock = inTransaction ? idleTimeoutsInBlock(timeouts) : undefined;
      if (inTransaction) await control.backend.query(`SAVEPOINT aws_ml_batch${inBlock ? `; ${inBlock.off}` : ''}`);
      else putBack = await pauseIdleTimeouts(control.backend, timeouts);
      await work(inTransaction);
      cancelled();
      await putBack?.();
      putBack = undefined;
      if (inTransaction)
        await control.backend.query(`${inBlock ? `${inBlock.back}; ` : ''}RELEASE SAVEPOINT aws_ml_batch`);
      return undefined;
    } catch (error) {
      this.context.statistics.recordError(labels);
      const failure = await this.fail(control, error, inTransaction, keepBlock);
      // (In a block the rollback to the savepoint put them back.)
      if (putBack && control.backend.status === 'I') {
        await pastCancel(putBack).catch((e: unknown) =>
          control.logger.warn({ err: e }, 'putting idle timeouts back failed'),
        );
      }
      return failure;
    }
  }

  /**
   * A batch failed: the statement fails as PostgreSQL's own would. Inside a
   * transaction block the gateway's work is rolled back to its savepoint and
   * the transaction is left aborted, exactly as a failed statement leaves it
   * (unless `keepBlock`: a statement slipped into the client's group fails
   * there instead, see failureBefore).
   */
  private async fail(
    control: SessionControl,
    error: unknown,
    inTransaction: boolean,
    keepBlock = false,
  ): Promise<Buffer> {
    const backend = control.backend;
    if (inTransaction) {
      await pastCancel(() => backend.query('ROLLBACK TO SAVEPOINT aws_ml_batch; RELEASE SAVEPOINT aws_ml_batch')).catch(
        () => undefined,
      );
      if (!keepBlock) await abortBlock(control, 'aws_ml batch call failed', '38000');
    }
    const payload =
      error instanceof BackendError && error.raw.length > 0
        ? withoutOwnContext(error.raw)
        : errorResponse({ ...asSqlError(error).toFields() });
    if (control.ended) control.logger.debug({ err: error }, 'batch mode stopped: the session ended');
    else if (!(error instanceof SqlError) && !(error instanceof BackendError)) {
      control.logger.error({ err: error }, 'batch mode failed');
    }
    return payload;
  }

  // ------------------------------------------------------------ extended protocol

  async handleExtended(control: SessionControl, group: Message[]): Promise<void> {
    const prepared = new Map(this.prepared);
    try {
      await this.extended(control, group);
    } catch (error) {
      // One of the gateway's own statements failed before the group went on: answer the
      // group with that error, as PostgreSQL answers a failed Parse, and forget what it prepared.
      const syncs = group.filter((m) => m.type === ClientMessage.Sync).length;
      if (!(error instanceof BackendError) || error.raw.length === 0 || syncs !== 1 || control.backend.busy)
        throw error;
      this.prepared.clear();
      for (const [name, entry] of prepared) this.prepared.set(name, entry);
      control.toClient([error.raw, readyForQuery(control.backend.status)]);
    }
  }

  /**
   * A group that executes a statement a StatementHandler carries out
   * (aws_s3.query_export_to_s3 with `$n`, as node-postgres, pgjdbc, psycopg
   * and asyncpg send it): the handler does its work with the bound values,
   * then the group goes to PostgreSQL with that Bind made of the SQL the
   * handler returned, prepared under a name of the gateway's own. Only a
   * group of one Sync that binds and executes that statement alone, after
   * nothing else is executed (Parse, Describe and Close around it); another
   * goes as it came, where PostgreSQL's function says the export must go
   * through the gateway. Returns whether it answered the group.
   */
  private async handledExtended(control: SessionControl, group: Message[]): Promise<boolean> {
    const parsedHere = new Map<string, HandledStatement | undefined>();
    const out = group.map((m) => m.bytes);
    /** The group's last Parse of the unnamed statement, as the server gets it. */
    let unnamedParse: Buffer | undefined;
    for (const [i, message] of group.entries()) {
      if (message.type !== ClientMessage.Parse) continue;
      const parse = readParse(message.bytes);
      // (Names first: most statements are not the handlers'. Text the gateway cannot read faithfully goes as it came.)
      const mentioned =
        this.mentionsHandled(parse.sql) && readsExactly(control, message.bytes, parseTextStart(message.bytes));
      const rewritten = mentioned ? rewriteStatementText(parse.sql) : undefined;
      const handled = rewritten === undefined ? undefined : this.handlerFor(rewritten);
      parsedHere.set(parse.name, handled && { ...handled, sql: rewritten!, declaredTypes: parse.paramTypes });
      if (handled && rewritten !== parse.sql) {
        out[i] = noteWrittenText(parseMessage(parse.name, rewritten!, parse.paramTypes), parse.sql);
      }
      if (parse.name === '') unnamedParse = out[i];
    }
    for (const [name, handled] of parsedHere) {
      if (!handled) {
        this.handledStatements.delete(name);
        continue;
      }
      this.handledStatements.set(name, handled);
      // (Answered here or in extended(): either way it is no statement with ML calls any more.)
      this.prepared.delete(name);
      // What the unnamed statement is, to prepare it again where a later group binds it (see forwardAfterOwnWork).
      if (name === '')
        this.unnamedPlain = { bytes: Buffer.from(unnamedParse!), ownOperations: control.backend.operations };
    }
    const bindsHandled = (m: Message) =>
      m.type === ClientMessage.Bind && this.handledStatements.has(bindStatementName(m.bytes));
    if (!group.some(bindsHandled) || control.backend.status === 'E') return false;
    // (pgjdbc with autocommit off sends BEGIN with a transaction's first statement, prepared by name after a few:
    // the block is opened first.)
    const opening =
      control.backend.status === 'I' ? blockOpening(group) || (await this.namedBlockOpening(control, group)) : 0;
    const rest = group.slice(opening);
    const binds = rest.flatMap((m, index) => (m.type === ClientMessage.Bind ? [{ index, ...readBind(m.bytes) }] : []));
    const bind = binds[0];
    const handled = bind && this.handledStatements.get(bind.statement);
    const syncs = rest.filter((m) => m.type === ClientMessage.Sync).length;
    if (!handled || binds.length !== 1 || syncs !== 1 || out.at(-1)?.[0] !== ClientMessage.Sync) return false;
    const opened = out.slice(0, opening);
    out.splice(0, opening);
    const executesAt = executedLater(out, bind.index, bind.portal);
    const onlyExecute = rest.every((m, i) => m.type !== ClientMessage.Execute || i === executesAt);
    if (executesAt < 0 || !onlyExecute) return false;
    const repliesBeforeBind = repliesBefore(out, bind.index);
    const repliesBeforeExecute = repliesBefore(out, executesAt);
    if (repliesBeforeBind === undefined || repliesBeforeExecute === undefined) return false;
    // Prepared in an earlier group: still that statement on the server (DEALLOCATE or DISCARD may have dropped it).
    // The unnamed one is the client's as long as it is tracked: a Query or another Parse of it stops that. The
    // gateway's own statements may have dropped it on the server since: it is prepared again where the Bind needs
    // it (see forwardAfterOwnWork).
    const parsedEarlier = !parsedHere.has(bind.statement);
    const rebindsUnnamed = parsedEarlier && bind.statement === '';
    const stillPrepared = async () => (await preparedText(control, bind.statement)) === handled.sql;
    if (rebindsUnnamed ? !this.unnamedPlain : parsedEarlier && !(await stillPrepared())) {
      this.handledStatements.delete(bind.statement);
      return false;
    }
    if (opening > 0) {
      const begun = await control.relay([...opened, syncMessage()], (message) => message.bytes);
      if (begun.failed) {
        // PostgreSQL skips the rest of the group after an error, up to its Sync.
        control.toClient(readyForQuery(begun.status));
        return true;
      }
    }
    const types = await control.backend.parameterTypes(handled.sql, handled.declaredTypes);
    let finalSql = '';
    const failure = await this.guarded(
      control,
      [],
      async () => {
        finalSql = await handled.handler.prepare(control, handled.stmt, {
          values: bind.params,
          formats: bind.paramFormats,
          types,
        });
      },
      { keepBlock: true },
    );
    if (failure) {
      // The client's own Bind goes to the server, which fails at the Execute.
      const unnamed = { plainBound: rebindsUnnamed, parsed: unnamedParse };
      const injection = failureBefore(executesAt, repliesBeforeExecute, failure);
      await this.forwardAfterOwnWork(control, out, 1, unnamed, injection);
      await control.relay([closeMessage('S', BATCH_FAILURE), syncMessage()], () => null);
      return true;
    }
    out[bind.index] = bindMessage(bind.portal, HANDLED, bind.params, bind.paramFormats, bind.resultFormats);
    const injection: Injection = {
      at: bind.index,
      messages: [closeMessage('S', HANDLED), parseMessage(HANDLED, finalSql, types)],
      repliesBefore: repliesBeforeBind,
      replies: 2, // CloseComplete, ParseComplete
      after: async (session) => {
        await session.relay([closeMessage('S', HANDLED), syncMessage()], () => null);
      },
    };
    await this.forwardAfterOwnWork(control, out, 1, { plainBound: false, parsed: unnamedParse }, injection);
    return true;
  }

  /**
   * The messages that open a block at the start of a group (see blockOpening)
   * when they bind a statement prepared by name in an earlier group, which
   * the server is asked about: pgjdbc's `BEGIN` after prepareThreshold.
   */
  private async namedBlockOpening(control: SessionControl, group: Message[]): Promise<number> {
    const [first, second, third] = group;
    if (first?.type !== ClientMessage.Bind) return 0;
    const { statement, portal } = readBind(first.bytes);
    if (statement === '' || this.handledStatements.has(statement)) return 0;
    const execute = second?.type === ClientMessage.Describe ? third : second;
    if (execute?.type !== ClientMessage.Execute || executePortalName(execute.bytes) !== portal) return 0;
    const sql = await preparedText(control, statement);
    if (!sql) return 0;
    const parse = parseMessage(statement, sql);
    const opens = [{ type: parse[0], bytes: parse }, ...group.slice(0, group.indexOf(execute) + 1)];
    return blockOpening(opens) > 0 ? group.indexOf(execute) + 1 : 0;
  }

  /** Whether a statement's text names a StatementHandler's function (a cheap look before parsing). */
  private mentionsHandled(sql: string): boolean {
    const lower = sql.toLowerCase();
    return (this.context.handlers ?? []).some((h) => h.names.some((n) => lower.includes(n)));
  }

  private async extended(control: SessionControl, group: Message[]): Promise<void> {
    const began = performance.now();
    if (await this.handledExtended(control, group)) return;
    const { catalog, pattern } = await this.catalog(control.backend);
    const out: Buffer[] = [];
    const binds: {
      name: string;
      entry: PreparedMl;
      params: { values: (Buffer | null)[]; formats: number[] };
      /** Where the Bind is in the group. */
      index: number;
      portal: string;
    }[] = [];
    let syncs = 0;
    /** The unnamed statement, prepared in an earlier group, that a Bind here uses (see UnnamedUse). */
    const unnamed: UnnamedUse = { plainBound: false };
    // Statements prepared in this group to read batch results, and their plain form (see read-only below).
    const batchParses: { index: number; plain: Buffer; parse: ReturnType<typeof readParse>; entry: PreparedMl }[] = [];
    /** A statement of the group may change how PostgreSQL reads the text of those parsed after it. */
    let readingChanged = false;
    /**
     * Where the first statement that may change what later ones read (see changesLaterStatements) is executed,
     * and the statements parsed here and portals bound here that are such.
     */
    let changedAt = -1;
    const changingStatements = new Set<string>();
    const changingPortals = new Set<string>();
    /** Statements with ML calls bound after it. */
    const boundAfterChange = new Set<PreparedMl>();
    for (const message of group) {
      if (message.type === ClientMessage.Sync) syncs += 1;
      if (
        message.type === ClientMessage.Parse &&
        (readingChanged || !readsExactly(control, message.bytes, parseTextStart(message.bytes)))
      ) {
        // Not read faithfully, so not rewritten or batched: PostgreSQL gets the statement as it came.
        this.prepared.delete(readParse(message.bytes).name);
        if (message.bytes[5] === 0) unnamed.parsed = message.bytes;
        out.push(message.bytes);
        continue;
      }
      if (message.type === ClientMessage.Parse) {
        const parse = readParse(message.bytes);
        const refusal = refusedSettingSql(parse.sql);
        if (refusal) {
          this.prepared.delete(parse.name);
          out.push(parseMessage(parse.name, refusal, parse.paramTypes));
          if (parse.name === '') unnamed.parsed = out[out.length - 1];
          continue;
        }
        if (parseChangesReading(parse.sql)) readingChanged = true;
        const rewritten = rewriteStatementText(parse.sql);
        const firstGroupId = this.nextGroupId;
        // After such a statement the group's statements are not scored up front: they go as written, per row.
        const parsed =
          changedAt < 0 && pattern.test(parse.sql)
            ? this.parseForBatch(
                rewritten,
                { ...catalog, paramTypes: parse.paramTypes },
                undefined,
                undefined,
                firstGroupId,
              )
            : undefined;
        if (parsed && !('forward' in parsed) && !parsed.target.explain) {
          const serverSql = parsed.target.finalSql(parsed.plan);
          const entry = {
            target: parsed.target,
            plan: parsed.plan,
            serverSql,
            declaredTypes: parse.paramTypes,
            plainSql: rewritten,
            firstGroupId,
            writes: writesWithParallelPlan(rewritten),
            catalog,
          };
          this.prepared.set(parse.name, entry);
          if (parse.name === '') unnamed.parsed = null;
          batchParses.push({
            index: out.length,
            plain:
              rewritten === parse.sql
                ? message.bytes
                : noteWrittenText(parseMessage(parse.name, rewritten, parse.paramTypes), parse.sql),
            parse: { ...parse, sql: rewritten },
            entry,
          });
          out.push(noteWrittenText(parseMessage(parse.name, serverSql, parse.paramTypes), parse.sql));
        } else {
          this.prepared.delete(parse.name);
          // (In a block, read on this session until it ends, and again after: its tag may not say it was DDL.)
          if (parsed && 'forward' in parsed && parsed.forward === 'ddl') this.noteDdl();
          out.push(
            rewritten === parse.sql
              ? message.bytes
              : noteWrittenText(parseMessage(parse.name, rewritten, parse.paramTypes), parse.sql),
          );
          if (parse.name === '') unnamed.parsed = out[out.length - 1];
        }
        if (changesLaterStatements(parse.sql, catalog)) changingStatements.add(parse.name);
        else changingStatements.delete(parse.name);
        continue;
      }
      if (message.type === ClientMessage.Bind) {
        const bind = readBind(message.bytes);
        const entry = this.prepared.get(bind.statement);
        if (entry)
          binds.push({
            name: bind.statement,
            entry,
            params: { values: bind.params, formats: bind.paramFormats },
            index: out.length,
            portal: bind.portal,
          });
        if (entry && changedAt >= 0) boundAfterChange.add(entry);
        if (changingStatements.has(bind.statement)) changingPortals.add(bind.portal);
        else changingPortals.delete(bind.portal);
        if (entry && bind.statement === '' && !group.some((m) => m.type === ClientMessage.Parse && m.bytes[5] === 0)) {
          unnamed.ml = entry;
        }
        if (!entry && bind.statement === '' && unnamed.parsed === undefined) unnamed.plainBound = true;
      }
      if (
        message.type === ClientMessage.Execute &&
        changedAt < 0 &&
        changingPortals.has(executePortalName(message.bytes))
      ) {
        changedAt = out.length;
      }
      out.push(message.bytes);
    }
    const endsWithSync = group[group.length - 1].type === ClientMessage.Sync;
    const status = control.backend.status;
    if (boundAfterChange.size > 0 && status !== 'E') {
      // Bound after a change, a statement runs as written, in the whole group: its server text may inline a wrapper
      // replaced since, read results tables a ROLLBACK or DISCARD took, or read answers its earlier Bind stored
      // under the group's one statement number. One prepared in an earlier group is prepared again as written.
      const parsedHere = batchParses.filter((p) => boundAfterChange.has(p.entry));
      this.parsesAsWritten(parsedHere, binds, out, unnamed);
      batchParses.splice(0, batchParses.length, ...batchParses.filter((p) => !boundAfterChange.has(p.entry)));
      const earlier = new Map(binds.filter((b) => boundAfterChange.has(b.entry)).map((b) => [b.name, b]));
      // One PostgreSQL refuses as written now (a column it reads dropped) keeps the server's copy, unscored: it
      // fails where its Execute comes, after what the group runs before it (a COMMIT), as PostgreSQL's own would.
      const asWritten: { name: string; entry: PreparedMl }[] = [];
      const kept = new Set<PreparedMl>();
      for (const bound of earlier.values()) {
        const { plainSql, declaredTypes } = bound.entry;
        if (await this.accepts(control, () => control.backend.analyze(plainSql, declaredTypes))) asWritten.push(bound);
        else kept.add(bound.entry);
      }
      binds.splice(0, binds.length, ...binds.filter((b) => !kept.has(b.entry)));
      if (asWritten.length > 0 && !(await this.asWrittenFromNowOn(control, asWritten, binds, unnamed, syncs))) {
        return;
      }
    }
    // A group that opens a block and then runs statements with ML calls (pgjdbc with autocommit off sends BEGIN
    // with a transaction's first statement) is scored in the block, which is opened first: the argument queries
    // read the statement's now(), not one of their own, and the statement's number is set inside the block. Set
    // before it, the number would be the session's own, which the block's ROLLBACK puts back: a later statement
    // of the group that bound it (a ROLLBACK prepared by name earlier) would read its answers, however old.
    // (A read-only block cannot make the results tables: one is opened first once the session has them.)
    const tablesMade = Boolean(this.resultsTables.byInput && this.resultsTables.byRow);
    const opening = syncs === 1 && endsWithSync && status === 'I' ? blockOpening(group, { readWrite: !tablesMade }) : 0;
    if (opening > 0 && (batchParses.length > 0 || binds.length > 0)) {
      const opened = await control.relay([...out.slice(0, opening), syncMessage()], (message) => message.bytes);
      if (opened.failed) {
        // PostgreSQL skips the rest of the group after an error, up to its Sync: nothing of it is prepared.
        for (const { parse, entry } of batchParses) {
          if (this.prepared.get(parse.name) === entry) this.prepared.delete(parse.name);
        }
        control.toClient(readyForQuery(opened.status));
        return;
      }
      out.splice(0, opening);
      for (const item of [...binds, ...batchParses]) item.index -= opening;
    }
    // A group ending in Flush is answered as it goes, the Sync that ends it coming later. One that binds statements
    // with ML calls (a portal read in pieces by later groups, as pg-cursor reads it) is scored before it goes; one
    // that only parses them learns their parameter types before binding them (postgres.js does): the results tables
    // they read are made first.
    const describedFirst = !endsWithSync && binds.length === 0 && batchParses.length > 0;
    if ((batchParses.length === 0 && binds.length === 0) || failedBlock(control)) {
      // Nothing of the gateway's own runs here, but earlier groups' may have dropped a plain unnamed statement.
      await this.forwardAfterOwnWork(control, out, syncs, { ...unnamed, ml: undefined });
      return;
    }
    await this.refreshStale(control, out, binds, unnamed, catalog);
    const settings = await readSettings(
      control,
      { tables: this.resultsTables, endpointNoOp: Boolean(catalog.endpointNoOp) },
      binds.flatMap((b) => tablesOf(b.entry.target.query)),
      binds.flatMap((b) => b.entry.plan.groups.flatMap((g) => g.sites.map((site) => privilegeCheck(site.call)))),
      [
        ...new Set([
          ...batchParses.flatMap((p) => p.entry.plan.rowIdentityTables),
          ...binds.flatMap((b) => rowTablesOf(b.entry.plan)),
        ]),
      ],
      // (Each view a bound statement reads, in place or not: its name may find another view now.)
      [...batchParses, ...binds].flatMap((p) => p.entry.plan.viewReads),
      [...batchParses, ...binds].flatMap((p) => p.entry.plan.wrappers),
      binds.map((b) => b.entry.plan.keyRead),
    );
    this.reported.currentUser = settings.currentUser || undefined;
    // A statement that reads a view in place no longer may (a privilege revoked, the name now meaning
    // another relation): prepared again as written, PostgreSQL checks it as the view.
    const lostViews = binds.filter((b) => b.entry.plan.inlinedViews.some((v) => !settings.inlineViews.has(v.written)));
    if (lostViews.length > 0 && control.backend.status !== 'E') {
      if (!(await this.asWrittenFromNowOn(control, lostViews, binds, unnamed, syncs))) return;
    }
    if (settings.staleDefinitions) {
      // A view or wrapper was changed where the gateway did not see it: nothing is batched in this group.
      // Statements that inlined a wrapper have its old body: those this group parses go as written, those
      // prepared earlier are planned again from the catalog as it is now (as after DDL the gateway sees;
      // one PostgreSQL refuses now keeps its name, for PostgreSQL to refuse at the Bind).
      this.catalogChanged();
      this.parsesAsWritten(
        batchParses.filter((p) => p.entry.plan.wrappers.length > 0),
        binds,
        out,
        unnamed,
      );
      await this.refreshStale(control, out, binds, unnamed, (await this.catalog(control.backend)).catalog);
      await this.forwardAfterOwnWork(control, out, syncs, unnamed);
      return;
    }
    if (!settings.extensionReady) {
      // Without the extension (not made in this database yet, or dropped since) the statements go as written, and
      // PostgreSQL says what is missing: the batch form would name the gateway's results table instead.
      this.parsesAsWritten(batchParses, binds, out, unnamed);
      batchParses.length = 0;
      if (binds.length > 0 && !(await this.asWrittenFromNowOn(control, [...binds], binds, unnamed, syncs))) return;
      await this.forwardAfterOwnWork(control, out, syncs, unnamed);
      return;
    }
    await ensureResultsTables(control, settings, settings.rowTables.size > 0, this.tableRefusals);
    const { byInput, byRow } = settings.resultsTables;
    if (!settings.tablesMade && !byInput && batchParses.length > 0) {
      // A read-only block cannot make the results table: statements prepared
      // here are prepared as written instead and take the per-row path.
      this.parsesAsWritten(batchParses, binds, out, unnamed);
      batchParses.length = 0;
    }
    if (!settings.tablesMade && binds.length > 0) {
      // Statements prepared earlier read results tables that a rolled-back block took with it, and
      // this read-only block cannot make them again: they are prepared again as written (per-row path).
      const stale = binds.filter((b) => !byInput || (!byRow && rowTablesOf(b.entry.plan).length > 0));
      if (stale.length > 0 && !(await this.asWrittenFromNowOn(control, stale, binds, unnamed, syncs))) return;
    }
    if ((!settings.tablesMade && binds.length === 0) || describedFirst) {
      await this.forwardAfterOwnWork(control, out, syncs, unnamed);
      return;
    }
    // (Whether each statement bound reads one row at most: read by bind, as statements may go as written below.)
    const readsOneRow = new Map(binds.map((b, i) => [b, settings.oneRow[i]]));
    const asWritten: typeof batchParses = [];
    for (const prepared of batchParses) {
      // Views are read in place only by an unnamed statement, bound in the group that parses it, with batch
      // mode on: a named one would outlive the view's changes, which PostgreSQL no longer ties to it.
      const inPlace = prepared.parse.name === '' && settings.batchable ? settings.inlineViews : new Set<string>();
      if (await this.prepareByRow(control, prepared, out, catalog, settings.rowTables, inPlace))
        asWritten.push(prepared);
    }
    if (asWritten.length > 0) {
      this.parsesAsWritten(asWritten, binds, out, unnamed);
      batchParses.splice(0, batchParses.length, ...batchParses.filter((p) => !asWritten.includes(p)));
    }
    // Each statement executed reads one row at the most, by a unique key: made per row (see runBatchStatement), by
    // the statements as prepared, whose joins find no answers and call the functions.
    const oneRowEach = binds.every((b) => readsOneRow.get(b) && !b.entry.target.cursor && !b.entry.target.explain);
    if (binds.length > 0 && oneRowEach) {
      await this.forwardAfterOwnWork(control, out, syncs, unnamed);
      return;
    }
    // As for a simple query (see writesWithParallelPlan): CREATE TABLE AS, REFRESH … run without parallel plans.
    // A group that runs that one statement is set up before; in one that opens a block first (pgjdbc
    // with autocommit off) the setting is made LOCAL inside the group, right before the statement.
    const entries = [...batchParses.map((p) => p.entry), ...binds.map((b) => b.entry)];
    const executes = group.filter((m) => m.type === ClientMessage.Execute).length;
    let injection: Injection | undefined;
    if (executes === 1 && entries.some((entry) => entry.writes)) {
      await withoutParallelPlans(control);
    } else if (executes > 1) {
      const writing = binds.find((b) => b.entry.writes);
      if (writing) injection = noParallelPlansAfterBegin(group, writing.index);
    }
    const number = this.numberStatement();
    const labels = binds.flatMap((b) => b.entry.plan.groups.map((g) => g.label));
    const rowResults = entries.some((entry) => rowTablesOf(entry.plan).length > 0);
    const phases = { argumentsMs: 0, scoringTailMs: 0, loadTailMs: 0, numericRows: 0 };
    let rowsScored = 0;
    // Only what the group executes is scored: a portal bound and not executed here runs no call in it. (One bound in
    // a group ended by Flush is read by the client's next groups, as pg-cursor reads it: scored now.)
    const executed = endsWithSync ? binds.filter((b) => executedLater(out, b.index, b.portal) >= 0) : binds;
    // A failure is reported where PostgreSQL would report it, inside the group, when the group allows it: at the
    // first Execute of a statement with ML calls (in a group ended by Flush, before the Flush when none is there).
    const executesAt = executed.length > 0 ? executedLater(out, executed[0].index, executed[0].portal) : -1;
    // (A group ended by Flush that executes nothing yet: see below.)
    const failingExecute = !endsWithSync && executesAt < 0 && executed.length > 0 ? out.length - 1 : executesAt;
    const repliesBeforeFailure = failingExecute > 0 ? repliesBefore(out, failingExecute) : undefined;
    const failsInPlace = ((syncs === 1 && endsWithSync) || syncs === 0) && repliesBeforeFailure !== undefined;
    const onlyMl = group.filter((m) => m.type === ClientMessage.Bind).length === binds.length;
    // Inputs read from the transaction's start (now()…) are the same in the argument queries and in the group's
    // statements only in one transaction: outside a block the gateway opens one, and ends it after the group.
    // (Only for a group of statements with ML calls: another could be one that a block changes, or end it.)
    // A LIMIT after an ML condition (see SteppedLimit) is searched where the group executes its statement alone.
    // With an ORDER BY the statement reads only the rows answered, so its search and itself must read one snapshot:
    // in a block that gives one, or, outside a block, in the gateway's own.
    const searched = executes === 1 && executed.length === 1 ? executed[0] : undefined;
    const stepping = searchedLimit(searched?.entry.plan);
    const snapshot =
      stepping?.ordered && control.backend.status === 'I' && !settings.readOnly
        ? await snapshotBegin(control)
        : undefined;
    const ownSnapshot = snapshot !== undefined;
    const ownBlock =
      control.backend.status === 'I' &&
      settings.batchable &&
      onlyMl &&
      syncs === 1 &&
      endsWithSync &&
      !injection &&
      executed.length > 0 &&
      !executed.some((b) => b.entry.target.cursor) &&
      (ownSnapshot || executed.some((b) => readsStartTime(b.entry.target.query, b.entry.plan)));
    if (ownBlock) await control.backend.query(snapshot ?? 'BEGIN');
    // (Outside a block each statement reads its own snapshot, whatever the isolation level.)
    const oneSnapshot = ownSnapshot ? ownBlock : control.backend.status === 'T' && settings.oneSnapshot;
    const searchable = searched && searchIn(searched.entry.plan, oneSnapshot)?.limit;
    let search: LimitSearch | undefined;
    const failure = await this.guarded(
      control,
      labels,
      async (inTransaction) => {
        // The results tables exist before a statement that reads them is described or parsed.
        await beginBatch(control, number, inTransaction, rowResults, settings);
        // Without batch mode the rewritten statement still parses and falls back to per-row calls.
        if (!settings.batchable || executed.length === 0) return;
        const work: ArgumentWork[] = [];
        // The Executes of one group read one statement number: rows stored for a statement bound twice with
        // different values could not be told apart if its calls read the values, so those are answered per row.
        // (Those that do not, as `INSERT … SELECT f(doc) FROM t WHERE batch = $1` in pgjdbc's executeBatch, answer
        // each row alike whatever the values: a row read for two Binds is stored once.)
        const ambiguous = new Set(
          binds
            .filter((b) => binds.some((o) => o.entry === b.entry && !sameValues(o.params, b.params)))
            .map((b) => b.entry),
        );
        const accepted = new Map<PreparedMl, boolean>();
        for (const [i, { entry, params, index }] of executed.entries()) {
          // Bound again with the same values: its answers are already there.
          if (executed.slice(0, i).some((o) => o.entry === entry && sameValues(o.params, params))) continue;
          // PostgreSQL refuses it in a read-only transaction, or (a DECLARE) outside a block: nothing to score for it.
          if (settings.readOnly && entry.target.writes) continue;
          if (entry.target.inBlockOnly && control.backend.status !== 'T') continue;
          const inferTypes = async () => {
            entry.inferredTypes = await control.backend.parameterTypes(entry.serverSql, entry.declaredTypes);
          };
          // PostgreSQL refuses it at its Parse (a column or table that is not there): nothing to score for it, and
          // what the group executes before it answers, then the group fails there, as it does without the gateway.
          // (The check costs a savepoint in a block: only when something is executed before; else the group fails
          // whole, as there.)
          if (!entry.inferredTypes) {
            const parsedAt = batchParses.find((p) => p.entry === entry)?.index ?? index;
            const executesBefore = out.slice(0, parsedAt).some((m) => m[0] === ClientMessage.Execute);
            if (!executesBefore) await inferTypes();
            else if (!(await this.accepts(control, inferTypes, notAnalyzable))) continue;
          }
          // PostgreSQL refuses it as bound (a column the role may not read or write, a value its type does not
          // take): nothing is scored (or billed) for it, and PostgreSQL says so where it runs. (Once per statement:
          // privileges do not depend on the values.)
          const { checkedBy, mayRun: condition } = entry.target;
          if (!accepted.has(entry)) {
            const may = !condition || (await mayRun(control, condition));
            accepted.set(entry, may && (!checkedBy || (await takesAsBound(control, entry, checkedBy, params))));
          }
          if (accepted.get(entry) === false) continue;
          entry.typeNames ??= await typeNames(control, entry.inferredTypes!);
          const bound = {
            ...params,
            types: entry.inferredTypes!,
            typeNames: entry.typeNames.names,
            baseTypeNames: entry.typeNames.bases,
          };
          // Answers stored by row are read only while the table still qualifies, and only for values
          // that read the same in the statement as in its argument query: 'now' does, but only in
          // the same transaction block (it is the transaction's start).
          const steady = inTransaction || readsTheSameLater(bound);
          for (const planned of entry.plan.groups) {
            const byRow = steady && !(ambiguous.has(entry) && readsParameters(planned));
            if (planned.rowIdentity && !(settings.rowTables.has(planned.rowIdentity.table) && byRow)) continue;
            work.push({ group: planned, params: bound });
          }
          if (searchable && entry === searched?.entry) search = { limit: searchable, params: bound };
        }
        // A read-only block cannot build the lookup index: answers read through it are left to the per-row path.
        if (!settings.tablesMade && !settings.lookupIndex && needsLookupIndex(work.map((w) => w.group))) return;
        const figures = await computeBatchResults(
          work,
          {
            control,
            services: this.context.services,
            memory: this.context.memory,
            statistics: this.context.statistics,
            settings,
            statementNumber: number,
            inTransaction,
            begun: true,
            vouch: this.vouch,
            search,
          },
          phases,
        );
        for (const groupFigures of figures.values()) rowsScored += groupFigures.rows;
      },
      { keepBlock: failsInPlace, idleTimeouts: settings.idleTimeouts },
    );
    if (failure) {
      // (The group then fails as it would have outside a block.)
      if (ownBlock) await control.backend.query('ROLLBACK');
      await this.clearStatementNumber(control);
      const runsBefore = out.slice(0, Math.max(failingExecute, 0)).some((m) => m[0] === ClientMessage.Execute);
      if (failsInPlace && stopsAtOnce(failure) && !runsBefore) {
        // A cancel (or a lock or statement timeout) stopped the gateway's work: the group fails at its start, as if
        // PostgreSQL had met it at its first message. The statement's own Parse and Bind, sent now, would wait for
        // what it waits for (a lock another session holds) with no cancel left to stop it. (A group that runs
        // statements before it, a SAVEPOINT say, has them run first, as PostgreSQL would.)
        if (control.backend.status === 'T') await abortBlock(control, 'aws_ml batch call stopped', '57014');
        if (endsWithSync) this.reportFailure(control, failure, true);
        else control.failUntilSync(failure);
        return;
      }
      if (!endsWithSync && executesAt < 0 && failsInPlace && control.backend.status !== 'E') {
        // Nothing is executed here yet, and a portal bound may never be: the group goes unscored, its calls made per
        // row if the client reads the portal, where PostgreSQL raises what they raise.
        await this.forwardAfterOwnWork(control, out, syncs, unnamed);
        return;
      }
      if (!endsWithSync && !(failsInPlace && control.backend.status !== 'E')) {
        control.failUntilSync(failure);
        return;
      }
      if (failsInPlace && control.backend.status !== 'E') {
        const injection = failureBefore(failingExecute, repliesBeforeFailure!, failure);
        if (!endsWithSync) {
          // What came before the failure runs and answers; the gateway's own Sync ends the group (its ReadyForQuery
          // unseen), and the client's messages up to its Sync are skipped, as PostgreSQL skips them after an error.
          const upToFailure = [...out.slice(0, failingExecute), syncMessage()];
          await this.forwardAfterOwnWork(control, upToFailure, 1, unnamed, injection, false, false);
          await control.relay([closeMessage('S', BATCH_FAILURE), syncMessage()], () => null);
          control.failUntilSync();
          return;
        }
        await this.forwardAfterOwnWork(control, out, syncs, unnamed, injection);
        // The failure skipped what would close the slipped statement: closed now, its replies unseen.
        await control.relay([closeMessage('S', BATCH_FAILURE), syncMessage()], () => null);
      } else {
        // (Unless it fails in place, guarded left the block aborted already.)
        this.reportFailure(control, failure, true);
      }
      return;
    }
    this.context.statistics.lastStatement = { ...phases, rows: rowsScored };
    // What is left of statement_timeout, for the group's statements only when they all had their calls batched.
    const left = settings.batchable && executed.length > 0 && onlyMl ? timeLeft(settings.timeoutMs, began) : undefined;
    if (left !== undefined && control.backend.status === 'T') {
      await timeLeftInBlock(control, left);
    } else if (left !== undefined && !injection && !executed.some((b) => b.entry.target.cursor)) {
      // (Not before a cursor's DECLARE: a group of two statements is a pipeline, where PostgreSQL lets
      // DECLARE run outside a block.)
      injection = timeLeftForGroup(left);
    }
    await this.forwardAfterOwnWork(control, out, syncs, unnamed, injection, ownBlock);
    // An execution the gateway does not prepare (after a Flush, SQL EXECUTE) must not read this
    // one's answers, stored by row for these values: no statement number is current after it. (A cursor
    // declared here reads them at its FETCHes, until its block ends.)
    const cursor = executed.some((b) => b.entry.target.cursor);
    control.afterIdle(() => endStatementNumberLater(control, cursor));
  }

  /**
   * Hands the group to PostgreSQL after the gateway ran statements of its own.
   * Those drop the unnamed prepared statement, so one the client prepared in
   * an earlier group and binds here is parsed again first, its ParseComplete
   * kept from the client (for a group ending in its one Sync, outside a failed
   * block; others go as they are).
   */
  private async forwardAfterOwnWork(
    control: SessionControl,
    out: Buffer[],
    syncs: number,
    unnamed: UnnamedUse = { plainBound: false },
    injection?: Injection,
    ownBlock = false,
    answerSync = true,
  ): Promise<void> {
    const ownOperations = control.backend.operations;
    for (const message of out) {
      if (message[0] === ClientMessage.Parse && NAMES_EXTENSION_SCHEMA.test(readParse(message).sql)) {
        noteExtensionHint(message);
      }
    }
    const plain = unnamed.plainBound && this.unnamedPlainGone(ownOperations) ? this.unnamedPlain : undefined;
    const reparse = unnamed.ml ? parseMessage('', unnamed.ml.serverSql, unnamed.ml.declaredTypes) : plain?.bytes;
    // (The unnamed statement prepared in an earlier group describes its columns as written, as there.)
    const origins = unnamed.ml?.origins;
    const prepared = origins ? new Map([['', origins]]) : undefined;
    const endsWithSync = out[out.length - 1]?.[0] === ClientMessage.Sync;
    if ((!reparse && !injection && !ownBlock) || syncs !== 1 || !endsWithSync || control.backend.status === 'E') {
      if (reparse && control.backend.status !== 'E') {
        // (A group ended by Flush, or by several Syncs: the statement is parsed again in a round trip of its own.)
        await control.relay([reparse, syncMessage()], () => null);
        if (plain) plain.ownOperations = ownOperations;
      }
      control.forward(out, syncs, new ClientErrors(out, prepared));
    } else {
      let parseHidden = !reparse;
      const hide = injection ? hideInjectedReplies(injection) : (message: Message) => message.bytes;
      const errors = new ClientErrors(out, prepared);
      const keep = (message: Message) => {
        const shown = hide(message);
        return shown && errors.reply(shown);
      };
      const messages = injection
        ? [...out.slice(0, injection.at), ...injection.messages, ...out.slice(injection.at)]
        : out;
      const outcome = await control.relay(reparse ? [reparse, ...messages] : messages, (message) => {
        if (parseHidden || message.type !== ServerMessage.ParseComplete) return keep(message);
        parseHidden = true;
        return null;
      });
      await injection?.after?.(control, outcome.status).catch((error: unknown) => {
        control.logger.warn({ err: error }, 'putting a setting back after the group failed');
      });
      if (ownBlock) await endOwnBlock(control);
      if (answerSync) control.toClient(readyForQuery(control.backend.status));
      if (plain && reparse) plain.ownOperations = ownOperations;
    }
    // What the server holds as the unnamed statement from here on.
    if (unnamed.parsed !== undefined) {
      this.unnamedPlain = unnamed.parsed ? { bytes: Buffer.from(unnamed.parsed), ownOperations } : undefined;
    }
  }

  /**
   * Prepares statements again under their names in the form the client wrote,
   * in a round trip of the gateway's own, and stops tracking them. Returns the
   * server's error if it refused.
   */
  private async prepareAsWritten(
    control: SessionControl,
    statements: { name: string; entry: PreparedMl }[],
  ): Promise<Buffer | undefined> {
    const byName = new Map(statements.map((s) => [s.name, s.entry]));
    let error: Buffer | undefined;
    await control.relay(
      [
        ...[...byName].flatMap(([name, entry]) => [
          closeMessage('S', name),
          parseMessage(name, entry.plainSql, entry.declaredTypes),
        ]),
        syncMessage(),
      ],
      (message) => {
        if (message.type === ServerMessage.ErrorResponse) error ??= message.bytes;
        return null;
      },
    );
    for (const [name, entry] of byName) if (this.prepared.get(name) === entry) this.prepared.delete(name);
    const unnamed = byName.get('');
    if (unnamed && !error) {
      const bytes = parseMessage('', unnamed.plainSql, unnamed.declaredTypes);
      this.unnamedPlain = { bytes, ownOperations: control.backend.operations };
    }
    return error;
  }

  /**
   * Statements this group parses go to the server as written instead (and
   * take the per-row path); their Binds leave the group's batch work.
   */
  private parsesAsWritten(
    parses: { index: number; plain: Buffer; parse: ReturnType<typeof readParse>; entry: PreparedMl }[],
    binds: { entry: PreparedMl }[],
    out: Buffer[],
    unnamed: UnnamedUse,
  ): void {
    for (const parse of parses) {
      out[parse.index] = parse.plain;
      if (this.prepared.get(parse.parse.name) === parse.entry) this.prepared.delete(parse.parse.name);
    }
    const swapped = new Set(parses.map((p) => p.entry));
    binds.splice(0, binds.length, ...binds.filter((b) => !swapped.has(b.entry)));
    // The server now gets the group's last unnamed statement as written: one to parse again later.
    const lastUnnamed = parses.filter((p) => p.parse.name === '').at(-1);
    if (unnamed.parsed === null && lastUnnamed) unnamed.parsed = lastUnnamed.plain;
  }

  /**
   * Prepares statements bound in this group again as written (see
   * prepareAsWritten) and takes them out of the group's batch work. Returns
   * false when the server refused and the client has its error (one Sync).
   */
  private async asWrittenFromNowOn(
    control: SessionControl,
    statements: { name: string; entry: PreparedMl }[],
    binds: { name: string; entry: PreparedMl }[],
    unnamed: UnnamedUse,
    syncs: number,
  ): Promise<boolean> {
    const refusal = await this.prepareAsWritten(control, statements);
    // (With several Syncs the group goes on: its Binds then fail on the missing statement.)
    if (refusal && syncs === 1) {
      control.toClient([refusal, readyForQuery(control.backend.status)]);
      return false;
    }
    if (statements.some((b) => b.name === '')) {
      // Now a statement without ML calls to the server, which the argument queries below drop again.
      unnamed.ml = undefined;
      unnamed.plainBound = true;
    }
    const swapped = new Set(statements.map((b) => b.entry));
    binds.splice(0, binds.length, ...binds.filter((b) => !swapped.has(b.entry)));
    return true;
  }

  /**
   * Statements prepared before the ML catalog last changed are planned again
   * before they are bound: the server's copy has the wrapper bodies of then
   * inlined (a body replaced, a wrapper made STRICT or dropped would give
   * answers PostgreSQL's own call no longer gives). A plan that changed is
   * prepared again under the statement's name, in round trips of the
   * gateway's own; one that is no longer batched, as written. Only a text
   * PostgreSQL accepts now replaces the server's statement: if it accepts
   * neither (a wrapper the statement names is gone), the statement stays as
   * it is and fails when bound, as PostgreSQL's own would, and is tried
   * again at its next Bind.
   */
  private async refreshStale(
    control: SessionControl,
    out: Buffer[],
    binds: { name: string; entry: PreparedMl; index: number }[],
    unnamed: UnnamedUse,
    catalog: MlCatalog,
  ): Promise<void> {
    const stale = new Map(binds.filter((b) => b.entry.catalog !== catalog).map((b) => [b.name, b.entry]));
    if (stale.size === 0 || control.backend.status === 'E') return;
    const replaced = new Map<PreparedMl, PreparedMl | undefined>();
    const refused = new Set<PreparedMl>();
    /**
     * Refused because a wrapper's new return type changes the statement's columns: PostgreSQL would refuse its
     * Bind (0A000), and the client, which read the old columns, prepares it again. A copy prepared afresh would
     * send the new values under the old description; the server's copy (the gateway's form) fails at its Bind,
     * with 0A000 or an error of that form's own, answered as 0A000.
     */
    const retyped = new Set<PreparedMl>();
    for (const [name, entry] of stale) {
      const fresh = this.planAgain(entry, catalog);
      if (fresh === entry) {
        entry.catalog = catalog;
        continue;
      }
      refused.add(entry);
      if (name !== '' && (await this.resultTypesChanged(control, name, entry.plainSql))) {
        retyped.add(entry);
        continue;
      }
      for (const [sql, next] of [
        ...(fresh ? [[fresh.serverSql, fresh] as const] : []),
        [entry.plainSql, undefined] as const,
      ]) {
        if (!(await this.accepts(control, () => control.backend.analyze(sql, entry.declaredTypes)))) continue;
        if (next) {
          await control.relay(
            [closeMessage('S', name), parseMessage(name, sql, entry.declaredTypes), syncMessage()],
            () => null,
          );
          this.prepared.set(name, next);
        } else {
          // No longer batched: as any such statement (untracked; the unnamed one parsed again when dropped).
          await this.prepareAsWritten(control, [{ name, entry }]);
        }
        replaced.set(entry, next);
        refused.delete(entry);
        break;
      }
    }
    for (const bind of binds) {
      if (!replaced.has(bind.entry)) continue;
      const next = replaced.get(bind.entry);
      if (bind.name === '') {
        unnamed.ml = next;
        if (!next) unnamed.plainBound = true;
      }
      if (next) bind.entry = next;
    }
    // One that read a view in place would still run the view's old definition: the server's copy goes.
    const outlived = [...stale].filter(([, entry]) => refused.has(entry) && entry.plan.inlinedViews.length > 0);
    if (outlived.length > 0) {
      await control.relay([...outlived.map(([name]) => closeMessage('S', name)), syncMessage()], () => null);
      for (const [name] of outlived) this.prepared.delete(name);
    }
    for (const bind of binds) if (retyped.has(bind.entry)) noteErrorInstead(out[bind.index], RESULT_TYPE_CHANGED);
    // Statements now plain, and those left for PostgreSQL to refuse at their Bind, are not batched.
    const plain = new Set([...replaced].filter(([, next]) => !next).map(([entry]) => entry));
    for (const bind of binds) if (bind.name === '' && refused.has(bind.entry)) unnamed.ml = undefined;
    binds.splice(0, binds.length, ...binds.filter((b) => !plain.has(b.entry) && !refused.has(b.entry)));
  }

  /**
   * Whether PostgreSQL takes a check (a Parse, a Describe) now, found without
   * side effects: in a block, a failure is rolled back to a savepoint of the
   * gateway's.
   */
  private async accepts(
    control: SessionControl,
    check: () => Promise<void>,
    refuses: (error: BackendError) => boolean = () => true,
  ): Promise<boolean> {
    const backend = control.backend;
    const inBlock = backend.status === 'T';
    if (inBlock) await backend.query('SAVEPOINT aws_ml_check');
    try {
      await check();
      if (inBlock) await backend.query('RELEASE SAVEPOINT aws_ml_check');
      return true;
    } catch (error) {
      if (!(error instanceof BackendError) || error.raw.length === 0 || !refuses(error)) throw error;
      if (inBlock) await backend.query('ROLLBACK TO SAVEPOINT aws_ml_check; RELEASE SAVEPOINT aws_ml_check');
      return false;
    }
  }

  /**
   * Whether the client's statement prepared as `name` (in the gateway's form) would now have other result
   * columns (`plainSql`, as written, read against the catalog as it is): PostgreSQL's own check, at the Bind,
   * would then refuse it. Unknown (false) when the statement as written no longer parses: that is found later.
   */
  private async resultTypesChanged(control: SessionControl, name: string, plainSql: string): Promise<boolean> {
    const backend = control.backend;
    const before = await backend.queryParams(
      "SELECT array_to_string(result_types::oid[], ',') FROM pg_catalog.pg_prepared_statements WHERE name = $1",
      [name],
    );
    if (before.rows.length === 0) return false;
    let now: number[] = [];
    const readTypes = async () => {
      now = await backend.columnTypes(plainSql);
    };
    if (!(await this.accepts(control, readTypes))) return false;
    return now.join(',') !== (before.rows[0][0] ?? '');
  }

  /** A prepared statement planned anew against this catalog, or undefined when it is no longer batched. */
  private planAgain(entry: PreparedMl, catalog: MlCatalog): PreparedMl | undefined {
    const rowTables = new Set(rowTablesOf(entry.plan));
    const inlineViews = new Set(entry.plan.inlinedViews.map((view) => view.written));
    const plan = (firstGroupId: number) => {
      const parsed = this.parseForBatch(
        entry.plainSql,
        { ...catalog, paramTypes: entry.declaredTypes },
        rowTables.size > 0 ? rowTables : undefined,
        undefined,
        firstGroupId,
        inlineViews,
      );
      if ('forward' in parsed || parsed.target.explain) return undefined;
      return { parsed, serverSql: parsed.target.finalSql(parsed.plan) };
    };
    try {
      // Unchanged under its own group ids, it stays as the server has it, with the new plan's argument queries:
      // a statement that stores answers by row names the wrapper, not its body, so a body whose call reads other
      // inputs leaves its text as it was.
      const same = plan(entry.firstGroupId);
      if (same?.serverSql === entry.serverSql) {
        entry.target = same.parsed.target;
        entry.plan = same.parsed.plan;
        return entry;
      }
      // Changed: new ids, since it may have more groups than the ids it was given.
      const firstGroupId = this.nextGroupId;
      const fresh = plan(firstGroupId);
      if (!fresh) return undefined;
      const { target, plan: batchPlan } = fresh.parsed;
      return {
        ...entry,
        target,
        plan: batchPlan,
        serverSql: fresh.serverSql,
        firstGroupId,
        catalog,
        inferredTypes: undefined,
        typeNames: undefined,
      };
    } catch {
      return undefined;
    }
  }

  /**
   * A statement prepared in this group whose calls read one plain table is
   * planned again to store their answers by row, as a simple query's are; the
   * statement reads the number of the execution from the session (see
   * CURRENT_STATEMENT_NUMBER), so one plan serves every Bind.
   */
  private async prepareByRow(
    control: SessionControl,
    prepared: { index: number; parse: ReturnType<typeof readParse>; entry: PreparedMl },
    out: Buffer[],
    catalog: MlCatalog,
    rowTables: ReadonlySet<string>,
    inlineViews: ReadonlySet<string>,
  ): Promise<'as written' | undefined> {
    const { parse, entry } = prepared;
    const byRow = entry.plan.rowIdentityTables.some((table) => rowTables.has(table));
    const inPlace = entry.plan.viewReads.some((view) => inlineViews.has(view.written));
    // A searched LIMIT planned before the session said which tables may key answers by row (see SteppedLimit.byRow).
    const unsure = Boolean(entry.plan.stepping && !entry.plan.stepping.byRow);
    if (!byRow && !inPlace && !unsure) return;
    let replanned: ReturnType<MlInterceptor['parseForBatch']>;
    try {
      replanned = this.parseForBatch(
        parse.sql,
        { ...catalog, paramTypes: parse.paramTypes },
        rowTables,
        undefined,
        entry.firstGroupId,
        inlineViews,
      );
    } catch (error) {
      control.logger.warn({ err: error }, 'planning by row failed; results stay keyed by input');
      return;
    }
    // (Without its search such a statement may be one left per row: it goes as written.)
    if ('forward' in replanned) return unsure ? 'as written' : undefined;
    if (rowTablesOf(replanned.plan).length === 0 && replanned.plan.inlinedViews.length === 0 && !unsure) return;
    // Read in place, its columns would be described as the view's tables': the client gets the view's.
    let origins: ColumnDescription[] | undefined;
    if (replanned.plan.inlinedViews.length > 0) {
      const described = async () => {
        origins = await control.backend.columns(parse.sql, parse.paramTypes);
      };
      if (!(await this.accepts(control, described))) return;
    }
    entry.target = replanned.target;
    entry.plan = replanned.plan;
    entry.serverSql = replanned.target.finalSql(replanned.plan);
    out[prepared.index] = carryWrittenText(
      out[prepared.index],
      parseMessage(parse.name, entry.serverSql, parse.paramTypes),
    );
    entry.origins = origins;
    if (origins) noteOrigins(out[prepared.index], origins);
  }

  // ------------------------------------------------------------ upstream mode

  /**
   * CREATE EXTENSION aws_ml in upstream mode: run by PostgreSQL when the
   * server has the extension's files, otherwise by the gateway from the same
   * script; then the extension learns where the bridge listens.
   */
  private async createExtensionUpstream(control: SessionControl, sql: string): Promise<void> {
    const backend = control.backend;
    const available =
      backend.status !== 'E' &&
      (await backend.query("SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'aws_ml'")).rows.length > 0;
    let notice: string | undefined;
    if (available || backend.status === 'E') {
      const outcome = await control.relay(queryMessage(sql));
      if (!outcome.failed && outcome.status !== 'E') {
        await storeBridgeConninfo(backend, this.context.bridgeConninfoForUpstream!());
      }
    } else {
      const failure = await this.guarded(
        control,
        [],
        async () => {
          notice = await installAwsMlByScript(backend, {
            ifNotExists: /if\s+not\s+exists/i.test(sql),
            cascade: /\bcascade\b/i.test(sql),
          });
          await storeBridgeConninfo(backend, this.context.bridgeConninfoForUpstream!());
        },
        { idleTimeouts: [] },
      );
      if (failure) {
        this.reportFailure(control, failure, true);
        return;
      }
      control.toClient([
        ...(notice ? [noticeResponse({ code: '42710', message: notice })] : []),
        commandComplete('CREATE EXTENSION'),
      ]);
    }
    this.ownDdlDone(backend.status);
    control.toClient(readyForQuery(backend.status));
  }
}
