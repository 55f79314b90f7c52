import {
  type AstNode,
  clone,
  deparse,
  figureColumnName,
  functionName,
  inner,
  nodeType,
  operatorName,
  parseExpression,
  parseFromItem,
  some,
  walk,
} from '../sql/ast.js';
import { quoteIdentifier, quoteLiteral } from '../sql/quote.js';
import type { MlCatalog } from './catalog.js';
import {
  type Analysis,
  analyze,
  type CallSite,
  isAggregateCall,
  type Level,
  referencedQualifiers,
  sitesOfView,
  soleFunction,
  type ViewRead,
} from './levels.js';
import { ambiguousSentimentCall, type MlKind, recognizeMlCall } from './ml-calls.js';
import { type PullUpTests, pulledUp } from './pull-up.js';
import { CHANGING_FUNCTIONS, ROW_ONLY_FUNCTIONS } from './pure-functions.js';

/** One argument query: the distinct inputs a set of identical call sites needs. */
export interface CallGroup {
  id: number;
  kind: MlKind;
  label: string;
  /** What EXPLAIN shows for the call, e.g. `aws_comprehend.detect_sentiment(reviews.body, 'en')`. */
  callSql: string;
  sites: CallSite[];
  /** SELECT aws_ml_target, aws_ml_key[, aws_ml_batch] …: text columns the executor streams (it removes duplicates itself). */
  argumentSql: string;
  /** Has a third column with max_rows_per_batch per row. */
  batchColumn: boolean;
  /** max_rows_per_batch when it is a constant, else undefined (automatic or per row). */
  batchSize: number | undefined;
  /** Groups whose results must be stored before this argument query runs (it reads them through lookups). */
  dependsOn: number[];
  /** Some of its calls read their answers through index probes (the index must be built). */
  probed?: boolean;
  /** Results are read through a join in the rewritten statement (else through per-row lookups). */
  joined: boolean;
  /** Aliases of the joins that read this group's results (for EXPLAIN). */
  aliases: string[];
  /**
   * Results are stored per row of this table (its ctid and xmin close the
   * argument query's columns) and joined by tuple identity, so the final
   * statement does not compute the inputs again. Else they are stored per
   * distinct input and joined on it.
   */
  rowIdentity?: { qualifier: string; table: string };
  /**
   * For a model call joined by row: the argument query with each model input
   * as its own column (`target, input1 … inputN[, batch], ctid, xmin`), used
   * when they all have types whose text is their CSV field; cheaper for
   * PostgreSQL than building the JSON array.
   */
  separateInputs?: { sql: string; count: number };
  /**
   * Its calls are those of a `SELECT … WHERE <ML condition> … LIMIT n` (see BatchPlan.stepping): its argument
   * queries read the level's rows in the statement's order (or as a scan gives them), and the executor reads them
   * a window at a time (`OFFSET … LIMIT …` follows the SQL), until the answers give the LIMIT its rows.
   */
  stepped?: boolean;
}

/**
 * How a `SELECT … WHERE <ML condition> … [ORDER BY …] LIMIT n` is searched: PostgreSQL calls for its rows one by
 * one until n of them pass, so scoring every row could cost many times what the statement needs, and calling per
 * row one service request per row. The executor scores the rows window by window and, after each, runs
 * `enoughSql`: the rewritten statement read over the rows answered so far (the restriction below on), true once
 * they give the LIMIT its rows. The statement then runs with the restriction on (rows beyond the window, which
 * would each make a call, are not read): with an ORDER BY its first rows are among the rows answered, all rows
 * before the last one answered; without one, any rows that pass answer it.
 */
export interface SteppedLimit {
  enoughSql: string;
  /** The statement has an ORDER BY: it reads only the rows answered (see SteppedLimit). */
  ordered: boolean;
  /**
   * Its answers are stored per row (NULL and blank texts too), which the restriction needs. A plan made before
   * the session said which tables may key them so (a prepared statement's, at its Parse) is not searched: it is
   * made again with them, or, if its table may not, without the search.
   */
  byRow: boolean;
  /** The rows the LIMIT takes at the least (n + m written as integers): the first window's. */
  firstRows: number | undefined;
  /** Else SQL giving n + m (NULL for none), with the statement's parameters: a driver's `LIMIT $2`. */
  rowsSql: string;
}

/**
 * Set to a stepped statement's number for its checks and, when it reads only the rows answered, for the statement
 * itself: its WHERE then keeps only rows with stored answers, and makes no per-row call. (A number, not a flag:
 * left set, it restricts no other statement.)
 */
export const WINDOW_SETTING = 'aws_ml.batch_window';
const windowOpen = (statementNumber: string) =>
  `(SELECT pg_catalog.current_setting('${WINDOW_SETTING}', true)) IS DISTINCT FROM (${statementNumber})::text`;

export interface BatchPlan {
  groups: CallGroup[];
  /** The statement to run once results are stored (joins instead of calls where possible). */
  statement: AstNode;
  /** Call sites left to the per-row path, with why. */
  perRow: { label: string; reason: string }[];
  blockers: string[];
  /**
   * Tables (as `"schema"."name"` or `"name"`) whose rows could key some
   * group's results, if they are plain tables without inheritance children:
   * planning again with them in `rowTables` joins those groups by tuple identity.
   */
  rowIdentityTables: string[];
  /** Views over ML calls it reads (each execution checks their definitions are still the catalog's). */
  viewReads: ViewRead[];
  /** Those it reads in place: each execution checks again that it may. */
  inlinedViews: ViewRead[];
  /**
   * The wrappers it inlined, as the catalog had them: each execution checks
   * they are unchanged and still the only functions of their names, or, for
   * those an unqualified call named (`byPath`), still the function the
   * session's search_path finds, with no namesake of other argument types.
   */
  wrappers: { oid: string; version: string; name: string; unique: boolean; byPath: boolean }[];
  /**
   * Every call is made for the rows of one table that the statement picks by
   * equality of these columns with constants or parameters: if a unique
   * index covers them (the session checks), it reads one row at the most.
   */
  keyRead?: KeyRead;
  /** Its calls are a LIMIT's, scored window by window (see SteppedLimit). */
  stepping?: SteppedLimit;
  /**
   * Its LIMIT may be searched with an ORDER BY once the views it reads are read in place (see pulledUp), which
   * the plan made for the session's settings will tell: its search and itself need one snapshot from the start.
   */
  mayStepOrdered?: boolean;
}

/** A table read by equality on columns (see BatchPlan.keyRead). */
export interface KeyRead {
  /** As written (`"schema"."name"` or `"name"`), for to_regclass. */
  table: string;
  columns: string[];
}

export interface PlanOptions {
  /** The statement is stored (a view or materialized view body). */
  stored?: boolean;
  /** The statement is a cursor's query (DECLARE … CURSOR FOR). */
  cursor?: boolean;
  /**
   * Views (as written) read in place, as subqueries of their definitions, so
   * their calls read answers through joins rather than per-row lookups; the
   * session confirmed them (see AnalyzeOptions.inlineViews).
   */
  inlineViews?: ReadonlySet<string>;
  /** Tables known to be plain tables without children (names as in `rowIdentityTables`). */
  rowTables?: Pick<ReadonlySet<string>, 'has'>;
  /**
   * The statement's number in the session's results tables, when known at
   * planning: written into the statement, so that a cursor opened now and
   * first fetched after other statements still reads its own results.
   */
  statementNumber?: number;
  /**
   * The first group id to give (ids key the stored rows): statements prepared
   * in one session may run in one extended-protocol group, under one number.
   */
  firstGroupId?: number;
  /** A LIMIT after an ML condition may be searched window by window (see SteppedLimit); default true. */
  stepping?: boolean;
}

export const RESULTS = 'pg_temp.aws_ml_results';
export const ROW_RESULTS = 'pg_temp.aws_ml_row_results';
// A scalar subquery: evaluated once per statement, not once per stored row.
const CURRENT_STATEMENT_NUMBER = "(SELECT current_setting('aws_ml.batch_statement')::int)";

function conjuncts(where: AstNode | undefined): AstNode[] {
  if (!where) return [];
  const bool = inner(where, 'BoolExpr');
  return bool?.boolop === 'AND_EXPR' ? bool.args : [where];
}

/** FuncCall objects of call sites, to recognise them by identity inside any subtree. */
function siteIndex(analysis: Analysis): Map<AstNode, CallSite> {
  return new Map(analysis.sites.map((site) => [site.call.node, site]));
}

/** Whether an expression (with its subqueries) holds one of the statement's ML calls. */
function containsMlCall(node: AstNode, index: Map<AstNode, CallSite>): boolean {
  return some(node, (n) => index.has(inner(n, 'FuncCall')));
}

function sitesWithin(node: AstNode, index: Map<AstNode, CallSite>): CallSite[] {
  const found: CallSite[] = [];
  walk(node, (n) => {
    const call = inner(n, 'FuncCall');
    const site = call && index.get(call);
    if (site) found.push(site);
    return undefined;
  });
  return found;
}

/** The call sites of the views read as views within a node (see sitesOfView): a query reading them makes their calls. */
function viewSitesWithin(node: AstNode): CallSite[] {
  const found: CallSite[] = [];
  walk(node, (n) => {
    const view = inner(n, 'RangeVar');
    if (view) found.push(...(sitesOfView.get(view) ?? []));
    return undefined;
  });
  return found;
}

/**
 * The queries of a level's WITH clause that it can read: all of them from the clause's own statement or
 * under RECURSIVE, else those before the one it is in. (A level inside a WITH query that waited for the
 * calls of the later ones made two of them wait for each other, and the first ran its calls per row.)
 */
function readableWithQueries(level: Level): AstNode[] {
  const ctes: AstNode[] = level.withClause?.ctes ?? [];
  const queries = ctes.map((c) => c.CommonTableExpr.ctequery);
  if (level.withClause?.recursive) return queries;
  const own = ownWithQuery(level);
  return own ? queries.slice(0, ctes.indexOf(own)) : queries;
}

/** The query of its WITH clause (a CommonTableExpr node's) that a level is part of, if any. */
function ownWithQuery(level: Level): AstNode | undefined {
  return (level.withClause?.ctes ?? []).find((c: AstNode) => some(c.CommonTableExpr.ctequery, (n) => n === level.stmt));
}

/** Whether a level's WITH clause has a query of this name. */
function hasWithQueryNamed(level: Level, name: string): boolean {
  return (level.withClause?.ctes ?? []).some((c: AstNode) => c.CommonTableExpr.ctename === name);
}

/** Whether expressions name a column (by its name, however qualified) that an UPDATE's SET list assigns. */
function readsColumnsSet(expressions: AstNode[], update: AstNode): boolean {
  const assigned = new Set<string>((update.targetList ?? []).map((t: AstNode) => t.ResTarget.name));
  // (The whole row too: `RETURNING f(t::text)`.)
  const row = update.relation.alias?.aliasname ?? update.relation.relname;
  return expressions.some((e) =>
    some(e, (n) => {
      const fields: AstNode[] | undefined = inner(n, 'ColumnRef')?.fields;
      const last = fields?.[fields.length - 1];
      const wholeRow = fields?.length === 1 && last?.String?.sval === row;
      return Boolean(last && (inner(last, 'A_Star') || assigned.has(last.String?.sval) || wholeRow));
    }),
  );
}

/**
 * Whether a level is the recursive part of a WITH RECURSIVE query (it reads the query's own rows): its
 * argument query would make its calls while it recursed, one row at a time, before batch mode scored them.
 */
function recursivePart(level: Level): boolean {
  if (!level.withClause?.recursive) return false;
  const name: string | undefined = ownWithQuery(level)?.CommonTableExpr.ctename;
  return (
    name !== undefined &&
    some(level.stmt, (n) => {
      const relation = inner(n, 'RangeVar');
      return Boolean(relation && !relation.schemaname && relation.relname === name);
    })
  );
}

/** The FROM items of a level as an argument query sees them (ML FROM functions removed). */
function argumentFrom(
  level: Level,
  index: Map<AstNode, CallSite>,
): { items: AstNode[]; removed: Set<string> } | undefined {
  const stmt = level.stmt;
  const raw: AstNode[] =
    level.kind === 'select'
      ? (stmt.fromClause ?? [])
      : [
          { RangeVar: stmt.relation },
          ...(level.kind === 'update' ? (stmt.fromClause ?? []) : (stmt.usingClause ?? [])),
        ];
  const removed = new Set<string>();
  const items: AstNode[] = [];
  for (const item of raw) {
    const fn = soleFunction(item);
    if (fn && index.has(fn)) {
      removed.add(inner(item, 'RangeFunction').alias?.aliasname);
      continue;
    }
    if (nodeType(item) === 'JoinExpr' && containsMlCall(item, index)) {
      const join = argumentJoin(item, index, removed);
      if (!join) return undefined;
      items.push(join);
      continue;
    }
    items.push(item);
  }
  return { items, removed };
}

/**
 * The inputs of a call in a JOIN's ON condition. When the conjunct holding
 * the call reads one side only, and that side's rows are not all kept
 * regardless (either side of an inner join, the nullable side of an outer
 * one), PostgreSQL filters that side's rows with it before joining: it calls
 * for every row of that side, so the argument query reads the side alone,
 * with the side's own conditions. Otherwise the condition is evaluated for
 * pairs of rows, and the argument query reads the join, as an inner join on
 * the condition's other conjuncts. The level's WHERE conjuncts narrow it too
 * when every join down to this one is an inner join (PostgreSQL applies them
 * below it then; above an outer join it may not).
 */
function joinArgumentFrom(
  site: CallSite,
  index: Map<AstNode, CallSite>,
): { items: AstNode[]; removed: Set<string>; where(names: Set<string>): AstNode[] } | undefined {
  const stmt = site.level.stmt;
  const roots: AstNode[] = site.level.kind === 'delete' ? (stmt.usingClause ?? []) : (stmt.fromClause ?? []);
  const join = site.join;
  const above = joinsAbove(roots, join);
  if (!above) return undefined;
  const path = [...above.path, join];
  const innerAllTheWay = path.every((j) => j.jointype === 'JOIN_INNER');
  const removed = new Set<string>();
  const readsOnly = (c: AstNode, names: Set<string>) => !unqualifiedColumn(c) && !refersOutside(c, names);
  const own = conjuncts(join.quals);
  const holding = own.find((c) => some(c, (n) => inner(n, 'FuncCall') === site.call.node));
  const sides: [AstNode, boolean][] = [
    [join.larg, ['JOIN_INNER', 'JOIN_RIGHT'].includes(join.jointype)],
    [join.rarg, ['JOIN_INNER', 'JOIN_LEFT'].includes(join.jointype)],
  ];
  const side = sides.find(([item, filtered]) => filtered && holding && readsOnly(holding, fromNames([item])))?.[0];
  if (side) {
    const item = argumentJoin(side, index, removed);
    if (!item) return undefined;
    const where = (names: Set<string>) =>
      [...own, ...(innerAllTheWay ? conjuncts(stmt.whereClause) : [])].filter(
        (c) => !containsMlCall(c, index) && readsOnly(c, names),
      );
    return { items: [item], removed, where };
  }
  const larg = argumentJoin(join.larg, index, removed);
  const rarg = larg && argumentJoin(join.rarg, index, removed);
  if (!larg || !rarg) return undefined;
  const plain = own.filter((c) => !containsMlCall(c, index) && !mentionsAlias(c, removed));
  const quals =
    plain.length === 0
      ? parseExpression('true')
      : plain.length === 1
        ? plain[0]
        : { BoolExpr: { boolop: 'AND_EXPR', args: plain } };
  // (Without the join's alias, which would hide the names its condition uses.)
  const { alias: _alias, join_using_alias: _usingAlias, ...rest } = join;
  const item = { JoinExpr: { ...rest, jointype: 'JOIN_INNER', larg, rarg, quals } };
  // Unqualified columns might name another FROM item's: only when the join is the whole FROM list.
  const whole = roots.length === 1 && above.path.length === 0 && site.level.kind === 'select';
  const where = (names: Set<string>) =>
    innerAllTheWay
      ? conjuncts(stmt.whereClause).filter((c) => !refersOutside(c, names) && (whole || !unqualifiedColumn(c)))
      : [];
  return { items: [item], removed, where };
}

/** The SubLink below `root` whose subquery is `select` (or has it as a set operation's arm). */
function findSubLink(root: AstNode, select: AstNode): AstNode | undefined {
  let found: AstNode | undefined;
  walk(root, (n) => {
    const sublink = inner(n, 'SubLink');
    if (found || !sublink) return undefined;
    if (some(sublink.subselect, (m) => inner(m, 'SelectStmt') === select)) found = sublink;
    return undefined;
  });
  return found;
}

const unqualifiedColumn = (node: AstNode): boolean => some(node, (n) => inner(n, 'ColumnRef')?.fields.length === 1);

/**
 * The rows a correlated subquery can see of the query around it: that
 * query's FROM items (for a LATERAL subquery, those before it) and its WHERE
 * conjuncts on them. A subquery is evaluated for each such row, so its
 * argument query reads them too, joined to its own FROM items.
 */
function enclosingRows(
  level: Level,
  index: Map<AstNode, CallSite>,
): { items: AstNode[]; removed: Set<string>; names: Set<string>; conditions: AstNode[] } | undefined {
  const parent = level.parent;
  const via = level.enclosedBy;
  if (!parent || !via || via === 'filter') return undefined;
  let from: { items: AstNode[]; removed: Set<string> } | undefined;
  if (via === 'expression') from = argumentFrom(parent, index);
  else if (Array.isArray(via.holder)) {
    if (parent.kind !== 'select' || via.holder !== parent.stmt.fromClause) return undefined;
    const before = via.holder.slice(0, via.key as number);
    from = argumentFrom({ ...parent, stmt: { ...parent.stmt, fromClause: before } }, index);
  } else if (via.key === 'rarg' && ['JOIN_INNER', 'JOIN_LEFT'].includes(via.holder.jointype)) {
    // (A LATERAL subquery on a join's right is evaluated for every row on its left, whatever the condition.)
    const removed = new Set<string>();
    const item = argumentJoin(via.holder.larg, index, removed);
    from = item ? { items: [item], removed } : undefined;
  }
  if (!from?.items.length) return undefined;
  const names = fromNames(from.items);
  // A subquery in a CASE branch is evaluated for the rows that reach the branch.
  const guards: AstNode[] = [];
  if (via === 'expression' && parent.kind === 'select') {
    for (const clause of ['target', 'where'] as const) {
      const root = clause === 'target' ? parent.stmt.targetList : parent.stmt.whereClause;
      const sublink = findSubLink(root, level.stmt);
      if (!sublink) continue;
      const found = branchGuard(parent, clause, sublink, index, names, from.removed) ?? [];
      guards.push(...found.map((sql) => parseExpression(sql)));
    }
  }
  const conditions = [...conjuncts(parent.stmt.whereClause), ...guards].filter(
    (c) =>
      !containsMlCall(c, index) &&
      !mentionsAlias(c, from.removed) &&
      !refersOutside(c, names) &&
      // (Beside a LATERAL subquery an unqualified column might be one of its outputs.)
      (via === 'expression' || !unqualifiedColumn(c)),
  );
  return { ...from, names, conditions };
}

/**
 * A join tree as an argument query reads it: `L JOIN LATERAL detect_sentiment(…) s`
 * becomes L (the function is called once for each of L's rows, whatever the
 * join condition), and a join condition holding an ML call or reading such
 * a function's columns becomes true, which only adds rows. Undefined when an
 * ML function in FROM is placed otherwise. Builds new nodes: the statement's
 * own tree is rewritten later.
 */
function argumentJoin(node: AstNode, index: Map<AstNode, CallSite>, removed: Set<string>): AstNode | undefined {
  const join = inner(node, 'JoinExpr');
  if (!join) {
    const fn = soleFunction(node);
    return fn && index.get(fn)?.fromFunction ? undefined : node;
  }
  const site = functionJoinSite(join, index);
  if (site) {
    removed.add(site.fromFunction!.alias);
    return argumentJoin(join.larg, index, removed);
  }
  const larg = argumentJoin(join.larg, index, removed);
  const rarg = larg && argumentJoin(join.rarg, index, removed);
  if (!larg || !rarg) return undefined;
  const widened = join.quals && (containsMlCall(join.quals, index) || mentionsAlias(join.quals, removed));
  return { JoinExpr: { ...join, larg, rarg, ...(widened ? { quals: parseExpression('true') } : {}) } };
}

/**
 * The ML function call site that is the right side of this join
 * (`L CROSS JOIN LATERAL detect_sentiment(L.doc, 'en') s`, or a LEFT JOIN
 * LATERAL): an inner or left join without USING, NATURAL or its own alias,
 * whose columns would otherwise have to include the stored answers'.
 */
function functionJoinSite(join: AstNode, index: Map<AstNode, CallSite>): CallSite | undefined {
  if (!rewritableFunctionJoin(join)) return undefined;
  const fn = soleFunction(join.rarg);
  const site = fn && index.get(fn);
  return site?.fromFunction ? site : undefined;
}

const rewritableFunctionJoin = (join: AstNode): boolean =>
  ['JOIN_INNER', 'JOIN_LEFT'].includes(join.jointype) && !join.isNatural && !join.usingClause && !join.alias;

/**
 * The joins above `join` in a FROM list, outermost first, and whether `join`
 * is on the left edge of the list's only item (then every FROM item its
 * right side could read is on its left side). Undefined when it is not there.
 */
function joinsAbove(fromClause: AstNode[], join: AstNode): { path: AstNode[]; leftEdge: boolean } | undefined {
  const find = (node: AstNode): AstNode[] | undefined => {
    const current = inner(node, 'JoinExpr');
    if (!current) return undefined;
    if (current === join) return [];
    const below = find(current.larg) ?? find(current.rarg);
    return below && [current, ...below];
  };
  for (const item of fromClause) {
    const path = find(item);
    if (!path) continue;
    const chain = [...path, join];
    const leftEdge = fromClause.length === 1 && path.every((j, i) => inner(j.larg, 'JoinExpr') === chain[i + 1]);
    return { path, leftEdge };
  }
  return undefined;
}

/**
 * Whether a `L CROSS JOIN LATERAL f(…) s` in a level's FROM list can read
 * its stored answers through a join added to L: no join above has an alias
 * (whose columns would list the answers' too), and the call reads only L's
 * columns (the join's condition could not see other FROM items).
 */
function functionJoinReadable(level: Level, site: CallSite): boolean {
  const join = site.holder;
  if (site.key !== 'rarg' || !rewritableFunctionJoin(join)) return false;
  const above = joinsAbove(level.stmt.fromClause, join);
  if (!above || above.path.some((j) => j.alias)) return false;
  const args: AstNode[] = site.call.node.args ?? [];
  if (args.some((a) => refersOutside(a, fromNames([join.larg])))) return false;
  return above.leftEdge || !args.some(unqualifiedColumn);
}

function hasLimit(select: AstNode): boolean {
  return Boolean(select.limitCount) && select.limitOption !== 'LIMIT_OPTION_WITH_TIES';
}

const withTies = (select: AstNode): boolean =>
  Boolean(select.limitCount) && select.limitOption === 'LIMIT_OPTION_WITH_TIES';

/**
 * A level's `FETCH FIRST n ROWS WITH TIES` for its argument query, which carries the level's ORDER BY: n + m + 1
 * rows and their ties, PostgreSQL computing, after the skipped rows and the ties, the next row too (to see that it
 * is none); none for n = 0, where PostgreSQL computes no row.
 */
function tiesClause(select: AstNode): string {
  const rows = `LEAST((${rowsTaken(select)})::numeric + 1, 9223372036854775807)::bigint`;
  return `${negativeOffsetFails(select)} FETCH FIRST (CASE WHEN (${deparse(select.limitCount)}) = 0 THEN 0 ELSE ${rows} END) ROWS WITH TIES`;
}

/**
 * A level's LIMIT for its argument query: with OFFSET m, n + m rows (PostgreSQL computes the skipped rows too); a
 * `FETCH FIRST … WITH TIES` as tiesClause writes it.
 */
function limitClause(select: AstNode): string {
  if (!select.limitCount) return '';
  if (withTies(select)) return tiesClause(select);
  return ` LIMIT ${rowsTaken(select)}${negativeOffsetFails(select)}`;
}

/** An OFFSET clause that skips nothing but fails on a negative OFFSET, as the statement fails, before any call. */
const negativeOffsetFails = (select: AstNode): string =>
  select.limitOffset ? ` OFFSET LEAST(0, (${deparse(select.limitOffset)}))` : '';

/**
 * SQL for the n + m rows a `LIMIT n OFFSET m` computes: each rounded as PostgreSQL rounds it, a NULL OFFSET as
 * none, at most the largest bigint; a negative LIMIT as itself (see negativeOffsetFails for a negative OFFSET).
 */
function rowsTaken(select: AstNode): string {
  const count = deparse(select.limitCount);
  if (!select.limitOffset) return count;
  const offset = deparse(select.limitOffset);
  return (
    `CASE WHEN (${count}) < 0 THEN (${count})::bigint` +
    ` ELSE LEAST((${count})::bigint::numeric + COALESCE((${offset})::bigint, 0), 9223372036854775807)::bigint END`
  );
}

/** A LIMIT or OFFSET written as a negative integer. */
const negativeLimit = (select: AstNode): boolean =>
  [select.limitCount, select.limitOffset].some((n) => (inner(n, 'A_Const')?.ival?.ival ?? 0) < 0);

/** A constant `LIMIT 0` (or `FETCH FIRST 0 ROWS ONLY`): the level's rows are never computed. */
function limitsToNothing(select: AstNode): boolean {
  const count = inner(select.limitCount, 'A_Const');
  // (The parser's JSON leaves a zero out: `{ ival: {} }`.)
  return count?.ival !== undefined && !count.ival.ival;
}

/** A level whose every row is one row of its FROM items' (no grouping, DISTINCT, LIMIT, window or locking clause). */
function oneRowPerRow(level: Level): boolean {
  const stmt = level.stmt;
  if (level.aggregated || stmt.distinctClause || stmt.groupClause || stmt.havingClause) return false;
  return !(stmt.limitCount || stmt.limitOffset || stmt.windowClause || stmt.lockingClause);
}

/**
 * Expressions that call no function but ML calls and known ones
 * (PUSHABLE_FUNCTIONS): no set-returning or window function, which would
 * change how many rows there are.
 */
function knownCallsOnly(
  expressions: AstNode[] | undefined,
  index: Map<AstNode, CallSite>,
  aggregates = false,
): boolean {
  let found = false;
  for (const expression of expressions ?? []) {
    walk(expression, (n) => {
      if (found || (nodeType(n) === 'FuncCall' && index.has(n.FuncCall))) return false;
      // (In a grouped level, aggregates too: one value per group.)
      const known = (call: AstNode) => pushableCall(call) || (aggregates && isAggregateCall(call));
      found = nodeType(n) === 'FuncCall' && !known(n.FuncCall);
      return undefined;
    });
  }
  return !found;
}

/**
 * A level that groups its rows by plain GROUP BY (no grouping sets), or removes duplicates with a plain DISTINCT
 * (not DISTINCT ON), without LIMIT, window or locking clause: PostgreSQL moves a parent's condition on one of its
 * columns without aggregates (a grouping column, or one that depends on it) into its HAVING, and from there,
 * aggregate-free, into its WHERE; for DISTINCT, straight into its WHERE (every column is a DISTINCT key).
 */
function combinesFilteredRows(level: Level): boolean {
  const stmt = level.stmt;
  const grouped = level.aggregated || stmt.groupClause || stmt.havingClause;
  const distinct = stmt.distinctClause && !stmt.distinctClause.some(nodeType);
  if (!grouped && !distinct) return false;
  if (stmt.distinctClause && !distinct) return false;
  if (some(stmt.groupClause ?? [], (n) => nodeType(n) === 'GroupingSet')) return false;
  return !(stmt.limitCount || stmt.limitOffset || stmt.windowClause || stmt.lockingClause);
}

/**
 * Read by its parent as an item of its FROM list (a subquery or view), and so computed once; not as a side of a
 * join (see Level.readAs), whose rows the join may read again.
 */
const readFromList = (readAs: Level['readAs']): boolean => Boolean(readAs && !readAs.joined);

/**
 * The LIMIT of a parent that reads this level (a subquery or view in its
 * FROM list, or a WITH query) as its only FROM item and only takes its
 * first rows: computed once, without ORDER BY, grouping, DISTINCT, window or
 * locking clause, or a function in its output that could make more or fewer
 * rows of one (a set-returning one). A WITH query must be read there alone,
 * and without conditions (a subquery's are applied by throughParent).
 */
function limitOfParent(
  level: Level,
  index: Map<AstNode, CallSite>,
  boundable: (select: AstNode) => boolean,
  sorted?: string,
): string | undefined {
  if (level.readAs?.joined) return undefined;
  const parent = level.readAs ? level.parent : level.definedBy;
  if (parent?.kind !== 'select' || !(parent.top || readFromList(parent.readAs) || parent.withQuery)) return undefined;
  const p = parent.stmt;
  if (
    !hasLimit(p) ||
    !boundable(p) ||
    p.sortClause ||
    parent.aggregated ||
    p.distinctClause ||
    p.groupClause ||
    p.havingClause
  ) {
    return undefined;
  }
  if (p.windowClause || p.lockingClause || p.fromClause?.length !== 1) return undefined;
  // (Rows the level sorts first are not the first it reads: only with `sorted`, its order as the argument query's.)
  if (!oneRowPerRow(level) || (level.stmt.sortClause && sorted === undefined)) return undefined;
  if (!knownCallsOnly(p.targetList, index)) return undefined;
  if (level.readAs) return p.fromClause[0] === level.readAs.item ? limitClause(p) : undefined;
  if (!level.withQuery || p.whereClause || p.withClause?.recursive) return undefined;
  const cte = (p.withClause?.ctes ?? []).find(
    (c: AstNode) => inner(c.CommonTableExpr.ctequery, 'SelectStmt') === level.stmt,
  );
  const name: string | undefined = cte?.CommonTableExpr.ctename;
  const item = inner(p.fromClause[0], 'RangeVar');
  if (!name || !item || item.schemaname || item.relname !== name) return undefined;
  let references = 0;
  walk(p, (n) => {
    const read = inner(n, 'RangeVar');
    if (read && !read.schemaname && read.relname === name) references += 1;
    return undefined;
  });
  return references === 1 ? limitClause(p) : undefined;
}

/**
 * For an arm of a UNION ALL (see Level.unionArm): the LIMIT that bounds the rows it computes, its union's own
 * (the statement's, or a subquery's read from a FROM list) or that of a parent reading the union as its one FROM
 * item and taking its first rows as they come. PostgreSQL runs the arms in turn until the LIMIT has its rows, so
 * no arm computes more.
 */
function unionArmLimit(
  level: Level,
  index: Map<AstNode, CallSite>,
  boundable: (select: AstNode) => boolean,
): string | undefined {
  const arm = level.unionArm;
  // (An arm that sorts, `(SELECT … ORDER BY …)`, computes all its rows to give the first.)
  if (!arm || !oneRowPerRow(level) || level.stmt.sortClause || arm.node.sortClause) return undefined;
  // (Computed once: the statement, or a subquery its parent reads from its FROM list.)
  const fromList = readFromList(arm.readAs);
  if (hasLimit(arm.node)) return (arm.top || fromList) && boundable(arm.node) ? limitClause(arm.node) : undefined;
  if (arm.node.limitCount || arm.node.limitOffset || !fromList) return undefined;
  const parent = level.parent;
  if (parent?.kind !== 'select' || !(parent.top || readFromList(parent.readAs) || parent.withQuery)) return undefined;
  const p = parent.stmt;
  // (A WHERE of the reader's: see filteredArmLimit in argumentQuery.)
  const simple =
    hasLimit(p) &&
    boundable(p) &&
    !parent.aggregated &&
    !(p.sortClause || p.distinctClause || p.groupClause || p.havingClause) &&
    !(p.windowClause || p.lockingClause) &&
    p.fromClause?.length === 1 &&
    p.fromClause[0] === arm.readAs?.item;
  return simple && knownCallsOnly(p.targetList, index) ? limitClause(p) : undefined;
}

/**
 * The level's ORDER BY as an argument query (which has its own output list)
 * can write it: `ORDER BY 1` and output names become the output expressions
 * they name. Undefined when one of those holds an ML call or is `*`.
 */
function argumentOrder(select: AstNode, index: Map<AstNode, CallSite>, removed: Set<string>): string | undefined {
  const sorts: string[] = [];
  for (const sort of select.sortClause ?? []) {
    // The argument query must order its rows as the statement does: plain expressions only.
    const key = levelExpression(sort.SortBy.node, select.targetList ?? [], index, removed);
    if (!key) return undefined;
    sorts.push(deparse({ SortBy: { ...sort.SortBy, node: key } }));
  }
  return sorts.length ? ` ORDER BY ${sorts.join(', ')}` : '';
}

/**
 * For a call in the output list of a level with `DISTINCT ON`, not grouped, whose output list makes one row of
 * each (no set-returning or window function): its DISTINCT ON and ORDER BY as its argument query can write them
 * (`order`: the ORDER BY as argumentOrder wrote it).
 */
function distinctOnArguments(
  site: CallSite,
  index: Map<AstNode, CallSite>,
  removed: Set<string>,
  order: string | undefined,
): { keys: string; order: string } | undefined {
  const { level } = site;
  const stmt = level.stmt;
  if (level.kind !== 'select' || site.clause !== 'target' || !stmt.distinctClause?.some(nodeType)) return undefined;
  if (level.aggregated || stmt.groupClause || stmt.havingClause || stmt.windowClause || stmt.lockingClause) {
    return undefined;
  }
  if (!knownCallsOnly(stmt.targetList, index)) return undefined;
  const keys = argumentDistinctOn(stmt, index, removed);
  return keys !== undefined && order !== undefined ? { keys, order } : undefined;
}

/** A level's `DISTINCT ON (…)` as an argument query can write it (see argumentOrder); undefined if it cannot. */
function argumentDistinctOn(select: AstNode, index: Map<AstNode, CallSite>, removed: Set<string>): string | undefined {
  const keys: string[] = [];
  for (const item of select.distinctClause ?? []) {
    const key = levelExpression(item, select.targetList ?? [], index, removed);
    if (!key) return undefined;
    keys.push(deparse(key));
  }
  return ` DISTINCT ON (${keys.join(', ')})`;
}

/**
 * An ORDER BY or DISTINCT ON item as an expression of the level's inputs, as PostgreSQL reads it: a position
 * (`1`) or a bare name of an output column is that column's expression, else an input column's. Undefined
 * unless it is a plain expression (no ML call).
 */
function levelExpression(
  item: AstNode,
  targets: AstNode[],
  index: Map<AstNode, CallSite>,
  removed: Set<string>,
): AstNode | undefined {
  let output: AstNode | undefined;
  const position = inner(item, 'A_Const')?.ival;
  if (position !== undefined) {
    output = targets[(position.ival ?? 0) - 1]?.ResTarget.val;
    if (!output) return undefined;
  } else {
    // A bare name is an output column's first (the name PostgreSQL gave it, too), else an input column.
    const column = inner(item, 'ColumnRef');
    const name = column?.fields.length === 1 ? column.fields[0].String?.sval : undefined;
    const named = targets.filter(
      (t) => name !== undefined && (t.ResTarget.name ?? figureColumnName(t.ResTarget.val)) === name,
    );
    if (named.length > 1) return undefined;
    output = named[0]?.ResTarget.val;
  }
  const key = output ?? item;
  // (A constant output column sorts nothing; written into the argument query it would be a position there.)
  if (nodeType(key) === 'A_Const') return undefined;
  return plainExpression(key, index) && !mentionsAlias(key, removed) ? key : undefined;
}

interface ArgumentQuery {
  sql: string;
  /** Calls its rows need answered first: when one stays per row, so does this call. */
  dependsOn: CallSite[];
  /** Calls it makes through views read as views: answered first when batched, made by it when not. */
  after?: CallSite[];
  /** Where the call's per-row fallback may be made: for a call in WHERE see fallbackGuard, in FROM fromFunctionGuard. */
  guard?: string;
  /** Its level is a LIMIT searched window by window (see CallGroup.stepped): the query reads the level's rows in order. */
  stepped?: boolean;
}

/** Builds the argument query for one call site, or explains why the site stays per-row. */
function argumentQuery(
  site: CallSite,
  index: Map<AstNode, CallSite>,
  callsVolatile: VolatilityTest,
  rows?: { qualifier: string; table: string },
  separateInputs?: AstNode[],
  stepping = false,
): ArgumentQuery | string {
  const level = site.level;
  const stmt = level.stmt;
  if (level.kind === 'select' && stmt.valuesLists) return valuesArgumentQuery(site, index);
  if (level.kind === 'select' && !stmt.targetList && !stmt.fromClause) return 'the call is outside any query level';
  const joinFrom = site.join ? joinArgumentFrom(site, index) : undefined;
  if (site.join && !joinFrom) return 'the call is in a JOIN condition whose inputs cannot be read alone';
  let from = joinFrom ?? argumentFrom(level, index);
  if (!from) return 'the call is inside an explicit JOIN';
  const argumentsOfCall: AstNode[] = site.call.node.args ?? [];
  for (const arg of argumentsOfCall) {
    for (const qualifier of referencedQualifiers(arg)) {
      if (from.removed.has(qualifier)) return 'its arguments use another ML function in FROM';
    }
  }
  const kept: AstNode[] = [];
  const correlated: AstNode[] = [];
  /** A condition the argument query leaves out, so that it reads more rows than the statement keeps. */
  let dropped: 'ml' | 'volatile' | undefined;
  let volatileDropped = false;
  let names = fromNames(from.items);
  for (const conjunct of joinFrom ? joinFrom.where(names) : conjuncts(stmt.whereClause)) {
    const mlInside = containsMlCall(conjunct, index);
    const usesRemoved = mentionsAlias(conjunct, from.removed);
    // A condition on an outer query's columns (a correlated subquery) cannot run alone.
    const outside = refersOutside(conjunct, names);
    // A volatile condition (`random() < 0.5`) evaluated here too would pick other rows than the statement's,
    // and use up the session's random sequence twice: the argument query reads a superset instead.
    const volatile = callsVolatile(conjunct);
    if (mlInside || usesRemoved || outside) dropped = 'ml';
    else if (volatile) dropped ??= 'volatile';
    if (volatile) volatileDropped = true;
    if (!(mlInside || usesRemoved || outside || volatile)) kept.push(conjunct);
    if (outside && !mlInside && !usesRemoved && !volatile) correlated.push(conjunct);
  }
  const ownConditions = [...kept];
  const enclosingDependencies: CallSite[] = [];
  const argumentsOutside =
    argumentsOfCall.some((a) => refersOutside(a, names)) ||
    (from.items.length === 0 && argumentsOfCall.some((a) => some(a, (n) => inner(n, 'ColumnRef'))));
  if (!joinFrom && level.enclosedBy && (argumentsOutside || correlated.length > 0)) {
    const outer = enclosingRows(level, index);
    // (Rows of a volatile FROM item differ each time they are computed.)
    if (outer?.items.some(callsVolatile)) return 'the rows it is called for come from a volatile function';
    const apart = outer && ![...outer.names].some((n) => names.has(n));
    // Unqualified columns could name the other side's: only where there is one side to name.
    const alone = from.items.length === 0;
    if (outer && apart) {
      const all = new Set([...names, ...outer.names]);
      const moved = correlated.filter(
        (c) => !refersOutside(c, all) && !mentionsAlias(c, outer.removed) && (alone || !unqualifiedColumn(c)),
      );
      const conditions = outer.conditions.filter((c) => (alone || !unqualifiedColumn(c)) && !callsVolatile(c));
      enclosingDependencies.push(...outer.items.flatMap((i) => sitesWithin(i, index)));
      if (argumentsOutside) {
        // The inputs are the enclosing rows' own (`LATERAL (SELECT f(t.doc))`): read them with the subquery's.
        if (argumentsOfCall.some((a) => refersOutside(a, all))) return 'its arguments use a query further out';
        if (!alone && [...argumentsOfCall, ...kept].some(unqualifiedColumn)) {
          return 'its arguments use the enclosing query with unqualified columns';
        }
        from = { items: [...outer.items, ...from.items], removed: new Set([...from.removed, ...outer.removed]) };
        names = all;
        kept.push(...moved, ...conditions);
      } else if (moved.length > 0) {
        // Only the subquery's rows that some enclosing row can see (each once: stored answers may be per row).
        // (Inside EXISTS the enclosing query's unqualified columns find its own FROM items first, as they do there.)
        // (Not a volatile one: evaluated here too, it would pick other rows and use up the session's random sequence.)
        const inside = [...moved, ...outer.conditions.filter((c) => !callsVolatile(c))]
          .map((c) => `(${deparse(c)})`)
          .join(' AND ');
        kept.push(
          parseExpression(`EXISTS (SELECT FROM ${outer.items.map((i) => deparse(i)).join(', ')} WHERE ${inside})`),
        );
      }
    }
  }
  if (argumentsOutside && rows) return "its arguments read the enclosing query's rows";
  // PostgreSQL moves HAVING conditions without aggregates into WHERE (not under grouping sets): the
  // argument query applies them too.
  if (!joinFrom && level.kind === 'select' && !some(stmt.groupClause ?? [], (n) => nodeType(n) === 'GroupingSet')) {
    for (const conjunct of conjuncts(stmt.havingClause)) {
      const plain = plainExpression(conjunct, index) && !someAggregate(conjunct);
      if (plain && !refersOutside(conjunct, names) && !mentionsAlias(conjunct, from.removed)) kept.push(conjunct);
    }
  }
  const groupedArguments = level.aggregated && !site.insideAggregate && argumentsOfCall.some((a) => someAggregate(a));
  if (groupedArguments) return 'its arguments are aggregates';
  // (A window function's value depends on all the rows of its level and their order, which an argument query
  // does not have; written into the join that reads the answers, PostgreSQL refuses it.)
  const wrapperArguments = site.call.wrapper ? [site.call.wrapper.inlinedCall, ...site.call.wrapper.values] : [];
  if ([...argumentsOfCall, ...wrapperArguments].some(someWindowFunction)) return 'its arguments hold a window function';
  // (A wrapper's body may compute the inputs with such a function too: `detect_sentiment(CASE WHEN random() …)`.)
  // (A wrapper's defaults too: `p float8 DEFAULT random()`.)
  if (argumentsOfCall.some(callsVolatile) || wrapperArguments.some(callsVolatile)) {
    return 'its arguments change from one evaluation to the next (a volatile function)';
  }
  if (recursivePart(level)) return 'the call is in the recursive part of a WITH RECURSIVE query';
  // (`WITH r AS (…) UPDATE r …` changes the table; an argument query would read the WITH query.)
  const target = level.kind === 'select' ? undefined : stmt.relation;
  if (target && !target.schemaname && hasWithQueryNamed(level, target.relname)) {
    return 'a WITH query has the name of the table the statement changes';
  }
  if (level.kind === 'update' && site.clause === 'other' && readsColumnsSet(argumentsOfCall, stmt)) {
    // (Its argument query would read the values before the UPDATE, and score inputs no call is made for.)
    return 'its arguments in RETURNING read columns the UPDATE sets';
  }
  const withRead = readableWithQueries(level);
  if (from.items.some(callsVolatile) || withRead.some(callsVolatile)) {
    return 'the rows it is called for come from a volatile function';
  }
  if (from.items.some(unseededSample)) {
    return 'the rows it is called for come from a TABLESAMPLE without REPEATABLE (each read samples other rows)';
  }

  let limit = '';
  /** The LIMIT of the reader of a UNION ALL this level is an arm of, when the reader filters it too. */
  let filteredArmLimit: string | undefined;
  /** The ORDER BY of a level whose LIMIT is searched window by window ('' for none). */
  let stepOrder: string | undefined;
  // A LIMIT or OFFSET that calls a volatile function (`LIMIT (random() * 10)::int`) or an ML function is not
  // computed again for the argument query (another value, the session's random sequence used up, calls made twice).
  const boundable = (select: AstNode) =>
    ![select.limitCount, select.limitOffset].some((e) => e && (callsVolatile(e) || containsMlCall(e, index)));
  // The statement's own level, a WITH query, an INSERT's query, or a subquery or view its parent reads from its FROM
  // list: each is computed once, so its LIMIT bounds the rows it computes (a correlated subquery's applies per outer
  // row).
  // (A join condition is evaluated before the LIMIT counts rows.)
  if (!joinFrom && level.kind === 'select' && limitsToNothing(stmt)) {
    // `LIMIT 0` (tools ask for a result's columns so): PostgreSQL computes none of the level's rows, at any level
    // (a UNION arm, a scalar or correlated subquery too), whatever it filters, sorts or groups by.
    limit = ' LIMIT 0';
  } else if (
    !joinFrom &&
    (level.top || readFromList(level.readAs) || level.withQuery || level.insertSource) &&
    level.kind === 'select' &&
    (hasLimit(stmt) || withTies(stmt))
  ) {
    // (PostgreSQL refuses it before computing any row.)
    if (negativeLimit(stmt)) return 'its LIMIT or OFFSET is negative';
    const orderHasMl = (stmt.sortClause ?? []).some((s: AstNode) => containsMlCall(s, index));
    const whole = level.aggregated || stmt.distinctClause || stmt.groupClause || orderHasMl;
    if (!whole) {
      // An ML condition decides which rows the LIMIT takes: the rows are searched in the statement's order, window
      // by window, until the answers so far give it its rows (see CallGroup.stepped).
      // (Not where a CASE spares some rows their call: their answers would be missing from the windows' rows.)
      const spared = (caseGuard(site, index, names, from.removed) ?? []).length > 0;
      const searched =
        stepping &&
        dropped === 'ml' &&
        !volatileDropped &&
        !spared &&
        level.top &&
        !level.unionArm &&
        !withTies(stmt) &&
        boundable(stmt)
          ? stmt.sortClause
            ? argumentOrder(stmt, index, from.removed)
            : ''
          : undefined;
      // (Sorted by the row's ctid last: each window is then the next rows of one order, whatever ties the ORDER BY
      // leaves, and the rows before the last one answered are all answered.)
      if (searched !== undefined) stepOrder = searched && rows ? `${searched}, ${rows.qualifier}.ctid` : searched;
      else if (dropped && !stmt.sortClause) {
        return dropped === 'ml'
          ? 'a LIMIT applies after an ML condition (scoring only the rows needed)'
          : 'a LIMIT applies after a volatile condition (scoring only the rows needed)';
      }
      const order = dropped ? undefined : argumentOrder(stmt, index, from.removed);
      if (order !== undefined && boundable(stmt)) limit = `${order}${limitClause(stmt)}`;
    }
  } else if (!joinFrom && level.kind === 'select' && level.unionArm && !dropped) {
    const armLimit = unionArmLimit(level, index, boundable);
    // Under a reader that filters the union too (`SELECT * FROM all_reviews WHERE tenant = 'x' LIMIT 20`), the arm
    // reads its rows through the reader's conditions, which PostgreSQL moves into it, before the LIMIT counts them.
    if (armLimit && level.parent?.stmt.whereClause) filteredArmLimit = armLimit;
    else limit = armLimit ?? '';
  }

  const call = site.call;
  /**
   * [expression, output name]. (Named aws_ml_…, which no column of the statement's is: an ORDER BY of the level's
   * copied into the argument query reads an output column before a table's column of the same name.)
   */
  const columns: [string, string][] = [
    [call.targetSql, 'aws_ml_target'],
    ...(separateInputs
      ? separateInputs.map((input, i): [string, string] => [`(${deparse(input)})`, `aws_ml_input${i + 1}`])
      : [[call.keySql, 'aws_ml_key'] as [string, string]]),
  ];
  if (call.batchSql !== undefined && !isIntegerLiteral(call.batchSql))
    columns.push([`(${call.batchSql})::int`, 'aws_ml_batch']);
  if (rows) {
    columns.push(
      [`${rows.qualifier}.ctid`, 'aws_ml_row_tid'],
      [`${rows.qualifier}.xmin`, 'aws_ml_row_xmin'],
      [relationFile(rows.table), 'aws_ml_row_file'],
    );
  }
  const columnsSql = columns.map(([expression, name]) => `${expression} AS ${name}`).join(', ');
  const fromSql = from.items.length ? ` FROM ${from.items.map((i) => deparse(i)).join(', ')}` : '';
  const skipWhen = call.wrapper?.skipWhen;
  const whereWith = (guards: string[]) => {
    const conditions = [...kept.map((c) => `(${deparse(c)})`), ...guards, ...(skipWhen ? [`NOT (${skipWhen})`] : [])];
    return conditions.length ? ` WHERE ${conditions.join(' AND ')}` : '';
  };
  const limited = (query: string, count: string) => `SELECT * FROM (${query}${count}) AS aws_ml_arguments`;
  // A subquery, view or WITH query whose rows its parent only takes the first of (`SELECT * FROM v LIMIT 10`):
  // PostgreSQL computes no more of them than the LIMIT takes.
  // (One that sorts its rows first, as a BI tool's `SELECT * FROM (… ORDER BY …) q LIMIT 10`, computes them all
  // but calls for the first: its argument query sorts them alike.)
  const sorted = !limit && !dropped ? argumentOrder(stmt, index, from.removed) : undefined;
  const parentCount = limit || dropped || joinFrom ? undefined : limitOfParent(level, index, boundable, sorted);
  const parentLimited =
    filteredArmLimit !== undefined
      ? // (Not when some of its conditions cannot be: the arm is then scored as if the LIMIT were not there.)
        throughParent(level, index, columns, `${fromSql}${whereWith([])}`, from.removed, filteredArmLimit)
      : parentCount === undefined
        ? undefined
        : level.readAs
          ? throughParent(level, index, columns, `${fromSql}${whereWith([])}${sorted ?? ''}`, from.removed, parentCount)
          : limited(`SELECT ${columnsSql}${fromSql}${whereWith([])}`, `${sorted ?? ''}${parentCount}`);
  // `SELECT DISTINCT ON (c) c, f(doc) … ORDER BY c, t DESC` (the latest row of each c): PostgreSQL calls for the
  // rows it keeps, which an argument query of the same DISTINCT ON and ORDER BY picks too.
  const distinctOn =
    !limit && !parentLimited && !dropped && !joinFrom
      ? distinctOnArguments(site, index, from.removed, sorted)
      : undefined;
  // A call in a CASE branch is made only for the rows that reach the branch (not under a LIMIT, which
  // counts the rows before the branch is chosen, nor a DISTINCT ON, which picks them).
  // (Nor when searched window by window: each window is the level's next rows, whichever branch they reach.)
  const guards =
    limit || parentLimited || distinctOn || stepOrder !== undefined
      ? []
      : (caseGuard(site, index, names, from.removed) ?? []);
  const whereSql = whereWith(guards);
  const withSql = level.withClause ? `${deparse({ WithClause: level.withClause }).trim()} ` : '';
  const body = limit
    ? limited(`SELECT ${columnsSql}${fromSql}${whereSql}`, limit)
    : stepOrder !== undefined
      ? // (The executor reads it window by window: OFFSET and LIMIT follow.)
        stepOrder
        ? limited(`SELECT ${columnsSql}${fromSql}${whereSql}`, stepOrder)
        : `SELECT ${columnsSql}${fromSql}${whereSql}`
      : distinctOn
        ? limited(`SELECT${distinctOn.keys} ${columnsSql}${fromSql}${whereSql}`, distinctOn.order)
        : (parentLimited ??
          (joinFrom ? undefined : throughParent(level, index, columns, `${fromSql}${whereSql}`, from.removed)) ??
          // No DISTINCT: the scorer drops repeated inputs as they stream, cheaper than PostgreSQL hashing them first.
          `SELECT ${columnsSql}${fromSql}${whereSql}`);
  const read = [...argumentsOfCall, ...from.items, ...kept, ...withRead];
  const dependsOn = [...enclosingDependencies, ...read.flatMap((n) => sitesWithin(n, index))].filter((s) => s !== site);
  // The calls of views it reads as views: scored first when they can be, so that its argument query finds their
  // answers; when they stay per row, it makes them itself, as the statement does.
  const after = read.flatMap(viewSitesWithin).filter((s) => s !== site);
  const guard =
    site.clause === 'where' && !joinFrom
      ? fallbackGuard(ownConditions, from, index, callsVolatile)
      : site.fromFunction
        ? fromFunctionGuard(site, index, from.removed, callsVolatile)
        : undefined;
  return { sql: withSql + body, dependsOn, after, guard, stepped: stepOrder !== undefined };
}

/**
 * A FROM item that is, or joins, a `TABLESAMPLE` without `REPEATABLE`: each read samples other rows, as a
 * volatile function would give them. (Not one inside a subquery, whose rows the level may not take as they come.)
 */
function unseededSample(item: AstNode): boolean {
  const join = inner(item, 'JoinExpr');
  if (join) return unseededSample(join.larg) || unseededSample(join.rarg);
  return nodeType(item) === 'RangeTableSample' && !item.RangeTableSample.repeatable;
}

/**
 * For a function in FROM: SQL true for the rows its per-row fallback may be made for, made of the conditions of
 * the level's WHERE that hold ML calls and read only the tables its arguments read (as written: the calls in them
 * find their stored answers, or are made per row). PostgreSQL tests such a condition where its table is scanned,
 * before the function is reached; in the rewritten statement it reads stored answers joined above the function,
 * so without this a row it leaves out (a text the service refuses, say) would have its call made anyway.
 */
function fromFunctionGuard(
  site: CallSite,
  index: Map<AstNode, CallSite>,
  removed: Set<string>,
  callsVolatile: VolatilityTest,
): string | undefined {
  const tables = new Set((site.call.node.args ?? []).flatMap((a: AstNode) => [...referencedQualifiers(a)]));
  const usable = conjuncts(site.level.stmt.whereClause).filter(
    (c) =>
      containsMlCall(c, index) &&
      !unqualifiedColumn(c) &&
      [...referencedQualifiers(c)].every((q) => tables.has(q)) &&
      !mentionsAlias(c, removed) &&
      !callsVolatile(c) &&
      !some(c, (n) => nodeType(n) === 'SubLink'),
  );
  if (usable.length === 0) return undefined;
  // (A NULL or blank text is answered at once, without the service: the guard, whose calls may go to the service,
  // is not worth testing for it.)
  const text = site.call.keySql;
  return `(${text} IS NULL OR pg_catalog.btrim(${text}) ${EQ} '' OR ${usable.map((c) => `(${deparse(c)})`).join(' AND ')})`;
}

/**
 * For a call in WHERE: SQL true for the rows its argument query reads, made of the other conditions of that
 * WHERE and the conditions of the inner joins of the level's FROM list. A row without a stored answer for
 * which it is not true fails one of them, and so leaves the statement whatever the call answers: the
 * rewritten call answers it NULL rather than call the service. (PostgreSQL may test the condition that reads
 * the answers of one table before that table meets the others: `FROM c JOIN r … WHERE c.region = 'EU' AND
 * f(r.body) …` then made a call for every row of r outside the EU, which the argument query left out.)
 * Conditions that read a view read as a view (whose calls it would make again) are left out of it.
 */
function fallbackGuard(
  kept: AstNode[],
  from: { items: AstNode[]; removed: Set<string> },
  index: Map<AstNode, CallSite>,
  callsVolatile: VolatilityTest,
): string | undefined {
  const conditions = [...kept];
  const joinConditions = (item: AstNode) => {
    const join = inner(item, 'JoinExpr');
    // (An alias on the join hides the names of its sides from the WHERE clause.)
    if (!join || join.alias) return;
    if (join.jointype === 'JOIN_INNER') {
      // (An ON condition sees only its join's sides, the WHERE clause every FROM item: one naming a column
      // without its table, or a table outside the join, could mean another column there.)
      if (join.quals && !unqualifiedColumn(join.quals) && !refersOutside(join.quals, fromNames([item]))) {
        conditions.push(join.quals);
      }
      joinConditions(join.larg);
      joinConditions(join.rarg);
    } else if (join.jointype === 'JOIN_LEFT') joinConditions(join.larg);
    else if (join.jointype === 'JOIN_RIGHT') joinConditions(join.rarg);
  };
  for (const item of from.items) joinConditions(item);
  const usable = conditions.filter(
    (c) =>
      !containsMlCall(c, index) &&
      !mentionsAlias(c, from.removed) &&
      !callsVolatile(c) &&
      viewSitesWithin(c).length === 0,
  );
  return usable.length ? usable.map((c) => `(${deparse(c)})`).join(' AND ') : undefined;
}

/**
 * A call's per-row fallback (of a field of its answer), made only where its guard (see fallbackGuard) holds.
 * (The field is taken inside the CASE: the deparser writes `(CASE … END).f` without its parentheses.)
 */
function guardedCall(call: AstNode, guard: string | undefined, field?: string): string {
  const value = field ? `(${deparse(call)}).${field}` : deparse(call);
  return guard ? `(CASE WHEN ${guard} THEN ${value} END)` : value;
}

/**
 * The calls of a VALUES list (`INSERT INTO t VALUES (1, f('…')), (2, f('…'))`):
 * one argument query lists the inputs of every call there of the same
 * function and batch size, so they make one group. Inputs must be constants
 * or parameters.
 */
function valuesArgumentQuery(site: CallSite, index: Map<AstNode, CallSite>): ArgumentQuery | string {
  const call = site.call;
  const plain = (s: CallSite) =>
    !s.call.wrapper &&
    !some({ FuncCall: s.call.node }, (n) => inner(n, 'ColumnRef') || inner(n, 'SubLink')) &&
    (s.call.node.args ?? []).every((a: AstNode) => !containsMlCall(a, index));
  if (!plain(site)) return 'the call is in a VALUES list, with inputs that are not constants';
  if (call.batchSql !== undefined && !isIntegerLiteral(call.batchSql)) {
    return 'the call is in a VALUES list, with a batch size that is not a constant';
  }
  // One query serves every call of the list alike: made once per list (a 2,000-row INSERT would otherwise
  // look at every call once per call).
  const shared = valuesQueries.get(site.level) ?? new Map<string, ArgumentQuery>();
  valuesQueries.set(site.level, shared);
  const key = `${call.label}\u0000${call.batchSql}\u0000${call.builtinSignature.argTypes}`;
  const known = shared.get(key);
  if (known) return known;
  const together = site.level.sites.filter(
    (s) =>
      s.call.label === call.label &&
      s.call.batchSql === call.batchSql &&
      s.call.builtinSignature === call.builtinSignature &&
      plain(s),
  );
  const rows = together.map((s) => `(${s.call.targetSql}, ${s.call.keySql})`).join(', ');
  const query = {
    sql: `SELECT target, key FROM (VALUES ${rows}) AS aws_ml_values (target, key)`,
    dependsOn: [],
  };
  shared.set(key, query);
  return query;
}

/** Argument queries of VALUES lists, per level and kind of call (see valuesArgumentQuery). */
const valuesQueries = new WeakMap<Level, Map<string, ArgumentQuery>>();

/**
 * Functions that are immutable, or stable on the session's settings alone
 * (`date_trunc('day', ts)` on timestamptz reads TimeZone), and never
 * set-returning: a condition using them is moved by PostgreSQL into the
 * subquery it filters, and a subquery column computed with them stays a
 * plain one. Any other function might be volatile, set-returning or a window
 * function, which PostgreSQL keeps out.
 */
const PUSHABLE_FUNCTIONS = new Set([
  'date_trunc',
  'date_part',
  'extract',
  'lower',
  'upper',
  'length',
  'char_length',
  'octet_length',
  'abs',
  'round',
  'trunc',
  'floor',
  'ceil',
  'mod',
  'trim',
  'btrim',
  'ltrim',
  'rtrim',
  'substr',
  'substring',
  'left',
  'right',
  'concat',
  'concat_ws',
  'replace',
  'split_part',
]);

/** A function call made only of pushable parts: a known immutable function (unqualified or in pg_catalog), no OVER. */
function pushableCall(call: AstNode): boolean {
  const name = functionName(call);
  const schemaOk = name.length === 1 || (name.length === 2 && name[0] === 'pg_catalog');
  return schemaOk && !call.over && !call.agg_star && PUSHABLE_FUNCTIONS.has(name[name.length - 1]);
}

/** An expression of columns, constants, operators and pushable functions only (no subquery, no ML call). */
function plainExpression(node: AstNode, index: Map<AstNode, CallSite>): boolean {
  return !some(node, (n) => {
    const type = nodeType(n);
    // (GROUPING(…) is an aggregate's kin: one value per group, which no row has.)
    if (type === 'SubLink' || type === 'A_Star' || type === 'GroupingFunc') return true;
    return type === 'FuncCall' && (index.has(n.FuncCall) || !pushableCall(n.FuncCall));
  });
}

/**
 * The argument query of a call in a subquery or view that its parent reads
 * straight from its FROM list, restricted by the parent's conditions on the
 * subquery's plain columns: PostgreSQL moves such conditions into the
 * subquery (its ML calls are volatile, so it is not flattened), and its calls
 * run only for the rows that pass. Without this, `SELECT … FROM view WHERE
 * id < 3` scored every row of the view's table. Only conditions that
 * PostgreSQL certainly moves are applied (on plain columns of this level, of
 * known immutable functions, no subqueries), and only in a level PostgreSQL
 * does not evaluate whole first, so the rows scored are never fewer than the
 * calls the statement makes. Undefined when none applies.
 */
function throughParent(
  level: Level,
  index: Map<AstNode, CallSite>,
  columns: [string, string][],
  fromAndWhere: string,
  removed: Set<string>,
  limit?: string,
): string | undefined {
  // (An arm of a UNION ALL that its parent reads: PostgreSQL moves the conditions into each arm.)
  const arm = level.readAs ? undefined : level.unionArm;
  const readAs = level.readAs ?? arm?.readAs;
  const parent = level.parent;
  const stmt = level.stmt;
  if (!readAs || !parent) return undefined;
  const arms = arm ? pushableUnionArms(arm.node) : [stmt];
  if (!arms) return undefined;
  // One of the FROM items of a SELECT, or of an UPDATE's FROM or a DELETE's USING list, or a side of inner
  // joins there (levels.ts tells: readAs.joined).
  const parentFrom: AstNode[] = (parent.kind === 'delete' ? parent.stmt.usingClause : parent.stmt.fromClause) ?? [];
  const listed = parentFrom.includes(readAs.item);
  // (A side of inner joins takes their ON conditions on its columns too.)
  const onConditions = readAs.joined ? enclosingJoinConditions(parentFrom, readAs.item) : [];
  const filtered = parent.stmt.whereClause || onConditions.length > 0;
  if (!(listed || readAs.joined) || (!filtered && limit === undefined)) return undefined;
  // (Read alone by a SELECT: a column without its table can only be the level's, and a LIMIT counts its rows.)
  const alone = parent.kind === 'select' && parentFrom.length === 1 && listed;
  if (limit !== undefined && !alone) return undefined;
  // A level PostgreSQL evaluates whole before the parent's conditions apply.
  const grouped = limit === undefined && combinesFilteredRows(level);
  if (!oneRowPerRow(level) && !grouped) return undefined;
  const targets: AstNode[] = stmt.targetList ?? [];
  // Set-returning and window functions in the level keep the parent's conditions out: only known functions
  // pass (besides the ML calls, whose own arguments the argument query reads anyway).
  if (!knownCallsOnly(targets, index, grouped)) return undefined;
  const hasStar = (select: AstNode) =>
    (select.targetList ?? []).some((t: AstNode) => some(t.ResTarget.val, (n) => nodeType(n) === 'A_Star'));
  const star = hasStar(stmt);
  const levelSites = level.sites;
  if (star && (arm || readAs.columnNames || levelSites.some((s) => s.fromFunction))) return undefined;
  if (arm && arms.some(hasStar)) return undefined;

  // The level's output columns (a union's are named by its first arm); the plain ones (no ML call, subquery, or
  // ML function of its FROM list, in any arm) may be filtered on.
  const named: AstNode[] = arms[0].targetList ?? [];
  const names = named.map((t, i) => readAs.columnNames?.[i] ?? t.ResTarget.name ?? figureColumnName(t.ResTarget.val));
  const plain = new Set<string>();
  const notPlain = new Set<string>();
  targets.forEach((t, i) => {
    const val = t.ResTarget.val;
    const others = arms.filter((a) => a !== stmt).map((a) => a.targetList?.[i]?.ResTarget.val);
    const plainElsewhere = others.every((v) => v !== undefined && plainExpression(v, index));
    if (!mentionsAlias(val, removed) && plainExpression(val, index) && plainElsewhere) plain.add(names[i]);
    else notPlain.add(names[i]);
  });
  const alias = readAs.alias ?? 'aws_ml_level';
  const referenced = new Set<string>();
  // (Into a grouped level PostgreSQL moves a condition through its HAVING, but keeps it there when it compares
  // a grouping column of a nondeterministic collation under another, written collation.)
  const grouping = grouped && Boolean(level.aggregated || stmt.groupClause || stmt.havingClause);
  const pushable = (conjunct: AstNode) =>
    plainExpression(conjunct, index) &&
    !(grouping && some(conjunct, (n) => nodeType(n) === 'CollateClause')) &&
    !some(conjunct, (n) => {
      if (nodeType(n) !== 'ColumnRef') return false;
      const fields: AstNode[] = n.ColumnRef.fields;
      const name = fields[fields.length - 1].String?.sval;
      if (name === undefined || notPlain.has(name)) return true;
      if (fields.length === 2 && fields[0].String?.sval !== alias) return true;
      if (fields.length > 2) return true;
      // Unqualified: this level's column when it has one of that name (the alias alone is the whole row);
      // with `*`, any name at the statement's top, where nothing else could be meant. Beside other tables, the
      // conditions that name the level's columns with its alias only.
      if (fields.length === 1 && (!alone || name === alias || !(plain.has(name) || (star && parent.top)))) return true;
      return false;
    });
  const parentConditions = [...conjuncts(parent.stmt.whereClause), ...onConditions];
  const conditions = parentConditions.filter(pushable);
  // (Under the parent's LIMIT, a condition left out would have the LIMIT count rows the parent drops.)
  if (limit === undefined ? conditions.length === 0 : conditions.length < parentConditions.length) return undefined;
  for (const condition of conditions) {
    walk(condition, (n) => {
      const name = columnName(n);
      if (name !== undefined) referenced.add(name);
      return undefined;
    });
  }

  // Only the columns the conditions read are computed; the others are NULL (their work, and any side effect, is left out).
  const outputs = targets
    .map((t, i) => {
      if (star && !t.ResTarget.name && some(t.ResTarget.val, (n) => nodeType(n) === 'A_Star')) {
        return deparse(t.ResTarget.val);
      }
      // (A column left out is not named as the level names it: an ORDER BY of the level's, written into this query,
      // would take the NULL for the column of that name.)
      if (!(plain.has(names[i]) && referenced.has(names[i]))) return `NULL AS aws_ml_unused${i + 1}`;
      return `${deparse(t.ResTarget.val)} AS ${quoteIdentifier(names[i])}`;
    })
    .join(', ');
  const carried = columns.map(([expression], i) => `${expression} AS aws_ml_column${i + 1}`).join(', ');
  const picked = columns.map(([, name], i) => `${quoteIdentifier(alias)}.aws_ml_column${i + 1} AS ${name}`).join(', ');
  // (An arm's columns are named as the union names them, by its first arm or the reader's alias.)
  const renamedAs = arm ? names : readAs.columnNames;
  const renamed = renamedAs ? `(${renamedAs.map((c) => quoteIdentifier(c)).join(', ')})` : '';
  const applied = arm
    ? unionArmConditions(arm.node, arms, names, conditions)
    : conditions.map((c) => `(${deparse(c)})`);
  const whereSql = applied.length ? ` WHERE ${applied.join(' AND ')}` : '';
  return (
    `SELECT ${picked} FROM (SELECT ${outputs ? `${outputs}, ` : ''}${carried}${fromAndWhere}) AS ` +
    `${quoteIdentifier(alias)}${renamed}${whereSql}${limit ?? ''}`
  );
}

/** The ON conditions of the inner joins of a FROM list that hold `item` on one of their sides, down to it. */
function enclosingJoinConditions(items: AstNode[], item: AstNode): AstNode[] {
  const visit = (node: AstNode, path: AstNode[]): AstNode[] | undefined => {
    if (node === item) return path.flatMap((join) => conjuncts(join.quals));
    const join = inner(node, 'JoinExpr');
    if (join?.jointype !== 'JOIN_INNER' || join.alias) return undefined;
    return visit(join.larg, [...path, join]) ?? visit(join.rarg, [...path, join]);
  };
  for (const candidate of items) {
    const found = visit(candidate, []);
    if (found) return found;
  }
  return [];
}

/**
 * The arms of a UNION ALL chain, left to right, when PostgreSQL moves its reader's conditions into them: every
 * node a UNION ALL without a WITH, ORDER BY or LIMIT of its own (the outermost may sort), every arm a SELECT
 * without LIMIT or OFFSET, DISTINCT ON or window functions (an arm with one may keep the conditions out of every
 * arm). Undefined otherwise.
 */
function pushableUnionArms(union: AstNode): AstNode[] | undefined {
  if (union.limitCount || union.limitOffset) return undefined;
  const arms: AstNode[] = [];
  const collect = (select: AstNode, outermost: boolean): boolean => {
    if (select.op && select.op !== 'SETOP_NONE') {
      if (select.op !== 'SETOP_UNION' || !select.all || select.withClause) return false;
      if (!outermost && (select.sortClause || select.limitCount || select.limitOffset)) return false;
      return collect(select.larg, false) && collect(select.rarg, false);
    }
    if (select.valuesLists || select.withClause || select.limitCount || select.limitOffset) return false;
    // (Not flattened, the union keeps a condition out of every arm if one arm's DISTINCT ON or window function
    // makes its column unsafe there. A plain DISTINCT does not.)
    const distinctOn = select.distinctClause?.some(nodeType);
    if (distinctOn || select.windowClause || (select.targetList ?? []).some(someWindowFunction)) return false;
    arms.push(select);
    return true;
  };
  return collect(union, true) ? arms : undefined;
}

/**
 * The conditions throughParent applies to an arm of a UNION ALL (`arms`: the union's, see pushableUnionArms).
 * PostgreSQL moves a condition into the arms only when each column it reads has, in every arm, the union's type
 * and collation (it flattens the union, or finds the column safe in all of them): each condition holds here also
 * where they differ, tested with pg_typeof and pg_collation_for on the arms' expressions (once per statement,
 * computing no row), so that the argument query scores the rows the arm computes either way.
 */
function unionArmConditions(union: AstNode, arms: AstNode[], names: string[], conditions: AstNode[]): string[] {
  const fromOf = (select: AstNode) =>
    select.fromClause?.length ? ` FROM ${select.fromClause.map((i: AstNode) => deparse(i)).join(', ')}` : '';
  const column = (select: AstNode, i: number) =>
    `SELECT ${deparse(select.targetList[i].ResTarget.val)} AS aws_ml_c${fromOf(select)} LIMIT 0`;
  /** The type and collation of a query's one column, as text (a row of NULLs gives them without computing one). */
  // (pg_collation_for refuses a type without collations.)
  const typeOf = (query: string) =>
    `(SELECT pg_catalog.format('%s %s', aws_ml_y.oid::pg_catalog.regtype, CASE WHEN aws_ml_y.typcollation ${NE} 0 ` +
    'THEN pg_catalog.pg_collation_for(aws_ml_x.aws_ml_c) END) FROM (SELECT) AS aws_ml_one ' +
    `LEFT JOIN (${query}) AS aws_ml_x ON true JOIN pg_catalog.pg_type AS aws_ml_y ` +
    `ON aws_ml_y.oid ${EQ} pg_catalog.pg_typeof(aws_ml_x.aws_ml_c)::pg_catalog.oid)`;
  const unionOf = (select: AstNode, i: number): string =>
    select.op && select.op !== 'SETOP_NONE'
      ? `(${unionOf(select.larg, i)}) UNION ALL (${unionOf(select.rarg, i)})`
      : column(select, i);
  const alike = new Map<number, string>();
  const columnAlike = (i: number) => {
    let sql = alike.get(i);
    if (!sql) {
      const unionType = typeOf(unionOf(union, i));
      sql = arms.map((arm) => `${unionType} ${EQ} ${typeOf(column(arm, i))}`).join(' AND ');
      alike.set(i, sql);
    }
    return sql;
  };
  return conditions.map((condition) => {
    const read = names.flatMap((name, i) => (some(condition, (n) => columnName(n) === name) ? [i] : []));
    const differ = read.map((i) => `NOT (${columnAlike(i)})`);
    return `((${deparse(condition)})${differ.map((d) => ` OR ${d}`).join('')})`;
  });
}

/** The column a ColumnRef names (its last field), else undefined. */
function columnName(node: AstNode): string | undefined {
  const fields: AstNode[] | undefined = inner(node, 'ColumnRef')?.fields;
  return fields?.[fields.length - 1].String?.sval;
}

/** The names a level's FROM items give their columns (aliases, or table names). */
function fromNames(items: AstNode[]): Set<string> {
  const names = new Set<string>();
  const add = (item: AstNode) => {
    const type = nodeType(item);
    const node = type ? item[type] : undefined;
    if (!node) return;
    if (node.alias?.aliasname) names.add(node.alias.aliasname);
    if (type === 'RangeVar' && !node.alias) names.add(node.relname);
    if (type === 'JoinExpr') {
      // (`JOIN … USING (id) AS j` names the join's columns j.id, and leaves its sides their names.)
      if (node.join_using_alias?.aliasname) names.add(node.join_using_alias.aliasname);
      add(node.larg);
      add(node.rarg);
    }
  };
  for (const item of items) add(item);
  return names;
}

/**
 * Whether an expression qualifies a column with a name its level does not
 * define (an outer query's), looking into its subqueries with their own names too.
 */
function refersOutside(node: AstNode, names: Set<string>): boolean {
  let outside = false;
  walk(node, (n) => {
    if (outside) return false;
    const select = inner(inner(n, 'SubLink')?.subselect, 'SelectStmt');
    if (select) {
      const own = new Set([...names, ...fromNames(select.fromClause ?? [])]);
      const { fromClause: _from, ...rest } = select;
      outside =
        refersOutside({ SelectStmt: rest }, own) ||
        (select.fromClause ?? []).some((i: AstNode) => refersOutside(i, own));
      return false;
    }
    const fields: AstNode[] | undefined = inner(n, 'ColumnRef')?.fields;
    // (`schema.table.column` names its table second to last.)
    if (fields && fields.length > 1 && !names.has(fields[fields.length - 2].String?.sval)) outside = true;
    return undefined;
  });
  return outside;
}

/** Whether an expression refers to one of the aliases (`s.x`, or the whole row `s`). */
function mentionsAlias(node: AstNode, aliases: Set<string>): boolean {
  if (aliases.size === 0) return false;
  return some(node, (n) => aliases.has(inner(n, 'ColumnRef')?.fields[0]?.String?.sval));
}

/**
 * The conditions under which PostgreSQL evaluates a call inside CASE
 * branches of its level's SELECT list or WHERE clause (`CASE WHEN length(doc)
 * < 5000 THEN detect_sentiment(doc, 'en') END` calls for the short documents
 * only), as SQL for the argument query. Undefined when a condition it would
 * need is not a plain one (an ML call, a subquery, an aggregate, a function
 * that might be volatile): every row is scored then.
 */
function caseGuard(
  site: CallSite,
  index: Map<AstNode, CallSite>,
  names: Set<string>,
  removed: Set<string>,
): string[] | undefined {
  if (site.clause !== 'target' && site.clause !== 'where') return undefined;
  return branchGuard(site.level, site.clause, site.call.node, index, names, removed);
}

/**
 * The conditions under which PostgreSQL evaluates `target` (a call's
 * FuncCall, or a subquery's SubLink) in its level's SELECT list or WHERE
 * clause (see caseGuard).
 */
function branchGuard(
  level: Level,
  clause: 'target' | 'where',
  target: AstNode,
  index: Map<AstNode, CallSite>,
  names: Set<string>,
  removed: Set<string>,
): string[] | undefined {
  // Grouping sets change what a grouped column reads per group.
  if (some(level.stmt.groupClause ?? [], (n) => nodeType(n) === 'GroupingSet')) return undefined;
  const root = clause === 'target' ? level.stmt.targetList : level.stmt.whereClause;
  const guards: string[] = [];
  let usable = true;
  /** The call is inside an aggregate or window function (or one that might be): computed for every row. */
  let everyRow = false;
  const condition = (node: AstNode) => {
    const plain = plainExpression(node, index) && !someAggregate(node);
    if (!plain || refersOutside(node, names) || mentionsAlias(node, removed)) usable = false;
    return `(${deparse(node)})`;
  };
  const visit = (node: AstNode): boolean => {
    if (node === null || typeof node !== 'object') return false;
    if (node === target) return true;
    if (Array.isArray(node)) return node.some(visit);
    const type = nodeType(node);
    if (type === 'SubLink' && node.SubLink === target) return true;
    // (Other query levels, and the call's own arguments, are not this call's.)
    if (type === 'SubLink' || (type === 'FuncCall' && index.has(node.FuncCall) && node.FuncCall !== target)) {
      return false;
    }
    if (type === 'FuncCall' && node.FuncCall !== target) {
      const found = Object.values(node.FuncCall).some((c) => c !== null && typeof c === 'object' && visit(c));
      // PostgreSQL computes an aggregate's or window function's arguments for every row: CASEs outside give no guard.
      if (found && !pushableCall(node.FuncCall)) everyRow = true;
      return found;
    }
    if (type === 'CaseExpr') {
      const expr = node.CaseExpr;
      if (visit(expr.arg)) return true;
      const whens: AstNode[] = (expr.args ?? []).map((w: AstNode) => w.CaseWhen);
      const test = (when: AstNode) =>
        expr.arg ? `(${condition(expr.arg)} = ${condition(when.expr)})` : condition(when.expr);
      const earlier = (i: number) => whens.slice(0, i).map((w) => `${test(w)} IS NOT TRUE`);
      // (Guards go in once the call is found below, unless an aggregate between them computes it for every row.)
      const guard = (...conditions: string[]) => {
        if (!everyRow) guards.push(...conditions);
        return true;
      };
      for (const [i, when] of whens.entries()) {
        if (visit(when.expr)) return guard(...earlier(i));
        if (visit(when.result)) return guard(...earlier(i), `${test(when)} IS TRUE`);
      }
      if (visit(expr.defresult)) return guard(...earlier(whens.length));
      return false;
    }
    return Object.values(node).some((child) => child !== null && typeof child === 'object' && visit(child));
  };
  if (!visit(root)) return undefined;
  return usable ? guards : undefined;
}

/**
 * Whether an expression computes something whose value differs at each
 * evaluation: the argument query could not predict the statement's inputs
 * or rows (see CHANGING_FUNCTIONS and MlCatalog.changingFunctions).
 */
type VolatilityTest = (node: AstNode) => boolean;

function volatilityTest(catalog: Pick<MlCatalog, 'changingFunctions' | 'changingOperators'>): VolatilityTest {
  const functions = catalog.changingFunctions;
  const operators = catalog.changingOperators;
  return (node) =>
    some(node, (n) => {
      const name = lastName(inner(n, 'FuncCall'));
      if (name) return CHANGING_FUNCTIONS.has(name) || Boolean(functions?.has(name));
      const operator = operators && operatorName(n);
      return Boolean(operator && operators?.has(operator));
    });
}

/** Whether an expression calls a set-returning function itself (not inside a subquery, which makes one value). */
function makesSets(expression: AstNode, setReturning: ReadonlySet<string>): boolean {
  let found = false;
  walk(expression, (node) => {
    if (found || inner(node, 'SubLink')) return false;
    if (setReturning.has(lastName(inner(node, 'FuncCall')))) found = true;
    return undefined;
  });
  return found;
}

function lastName(call: AstNode | undefined): string {
  if (!call) return '';
  const names: AstNode[] = call.funcname ?? [];
  return names[names.length - 1]?.String?.sval ?? '';
}

function someWindowFunction(node: AstNode): boolean {
  return some(node, (n) => Boolean(inner(n, 'FuncCall')?.over));
}

function someAggregate(node: AstNode): boolean {
  return some(node, (n) => {
    const call = inner(n, 'FuncCall');
    if (!call) return false;
    const name = call.funcname[call.funcname.length - 1].String?.sval;
    return ['avg', 'count', 'sum', 'min', 'max', 'string_agg', 'array_agg'].includes(name) || call.agg_star;
  });
}

const isIntegerLiteral = (sql: string) => /^\d+$/.test(sql.trim());

/**
 * A query whose cursor PostgreSQL lets `UPDATE … WHERE CURRENT OF` name: a
 * scan of one table, not grouped or deduplicated (arms of a UNION are not
 * the top level).
 */
function simplyUpdatable(level: Level): boolean {
  const stmt = level.stmt;
  const [item, ...others] = stmt.fromClause ?? [];
  return (
    level.kind === 'select' &&
    inner(item, 'RangeVar') !== undefined &&
    others.length === 0 &&
    !level.aggregated &&
    !stmt.distinctClause
  );
}

/** Functions that give a value for every input (text in, text out), so computing them cannot fail. */
const TOTAL_FUNCTIONS = new Set(['lower', 'upper', 'btrim', 'ltrim', 'rtrim', 'concat', 'concat_ws', 'initcap', 'md5']);
const TEXT_TYPES = new Set(['text', 'varchar', 'bpchar']);

/**
 * Whether computing a call's inputs may raise an error (an overflow, a
 * division by zero, a cast of a bad value, another ML call: an input it
 * refuses has no stored answer, and its per-row fallback raises): they are
 * not made only of columns, constants, parameters, text concatenation and a
 * few functions that cannot fail.
 */
function inputsMayFail(call: AstNode, catalog: MlCatalog): boolean {
  const safe = (node: AstNode): boolean => {
    const type = nodeType(node);
    if (type === 'ColumnRef' || type === 'A_Const' || type === 'ParamRef') return true;
    if (type === 'NamedArgExpr') return safe(node.NamedArgExpr.arg);
    if (type === 'A_ArrayExpr') return (node.A_ArrayExpr.elements ?? []).every(safe);
    if (type === 'CoalesceExpr') return node.CoalesceExpr.args.every(safe);
    if (type === 'A_Indirection') return safe(node.A_Indirection.arg);
    if (type === 'TypeCast') {
      const to = lastName({ funcname: node.TypeCast.typeName.names });
      return (
        ['A_Const', 'ParamRef'].includes(nodeType(node.TypeCast.arg) ?? '') ||
        (TEXT_TYPES.has(to) && safe(node.TypeCast.arg))
      );
    }
    if (type === 'A_Expr') {
      const expr = node.A_Expr;
      return expr.kind === 'AEXPR_OP' && operatorName(node) === '||' && safe(expr.lexpr) && safe(expr.rexpr);
    }
    if (type === 'FuncCall') {
      const fn = node.FuncCall;
      if (recognizeMlCall(fn, catalog)) return false;
      return TOTAL_FUNCTIONS.has(lastName(fn)) && !fn.agg_filter && !fn.over && (fn.args ?? []).every(safe);
    }
    return false;
  };
  return !(call.args ?? []).every(safe);
}

const CLAUSE_ROOTS: Record<string, string> = {
  target: 'targetList',
  where: 'whereClause',
  order: 'sortClause',
  distinct: 'distinctClause',
};

/**
 * Whether PostgreSQL computes the call's inputs for every row of its level
 * that a join on them would (then the join raises nothing PostgreSQL would
 * not): the level reads one table, whose conditions it applies before any
 * join, and nothing around the call in its clause (a CASE branch, a later
 * COALESCE argument or AND/OR operand, a FILTER, a window function) may skip
 * it for some rows.
 */
function calledForEveryRowRead(site: CallSite): boolean {
  const stmt = site.level.stmt;
  const from: AstNode[] = stmt.fromClause ?? [];
  const root = stmt[CLAUSE_ROOTS[site.clause] ?? ''];
  if (from.length !== 1 || !inner(from[0], 'RangeVar') || root === undefined) return false;
  const target = site.call.node;
  /** Whether `target` is found under `node`, on a path that always computes it; undefined if not found. */
  const always = (node: AstNode): boolean | undefined => {
    if (node === null || typeof node !== 'object') return undefined;
    if (node === target) return true;
    if (Array.isArray(node)) {
      for (const child of node) {
        const found = always(child);
        if (found !== undefined) return found;
      }
      return undefined;
    }
    const children = (all: AstNode[], firstAlways: number) => {
      for (const [i, child] of all.entries()) {
        const found = always(child);
        if (found !== undefined) return found && i < firstAlways;
      }
      return undefined;
    };
    const type = nodeType(node);
    if (type === 'SubLink') return undefined;
    if (type === 'CaseExpr') {
      const expr = node.CaseExpr;
      const whens: AstNode[] = (expr.args ?? []).map((w: AstNode) => w.CaseWhen);
      return children(
        [
          expr.arg,
          whens[0]?.expr,
          ...whens.flatMap((w, i) => (i === 0 ? [w.result] : [w.expr, w.result])),
          expr.defresult,
        ],
        2,
      );
    }
    if (type === 'CoalesceExpr') return children(node.CoalesceExpr.args, 1);
    if (type === 'BoolExpr') return children(node.BoolExpr.args, 1);
    if (type === 'FuncCall' && (node.FuncCall.agg_filter || node.FuncCall.over)) {
      const found = always(Object.values(node.FuncCall));
      return found === undefined ? undefined : false;
    }
    return always(Object.values(node));
  };
  // (The other conditions of a WHERE are the table's own, applied before any join, as PostgreSQL applies them before
  // a costly call.)
  const where = site.clause === 'where' && root?.BoolExpr?.boolop === 'AND_EXPR' ? root.BoolExpr.args : root;
  return always(where) === true;
}

/** The level has a locking clause, or is read from the FROM list of one that has (which locks its rows too). */
function locked(level: Level): boolean {
  for (let at: Level | undefined = level; at; at = at.readAs || at.unionArm || at.fromItem ? at.parent : undefined) {
    if (at.stmt.lockingClause) return true;
  }
  return false;
}

/** Whether a call site can read its results through a join added to its level. */
function joinable(site: CallSite): boolean {
  const level = site.level;
  if (!level.joinable || level.probesOnly || level.kind !== 'select' || !level.stmt.fromClause?.length) return false;
  if (insideMatchedExpression(level)) return false;
  // FOR UPDATE would have to lock the joined results too (and cannot: it is the nullable side), also a reader's that
  // reaches into this subquery of its FROM list (or into a UNION arm's).
  if (locked(level)) return false;
  // An unqualified * would also list the joined results.
  if ((level.stmt.targetList ?? []).some((t: AstNode) => isUnqualifiedStar(t.ResTarget.val))) return false;
  if (site.fromFunction) {
    if (!Array.isArray(site.holder)) {
      return functionJoinReadable(level, site);
    }
    return level.stmt.fromClause[site.key as number] !== undefined && site.holder === level.stmt.fromClause;
  }
  if (!['target', 'where', 'order', 'distinct'].includes(site.clause)) return false;
  if (level.aggregated && !site.insideAggregate && site.clause !== 'where' && !groupedAsWritten(site)) return false;
  if (site.call.kind === 'sentiment' && !site.call.wrapper) {
    return site.fieldHolder !== undefined && ['sentiment', 'confidence'].includes(site.fieldHolder.field);
  }
  // (A wrapper that reads the whole record of its detect_sentiment call is answered per row.)
  if (site.call.wrapper && site.call.kind === 'sentiment') return answeredBody(site, 'aws_ml_r') !== undefined;
  return true;
}

/**
 * A call in the SELECT list of a grouped level, outside aggregates, whose
 * output column is a GROUP BY item by position (`SELECT (f(doc)).sentiment,
 * count(*) … GROUP BY 1`): PostgreSQL groups by the whole expression, which
 * may then read a joined answer per row. Only when every call of the level
 * outside aggregates and pre-grouping clauses is such a call: another copy
 * (in HAVING, ORDER BY, a window, another output column) would no longer
 * match the rewritten one.
 */
function groupedAsWritten(site: CallSite): boolean {
  const level = site.level;
  if (site.clause !== 'target' || site.fromFunction) return false;
  const targets: AstNode[] = level.stmt.targetList ?? [];
  // (Positions count output columns: a `*` makes them unknown here.)
  if (targets.some((t) => some(t.ResTarget.val, (n) => nodeType(n) === 'A_Star'))) return false;
  // (By position only: a GROUP BY name is an input column's first, when there is one of that name.)
  const grouped = (call: AstNode) => {
    const position = targets.findIndex((t) => some(t.ResTarget.val, (n) => inner(n, 'FuncCall') === call));
    return (
      position >= 0 &&
      (level.stmt.groupClause ?? []).some((item: AstNode) => inner(item, 'A_Const')?.ival?.ival === position + 1)
    );
  };
  // PostgreSQL matches expressions after resolving them (`doc` and `t.doc` are one): every call of the
  // level computed after grouping must be in a grouped output column, and so rewritten alike.
  return level.sites.every(
    (other) =>
      other.insideAggregate ||
      ['where', 'join-on', 'from-function'].includes(other.clause) ||
      (other.clause === 'target' && grouped(other.call.node)),
  );
}

/**
 * Whether the level is inside a subquery expression that PostgreSQL matches
 * against another copy of it (GROUP BY, or DISTINCT and its ORDER BY): each
 * copy rewritten would read its own answers, and the copies would no longer
 * be equal. Such calls stay as written.
 */
function insideMatchedExpression(level: Level): boolean {
  for (let l: Level | undefined = level; l?.parent; l = l.parent) {
    const viaSubLink = l.enclosedBy === 'expression' || l.enclosedBy === 'filter';
    if (viaSubLink && (l.parent.stmt.groupClause || l.parent.stmt.distinctClause)) return true;
  }
  return false;
}

function isUnqualifiedStar(node: AstNode): boolean {
  const column = inner(node, 'ColumnRef');
  return column?.fields.length === 1 && nodeType(column.fields[0]) === 'A_Star';
}

/**
 * A wrapper's inlined body with each use of its ML call (one call, or one made several times alike) replaced by the
 * stored answer in `alias`: for detect_sentiment, `(call).sentiment` or `(call).confidence` by that column.
 * Undefined when a use is none of these (the whole record), which the per-row path then answers.
 */
function answeredBody(site: CallSite, alias: string): AstNode | undefined {
  const wrapper = site.call.wrapper!;
  const wanted = deparse({ FuncCall: wrapper.inlinedCall });
  const sentiment = site.call.kind === 'sentiment';
  const holder = { root: clone(wrapper.inlined) };
  let uses = 0;
  let wholeRecord = false;
  walk(holder, (n, parent, key) => {
    if (wholeRecord || parent === undefined || key === undefined) return undefined;
    const indirection = inner(n, 'A_Indirection');
    const call = inner(indirection ? indirection.arg : n, 'FuncCall');
    if (!call || deparse({ FuncCall: call }) !== wanted) return undefined;
    const field = indirection?.indirection?.length === 1 ? indirection.indirection[0].String?.sval : undefined;
    if (sentiment && field !== 'sentiment' && field !== 'confidence') {
      wholeRecord = true;
      return false;
    }
    (parent as AstNode)[key] = parseExpression(valueColumn(alias, site.call.kind, field));
    uses += 1;
    return false;
  });
  return uses > 0 && !wholeRecord ? holder.root : undefined;
}

const valueColumn = (alias: string, kind: MlKind, field: string | undefined) =>
  kind === 'endpoint' || field === 'sentiment' ? `${alias}.aws_ml_text::varchar` : `${alias}.aws_ml_real`;

/** detect_sentiment's output columns, in order: what `(detect_sentiment(…)).*` expands to. */
const SENTIMENT_FIELDS = ['sentiment', 'confidence'];

/**
 * Writes each `(detect_sentiment(…)).*` of a SELECT list as its two columns,
 * `(detect_sentiment(…)).sentiment, (…).confidence`, as PostgreSQL expands
 * it (same names, types and positions): a field of a call can be joined to
 * its stored answer, while the whole record could only be read per row.
 */
function expandSentimentStars(statement: AstNode, catalog: MlCatalog): void {
  walk(statement, (node) => {
    const targets: AstNode[] | undefined = node.SelectStmt?.targetList;
    if (!targets) return undefined;
    node.SelectStmt.targetList = targets.flatMap((target: AstNode) => {
      const column = target.ResTarget;
      const indirection = inner(column?.val, 'A_Indirection');
      const call = inner(indirection?.arg, 'FuncCall');
      const star = indirection?.indirection?.length === 1 && nodeType(indirection.indirection[0]) === 'A_Star';
      if (column.name || !star || !call) return [target];
      const ml = recognizeMlCall(call, catalog);
      if (ml?.kind !== 'sentiment' || ml.wrapper) return [target];
      return SENTIMENT_FIELDS.map((field) => ({
        ResTarget: {
          ...column,
          val: {
            A_Indirection: { arg: clone(indirection.arg), indirection: [{ String: { sval: field } }] },
          },
        },
      }));
    });
    return undefined;
  });
}

const AMBIGUOUS_SENTIMENT_FORM =
  'the type of its third argument, which the gateway cannot tell, decides which form PostgreSQL calls: cast it, as max_rows_per_batch::int';

/**
 * Plans batch mode for one statement: the argument query of every call site
 * it can cover, and the statement rewritten to read stored results through
 * joins. Anything it cannot prove it covers stays a per-row call.
 */
export function planBatch(statement: AstNode, catalog: MlCatalog, options: PlanOptions = {}): BatchPlan {
  // (Planned again without stepping if its LIMIT cannot be searched window by window after all.)
  // (Not a cursor's or a stored query's: they are read later, where the search's answers would not be its rows.)
  const searchable = options.stepping !== false && !options.cursor && !options.stored;
  const asWritten = searchable ? clone(statement) : undefined;
  expandSentimentStars(statement, catalog);
  const analysis = analyze(statement, catalog, {
    stored: options.stored,
    cursor: options.cursor,
    inlineViews: options.inlineViews,
  });
  if (options.cursor) {
    for (const site of analysis.sites) if (site.level.top && simplyUpdatable(site.level)) site.level.probesOnly = true;
  }
  const index = siteIndex(analysis);
  const callsVolatile = volatilityTest(catalog);
  // (Written before the statement is rewritten into joins; planned only if the statement as it is cannot be searched.)
  const pulled = searchable ? pulledUp(statement, pullUpTests(analysis, index, catalog, callsVolatile)) : undefined;
  const perRow: BatchPlan['perRow'] = [];
  const groups: CallGroup[] = [];
  const groupOfSite = new Map<CallSite, CallGroup>();
  const byFingerprint = new Map<string, CallGroup>();
  const pendingDependencies = new Map<CallGroup, CallSite[]>();
  const pendingOrder = new Map<CallGroup, CallSite[]>();
  const guards = new Map<CallSite, string>();
  const statementNumber =
    options.statementNumber === undefined ? CURRENT_STATEMENT_NUMBER : String(options.statementNumber);

  walk(statement, (node) => {
    const call = inner(node, 'FuncCall');
    if (call && ambiguousSentimentCall(call, catalog.paramTypes)) {
      perRow.push({ label: 'aws_comprehend.detect_sentiment', reason: AMBIGUOUS_SENTIMENT_FORM });
    }
    return undefined;
  });
  const setReturning = catalog.setReturning;
  if (analysis.blockers.length > 0) {
    // (Said by EXPLAIN, as for a call left per row alone.)
    const reason = `the statement has ${[...new Set(analysis.blockers)].join('; ')}`;
    for (const site of analysis.sites) perRow.push({ label: site.call.label, reason });
  } else {
    for (const site of analysis.sites) {
      if (setReturning && makesSets(site.call.node.args ?? [], setReturning)) {
        // (`f(generate_series(1, 3), t.x)`: called for each row of the set, which no join on inputs expresses.)
        perRow.push({ label: site.call.label, reason: 'its arguments call a set-returning function' });
        continue;
      }
      if (some(site.call.node.args ?? [], (n) => nodeType(n) === 'A_Star')) {
        // (`invoke_endpoint('m', NULL, t.*)` is one argument, the row: an argument query's output list would read
        // it as the row's columns, each a model input.)
        perRow.push({ label: site.call.label, reason: 'an argument is a whole row (`t.*`)' });
        continue;
      }
      const query = argumentQuery(site, index, callsVolatile, undefined, undefined, searchable);
      if (typeof query === 'string') {
        perRow.push({ label: site.call.label, reason: query });
        continue;
      }
      // (Under a searched LIMIT's restriction a row without an answer is not the statement's: no call for it.)
      const open = windowOpen(statementNumber);
      const guard = query.stepped ? [open, ...(query.guard ? [query.guard] : [])].join(' AND ') : query.guard;
      if (guard) guards.set(site, guard);
      // (Calls of another function or batch size are groups of their own, each with its own EXPLAIN line and
      // figures, however alike their inputs: the scorer still scores an input once.)
      const fingerprint = `${site.call.kind}\u0000${site.call.label}\u0000${site.call.batchSql}\u0000${query.sql}`;
      let group = byFingerprint.get(fingerprint);
      if (!group) {
        group = {
          id: groups.length,
          kind: site.call.kind,
          label: site.call.label,
          callSql: deparse({ FuncCall: site.call.node }),
          sites: [],
          argumentSql: query.sql,
          batchColumn: site.call.batchSql !== undefined && !isIntegerLiteral(site.call.batchSql),
          batchSize:
            site.call.batchSql !== undefined && isIntegerLiteral(site.call.batchSql)
              ? Number(site.call.batchSql)
              : undefined,
          dependsOn: [],
          joined: false,
          aliases: [],
          stepped: query.stepped || undefined,
        };
        groups.push(group);
        byFingerprint.set(fingerprint, group);
        pendingDependencies.set(group, query.dependsOn);
        pendingOrder.set(group, query.after ?? []);
      }
      group.sites.push(site);
      groupOfSite.set(site, group);
    }
  }

  // A group whose argument query needs calls that no other group covers would call per row
  // inside that query: leave such groups to the per-row path, until nothing changes.
  const valid = new Set(groups);
  for (let changed = true; changed; ) {
    changed = false;
    for (const group of valid) {
      const deps = pendingDependencies.get(group) ?? [];
      if (deps.every((d) => groupOfSite.has(d) && valid.has(groupOfSite.get(d)!))) continue;
      valid.delete(group);
      for (const site of group.sites) {
        perRow.push({ label: site.call.label, reason: 'its argument query needs another call that stays per-row' });
        groupOfSite.delete(site);
      }
      changed = true;
    }
  }
  const planned = groups.filter((g) => valid.has(g));
  const newId = new Map(planned.map((g, i) => [g, (options.firstGroupId ?? 0) + i]));
  for (const group of planned) {
    const batchedFirst = (pendingOrder.get(group) ?? []).filter((d) => valid.has(groupOfSite.get(d)!));
    const deps = [...(pendingDependencies.get(group) ?? []), ...batchedFirst].map(
      (d) => newId.get(groupOfSite.get(d)!)!,
    );
    group.id = newId.get(group)!;
    group.dependsOn = [...new Set(deps)].filter((id) => id !== group.id);
  }

  const rowIdentityTables = chooseRowIdentity(
    planned,
    index,
    statement,
    options.rowTables,
    Boolean(catalog.packerShadowed),
    callsVolatile,
  );
  // (Read before the statement is rewritten into joins.)
  const keyRead = keyReadOf(analysis.sites);
  const aliasNumbers = firstFreeAliasNumber(statement);
  const rewriting = { groupOfSite, guards, catalog, statementNumber, aliasNumbers };
  const joined = rewriteAsJoins(statement, analysis, rewriting);
  rewriteAsLookups(analysis, joined, rewriting);
  const steppedLevel = planned.find((g) => g.stepped)?.sites[0].level;
  // (Planned before the session says which tables may key answers by row, as a prepared statement is at its Parse,
  // the search is kept for the plan made again once it has: see SteppedLimit.byRow.)
  const provisional = options.rowTables === undefined;
  const stepping =
    steppedLevel &&
    steppedLimit(
      statement,
      steppedLevel,
      planned,
      joined,
      perRow,
      catalog,
      callsVolatile,
      statementNumber,
      provisional,
    );
  if (steppedLevel && !stepping && asWritten) {
    const again = planBatch(asWritten, catalog, { ...options, stepping: false });
    return { ...again, rowIdentityTables: [...new Set([...again.rowIdentityTables, ...rowIdentityTables])] };
  }
  if (!stepping && pulled) {
    const flat = planBatch(pulled, catalog, options);
    // (Or a constant LIMIT that computes no row, or fails before any: nothing scored, as for the table.)
    const flatTop = inner(pulled, 'SelectStmt');
    if (flat.stepping || limitsToNothing(flatTop) || negativeLimit(flatTop)) {
      // (The statement is written from its node, which its holder keeps: the node becomes the one pulled up.)
      for (const key of Object.keys(statement)) delete statement[key];
      Object.assign(statement, flat.statement);
      // (Each execution checks the views read in place or through again, those of the statement as written too.)
      const views = (reads: ViewRead[]) => [...new Map(reads.map((read) => [read.written, read])).values()];
      return {
        ...flat,
        statement,
        viewReads: views([...analysis.viewReads, ...flat.viewReads]),
        inlinedViews: views([...analysis.inlinedViews, ...flat.inlinedViews]),
        rowIdentityTables: [...new Set([...flat.rowIdentityTables, ...rowIdentityTables])],
      };
    }
  }
  const top = inner(statement, 'SelectStmt');
  const mayStepOrdered =
    searchable &&
    !stepping &&
    Boolean(top?.sortClause && top.limitCount) &&
    analysis.viewReads.some((read) => read.inlinable && !analysis.inlinedViews.includes(read));
  return {
    groups: planned,
    statement,
    perRow,
    blockers: analysis.blockers,
    rowIdentityTables,
    viewReads: analysis.viewReads,
    wrappers: wrappersInlined(analysis.sites),
    inlinedViews: analysis.inlinedViews,
    keyRead,
    stepping,
    mayStepOrdered: mayStepOrdered || undefined,
  };
}

/**
 * For a statement whose calls argumentQuery planned as a searched LIMIT's (see SteppedLimit): adds the restriction
 * to its WHERE, and gives the check the executor runs after each window. Undefined when it cannot be searched so:
 * the level must be the statement's SELECT (a CREATE TABLE AS's too); each call must be answered per row
 * through a join of its own level (the restriction reads the joins; a per-row
 * call, or one of another level, would not be covered by the window), and the statement must give the same rows
 * read twice (the check runs it): no locking clause, no window function (it would see only the window's rows), no
 * set-returning or volatile function in its output list, no WITH query that writes.
 */
function steppedLimit(
  statement: AstNode,
  level: Level,
  groups: CallGroup[],
  joined: ReadonlySet<CallSite>,
  perRow: BatchPlan['perRow'],
  catalog: MlCatalog,
  callsVolatile: VolatilityTest,
  statementNumber: string,
  provisional: boolean,
): SteppedLimit | undefined {
  const stmt = level.stmt;
  const setReturning = catalog.setReturning;
  const sites = groups.flatMap((g) => g.sites);
  const writes = (level.withClause?.ctes ?? []).some(
    (c: AstNode) => !inner(inner(c, 'CommonTableExpr')?.ctequery, 'SelectStmt'),
  );
  if (
    inner(statement, 'SelectStmt') !== stmt ||
    stmt.intoClause ||
    perRow.length > 0 ||
    !groups.every((g) => g.stepped && (g.rowIdentity || provisional)) ||
    !sites.every((site) => site.level === level && joined.has(site)) ||
    !setReturning ||
    stmt.lockingClause ||
    stmt.windowClause ||
    someWindowFunction(stmt.targetList) ||
    makesSets(stmt.targetList, setReturning) ||
    stmt.targetList.some(callsVolatile) ||
    writes
  ) {
    return undefined;
  }
  const answered = [...new Set(groups.flatMap((g) => g.aliases))]
    .map((alias) => `${alias}.aws_ml_key IS NOT NULL`)
    .join(' AND ');
  // The check reads the answered rows alone (the joins to the answers then inner joins, which PostgreSQL may
  // start from the answers); the statement, whether it does, by the setting.
  const check = clone(statement);
  restrict(inner(check, 'SelectStmt'), answered);
  restrict(stmt, `(${answered}) OR ${windowOpen(statementNumber)}`);
  return {
    enoughSql: `SELECT count(*), (${deparse(stmt.limitCount)})::bigint FROM (${deparse(check)}) AS aws_ml_found`,
    ordered: Boolean(stmt.sortClause),
    byRow: groups.every((g) => g.rowIdentity),
    firstRows: constantRows(stmt),
    rowsSql: `SELECT (${rowsTaken(stmt)})::bigint${negativeOffsetFails(stmt)}`,
  };
}

/** What pulledUp needs to know, from the statement's analysis and the catalog. */
function pullUpTests(
  analysis: Analysis,
  index: Map<AstNode, CallSite>,
  catalog: MlCatalog,
  callsVolatile: VolatilityTest,
): PullUpTests {
  const setReturning = catalog.setReturning;
  return {
    aggregated: (select) => analysis.levels.find((level) => level.stmt === select)?.aggregated ?? true,
    unsafe: (expression) =>
      !setReturning ||
      makesSets(expression, setReturning) ||
      callsVolatile(expression) ||
      someWindowFunction(expression),
    callsMl: (expression) => containsMlCall(expression, index),
  };
}

/** n + m of a `LIMIT n OFFSET m` written as integers, or undefined. */
function constantRows(select: AstNode): number | undefined {
  const integer = (node: AstNode) => inner(node, 'A_Const')?.ival;
  const count = integer(select.limitCount);
  const offset = select.limitOffset ? integer(select.limitOffset) : { ival: 0 };
  if (!count || !offset) return undefined;
  return (count.ival ?? 0) + (offset.ival ?? 0);
}

/** Adds a condition to a SELECT's WHERE. */
function restrict(select: AstNode, condition: string): void {
  const added = parseExpression(condition);
  select.whereClause = select.whereClause
    ? { BoolExpr: { boolop: 'AND_EXPR', args: [select.whereClause, added] } }
    : added;
}

/**
 * The table and columns of a statement whose every call is at its top level,
 * over one table it reads by `column = constant or parameter` conditions
 * (a SELECT with that table alone in FROM, an UPDATE or DELETE of it alone).
 */
function keyReadOf(sites: CallSite[]): KeyRead | undefined {
  const level = sites[0]?.level;
  if (!level?.top || sites.some((site) => site.level !== level)) return undefined;
  const stmt = level.stmt;
  const relation =
    level.kind === 'select'
      ? stmt.fromClause?.length === 1 && inner(stmt.fromClause[0], 'RangeVar')
      : !stmt.fromClause?.length && !stmt.usingClause?.length && stmt.relation;
  if (!relation) return undefined;
  // (A WITH query of that name is not the table.)
  const withQueries: AstNode[] = level.withClause?.ctes ?? [];
  if (!relation.schemaname && withQueries.some((cte) => cte.CommonTableExpr?.ctename === relation.relname)) {
    return undefined;
  }
  const names = new Set([relation.alias?.aliasname ?? relation.relname]);
  const constant = (node: AstNode): boolean => {
    const cast = inner(node, 'TypeCast');
    return cast ? constant(cast.arg) : Boolean(inner(node, 'A_Const') || inner(node, 'ParamRef'));
  };
  const columnOf = (node: AstNode): string | undefined => {
    const fields: AstNode[] | undefined = inner(node, 'ColumnRef')?.fields;
    if (!fields || fields.length > 2 || (fields.length === 2 && !names.has(fields[0].String?.sval))) return undefined;
    return fields[fields.length - 1].String?.sval;
  };
  const columns: string[] = [];
  for (const conjunct of conjuncts(stmt.whereClause)) {
    const expr = inner(conjunct, 'A_Expr');
    const operator: AstNode[] | undefined = expr?.name;
    if (expr?.kind !== 'AEXPR_OP' || operator?.length !== 1 || operator[0].String?.sval !== '=') continue;
    const column = constant(expr.rexpr)
      ? columnOf(expr.lexpr)
      : constant(expr.lexpr)
        ? columnOf(expr.rexpr)
        : undefined;
    if (column) columns.push(column);
  }
  if (columns.length === 0) return undefined;
  const table = relation.schemaname
    ? `${quoteIdentifier(relation.schemaname)}.${quoteIdentifier(relation.relname)}`
    : quoteIdentifier(relation.relname);
  return { table, columns };
}

/** The wrappers the call sites inlined (with the wrappers inside them), once each. */
function wrappersInlined(sites: CallSite[]): BatchPlan['wrappers'] {
  const byOid = new Map<string, BatchPlan['wrappers'][number]>();
  for (const site of sites) {
    const wrapper = site.call.wrapper;
    for (const fn of wrapper?.chain ?? []) {
      const byPath = Boolean(byOid.get(fn.oid)?.byPath) || wrapper!.byPath.includes(fn);
      byOid.set(fn.oid, {
        oid: fn.oid,
        version: fn.version,
        name: fn.name,
        unique: fn.namesakes === undefined,
        byPath,
      });
    }
  }
  return [...byOid.values()];
}

/**
 * Stores per table row the results of groups read only through joins, at
 * levels whose argument query reads one plain table: the final statement then
 * joins on (ctid, xmin), a few bytes, instead of computing every input again
 * (for twelve model features that costs more than scoring them). A row
 * changed between the argument query and the statement has a new ctid; a new
 * row placed where a deleted one was (possible once nothing holds a snapshot
 * that sees the old one) has a new xmin; a table rewritten meanwhile (VACUUM
 * FULL, CLUSTER, TRUNCATE: rows move but keep xmin) has a new file, and its
 * stored answers are not read. So a stale pairing is impossible; a row the
 * argument query did not see finds no result and is called per row. Only
 * arguments that the final statement would evaluate to the same values
 * qualify (see `stableArguments`). Returns the tables such groups could use;
 * groups use them once `rowTables` confirms them.
 */
function chooseRowIdentity(
  groups: CallGroup[],
  index: Map<AstNode, CallSite>,
  statement: AstNode,
  rowTables: Pick<ReadonlySet<string>, 'has'> | undefined,
  packerShadowed: boolean,
  callsVolatile: VolatilityTest,
): string[] {
  const candidates = new Set<string>();
  const readByLookups = new Set(groups.flatMap((g) => g.dependsOn));
  const ctes = new Set<string>();
  walk(statement, (n) => {
    const cte = inner(n, 'CommonTableExpr');
    if (cte) ctes.add(cte.ctename);
    return undefined;
  });
  for (const group of groups) {
    if (readByLookups.has(group.id)) continue;
    if (!group.sites.every((site) => stableArguments(site.call))) continue;
    const tables = group.sites.map((site) => singleTable(site, index, ctes));
    const first = tables[0];
    if (!first || tables.some((t) => t?.name !== first.name || t.qualifier !== first.qualifier)) {
      // (Calls not joined by row, as a view's: read in place, as the plan made again may read it, they may be. A
      // view's sentiment and confidence columns are two sites of one group, reading the one table.)
      const reads = group.sites.map((site) => singleTable(site, index, ctes, false));
      if (reads[0] && reads.every((read) => read?.name === reads[0]!.name)) candidates.add(reads[0].name);
      continue;
    }
    candidates.add(first.name);
    if (!rowTables?.has(first.name)) continue;
    const rows = { qualifier: first.qualifier, table: first.name };
    const stepping = Boolean(group.stepped);
    const query = argumentQuery(group.sites[0], index, callsVolatile, rows, undefined, stepping);
    if (typeof query === 'string') continue;
    group.argumentSql = query.sql;
    group.rowIdentity = rows;
    const inputs = modelInputs(group.sites[0].call, packerShadowed);
    const separate =
      inputs && inputs.length > 0 && argumentQuery(group.sites[0], index, callsVolatile, rows, inputs, stepping);
    if (separate && typeof separate !== 'string') group.separateInputs = { sql: separate.sql, count: inputs.length };
  }
  return [...candidates];
}

/**
 * The model inputs of an invoke_endpoint call: the arguments packed into
 * `pg_catalog.json_build_array(…)` (or unqualified, where no function of the
 * database's own could be PostgreSQL's choice instead).
 */
function modelInputs(call: CallSite['call'], packerShadowed: boolean): AstNode[] | undefined {
  if (call.kind !== 'endpoint') return undefined;
  const builtin = call.wrapper ? call.wrapper.inlinedCall : call.node;
  const packed = inner(builtin.args?.[2], 'FuncCall');
  if (!packed || lastName(packed) !== 'json_build_array' || packed.func_variadic) return undefined;
  const schema = functionName(packed).length === 2 ? functionName(packed)[0] : undefined;
  if (schema ? schema !== 'pg_catalog' : packerShadowed) return undefined;
  return packed.args ?? [];
}

/**
 * Equality as the gateway's own joins to stored answers mean it: the built-in
 * operator, not one a schema before pg_catalog in the search_path defines.
 */
const EQ = 'OPERATOR(pg_catalog.=)';
const NE = 'OPERATOR(pg_catalog.<>)';

/** The file a table's rows live in now: it changes when the table is rewritten. Evaluated once per statement. */
const relationFile = (table: string) => `(SELECT pg_catalog.pg_relation_filenode(${quoteLiteral(table)}::regclass))`;

/** Expression nodes whose value depends only on the row, constants and parameters. */
const ROW_ONLY_NODES = new Set([
  'ColumnRef',
  'A_Const',
  'TypeCast',
  'ParamRef',
  'BoolExpr',
  'NullTest',
  'BooleanTest',
  'CoalesceExpr',
  'CaseExpr',
  'CaseWhen',
  'A_ArrayExpr',
  'MinMaxExpr',
  'TypeName',
  'String',
  'Integer',
  'Float',
  'Boolean',
  'List',
]);
/** Types whose literals mean the same in any statement (unlike 'now'::timestamptz or 'today'::date). */
const LITERAL_SAFE_TYPES = new Set([
  'int2',
  'int4',
  'int8',
  'float4',
  'float8',
  'numeric',
  'text',
  'varchar',
  'bpchar',
  'bool',
  'json',
  'jsonb',
]);
/** Types whose input reads 'now', 'today', … relative to the moment it is read. */
const TIME_TYPES = new Set([
  'date',
  'time',
  'timetz',
  'timestamp',
  'timestamptz',
  'daterange',
  'tsrange',
  'tstzrange',
  'datemultirange',
  'tsmultirange',
  'tstzmultirange',
]);

/**
 * Whether the call's arguments (its target, inputs and batch size, through a
 * wrapper's body too) are the same in the argument query and in the final
 * statement: columns of the row, constants, parameters, operators and a few
 * immutable functions. Anything else (now(), current_setting(), subqueries…)
 * keeps results keyed by input, where a difference falls back per row.
 */
function stableArguments(call: CallSite['call']): boolean {
  const builtin = call.wrapper ? call.wrapper.inlinedCall : call.node;
  const nodes: AstNode[] = [...(call.node.args ?? []), ...(builtin.args ?? [])];
  let stable = true;
  for (const arg of nodes) {
    walk({ root: arg }, (node) => {
      if (!stable) return false;
      const type = nodeType(node);
      // Inner objects and their fields ({ sval: … }) were judged with their node.
      if (type === undefined || !/^[A-Z]/.test(type)) return undefined;
      if (type === 'ColumnRef') {
        // A row's xmax, cmin and cmax change when another transaction locks or updates it.
        const fields: AstNode[] = inner(node, 'ColumnRef').fields;
        if (['xmax', 'cmin', 'cmax'].includes(fields[fields.length - 1]?.String?.sval)) stable = false;
        return false;
      }
      if (type === 'TypeCast') {
        // 'now'::timestamptz, 'today'::date, 't'::regclass: fixed when each statement is parsed.
        const cast = inner(node, 'TypeCast');
        const names: AstNode[] = cast.typeName.names;
        const typeName = names[names.length - 1]?.String?.sval;
        if (inner(cast.arg, 'A_Const') && !LITERAL_SAFE_TYPES.has(typeName)) stable = false;
        // Text read as a date or time may be 'now' (a column's or a parameter's): it reads differently later.
        if (TIME_TYPES.has(typeName)) stable = false;
        return undefined;
      }
      if (type === 'A_Const' || type === 'ParamRef' || type === 'TypeName') return false;
      if (type === 'FuncCall') {
        const fn = inner(node, 'FuncCall');
        const name = functionName(fn);
        const schema = name.length === 2 ? name[0] : 'pg_catalog';
        if (schema !== 'pg_catalog' || !ROW_ONLY_FUNCTIONS.has(name[name.length - 1]) || fn.over || fn.agg_star) {
          stable = false;
        }
        return undefined;
      }
      if (type === 'A_Expr') {
        if (inner(node, 'A_Expr').kind !== 'AEXPR_OP') stable = false;
        return undefined;
      }
      if (!ROW_ONLY_NODES.has(type)) stable = false;
      return undefined;
    });
  }
  return stable;
}

/** The one table a joinable call site's argument query reads, if it reads exactly one. */
function singleTable(
  site: CallSite,
  index: Map<AstNode, CallSite>,
  ctes: Set<string>,
  joined = true,
): { name: string; qualifier: string } | undefined {
  if (joined && !joinable(site)) return undefined;
  const from = argumentFrom(site.level, index);
  if (from?.items.length !== 1) return undefined;
  const table = inner(from.items[0], 'RangeVar');
  if (!table || table.catalogname || (!table.schemaname && ctes.has(table.relname))) return undefined;
  // `FROM f(…) s, t`: the join standing for s comes before t, so it could not refer to t's rows.
  // (In `t CROSS JOIN LATERAL f(…) s` the function follows its table.)
  if (site.fromFunction && typeof site.key === 'number' && site.level.stmt.fromClause.indexOf(from.items[0]) > site.key)
    return undefined;
  return {
    name: table.schemaname
      ? `${quoteIdentifier(table.schemaname)}.${quoteIdentifier(table.relname)}`
      : quoteIdentifier(table.relname),
    // Always quoted: a table called "user" or an alias "order" must not read as a keyword.
    qualifier: quoteIdentifier(table.alias?.aliasname ?? table.relname),
  };
}

/** What the rewrites of calls into reads of stored answers share. */
interface Rewriting {
  groupOfSite: Map<CallSite, CallGroup>;
  /** Calls whose per-row fallback is made only where these conditions hold (see ArgumentQuery.guard). */
  guards: Map<CallSite, string>;
  catalog: MlCatalog;
  statementNumber: string;
  aliasNumbers: number;
}

/** Replaces joinable call sites by reads of a LEFT JOIN against the stored results. */
function rewriteAsJoins(statement: AstNode, analysis: Analysis, rewriting: Rewriting): Set<CallSite> {
  const { groupOfSite, guards, catalog, statementNumber, aliasNumbers } = rewriting;
  const joined = new Set<CallSite>();
  // Innermost calls first, so that outer keys are computed from already rewritten arguments.
  const depthOf = (site: CallSite) => {
    let depth = 0;
    for (const other of analysis.sites) {
      if (other !== site && some({ FuncCall: site.call.node }, (n) => inner(n, 'FuncCall') === other.call.node))
        depth += 1;
    }
    return depth;
  };
  // A join on inputs computes them for every row of the level, where PostgreSQL computes a call's inputs only for
  // the rows it calls it for (a CASE, COALESCE, FILTER or condition guards `f(100 / t.b)`): inputs that may fail
  // are read through a lookup at the call, computed where the call would be (see rewriteAsLookups).
  const keyedSafely = (s: CallSite) =>
    Boolean(groupOfSite.get(s)!.rowIdentity) ||
    s.fromFunction !== undefined ||
    !inputsMayFail(s.call.node, catalog) ||
    calledForEveryRowRead(s);
  const sites = analysis.sites
    .filter((s) => groupOfSite.has(s) && joinable(s) && keyedSafely(s))
    .sort((a, b) => depthOf(a) - depthOf(b));
  const joinsByLevel = new Map<Level, ResultsJoin[]>();
  // Calls written alike at one level read one join: the copies stay equal, as PostgreSQL needs them to be
  // (an aggregate's DISTINCT argument and its ORDER BY), and the statement makes one join, not two.
  const aliasOfCall = new Map<Level, Map<string, string>>();
  const emptyRowAlias = `aws_ml_one${aliasNumbers}_list`;
  for (const site of sites) {
    // Subqueries in the arguments (`f((SELECT g(t2.doc) … WHERE t2.id = t.id))`) get their joins now: the
    // arguments are copied into this call's join condition and fallback below.
    for (const [level, joins] of joinsByLevel) {
      if (level !== site.level && some({ FuncCall: site.call.node }, (n) => inner(n, 'SelectStmt') === level.stmt)) {
        rebuildFrom(level, joins, emptyRowAlias);
        joinsByLevel.delete(level);
      }
    }
    const group = groupOfSite.get(site)!;
    const current = recognizeMlCall(site.call.node, catalog);
    if (!current) continue;
    const written = `${group.id} ${deparse({ FuncCall: site.call.node })}`;
    const calls = aliasOfCall.get(site.level) ?? new Map<string, string>();
    aliasOfCall.set(site.level, calls);
    const sharedAlias = site.fromFunction ? undefined : calls.get(written);
    const alias = sharedAlias ?? `aws_ml_r${aliasNumbers + site.id}`;
    const rows = group.rowIdentity;
    const on = rows
      ? `${alias}.aws_ml_stmt ${EQ} ${statementNumber} AND ${alias}.aws_ml_group ${EQ} ${group.id} AND ${alias}.aws_ml_row_file ${EQ} ${relationFile(rows.table)} AND ${alias}.aws_ml_row_tid ${EQ} ${rows.qualifier}.ctid AND ${alias}.aws_ml_row_xmin ${EQ} ${rows.qualifier}.xmin`
      : `${alias}.aws_ml_stmt ${EQ} ${statementNumber} AND ${alias}.aws_ml_kind ${EQ} '${current.kind}' AND ${alias}.aws_ml_target ${EQ} ${current.targetSql} AND ${alias}.aws_ml_key ${EQ} ${current.keySql}`;
    const results = rows
      ? `(SELECT stmt AS aws_ml_stmt, grp AS aws_ml_group, row_file AS aws_ml_row_file, row_tid AS aws_ml_row_tid, row_xmin AS aws_ml_row_xmin, row_tid AS aws_ml_key, out_text AS aws_ml_text, out_real AS aws_ml_real FROM ${ROW_RESULTS} AS ${alias}) AS ${alias}`
      : `(SELECT stmt AS aws_ml_stmt, kind AS aws_ml_kind, target AS aws_ml_target, key AS aws_ml_key, out_text AS aws_ml_text, out_real AS aws_ml_real FROM ${RESULTS} AS ${alias}) AS ${alias}`;
    const original = clone({ FuncCall: site.call.node });
    const guard = guards.get(site);
    if (site.fromFunction) {
      const names = site.fromFunction.columnNames ?? ['sentiment', 'confidence'];
      const call = deparse(original);
      const columns = [
        `CASE WHEN ${alias}.aws_ml_key IS NULL THEN ${guardedCall(original, guard, 'sentiment')} ELSE ${alias}.aws_ml_text::varchar END`,
        `CASE WHEN ${alias}.aws_ml_key IS NULL THEN ${guardedCall(original, guard, 'confidence')} ELSE ${alias}.aws_ml_real END`,
      ];
      // A row without a stored answer makes the call once, as the function in FROM would (not once per
      // column): the branch that calls it has only a condition on the enclosing row, which PostgreSQL
      // checks before it runs the branch at all.
      const fallback = `aws_ml_f${aliasNumbers + site.id}`;
      const [first, second] = [quoteIdent(names[0]), quoteIdent(names[1] ?? 'confidence')];
      // (A guard, which calls functions, PostgreSQL would test on the function's row, after the call: it is
      // computed first, and the call made in a subquery that reads it, where it is a condition tested once.)
      const tested = `aws_ml_g${aliasNumbers + site.id}`;
      const source = guard
        ? `(SELECT ${guard} AS aws_ml_ok OFFSET 0) AS ${tested} CROSS JOIN LATERAL (SELECT * FROM ${call} AS ${fallback} WHERE ${tested}.aws_ml_ok OFFSET 0) AS ${fallback}`
        : `${call} AS ${fallback}`;
      const lateral = () =>
        parseFromItem(
          `LATERAL (SELECT ${fallback}.sentiment AS ${first}, ${fallback}.confidence AS ${second} FROM ${source} WHERE ${alias}.aws_ml_key IS NULL ` +
            `UNION ALL SELECT ${alias}.aws_ml_text::varchar, ${alias}.aws_ml_real WHERE ${alias}.aws_ml_key IS NOT NULL) AS ${quoteIdent(site.fromFunction!.alias)}`,
        );
      group.joined = true;
      group.aliases.push(alias);
      joined.add(site);
      if (!Array.isArray(site.holder)) {
        // `L [CROSS | LEFT] JOIN LATERAL f(…) s`: L gets the stored answers, s reads them. A LEFT JOIN's
        // condition can leave s NULL, so only a cross join's columns become plain expressions.
        const join = site.holder;
        // Plain expressions only where s is never NULL-extended and no USING or NATURAL join names its columns.
        const plainAbove = joinsAbove(site.level.stmt.fromClause, join)!.path.every(
          (j) => j.jointype === 'JOIN_INNER' && !j.usingClause && !j.isNatural,
        );
        join.larg = {
          JoinExpr: {
            jointype: 'JOIN_LEFT',
            larg: join.larg,
            rarg: parseFromItem(results),
            quals: parseExpression(on),
          },
        };
        const cross = join.jointype === 'JOIN_INNER' && !join.quals && plainAbove;
        join.rarg =
          cross && replaceFunctionColumns(statement, site, [names[0], names[1] ?? 'confidence'], columns)
            ? parseFromItem(`(SELECT) AS aws_ml_one${aliasNumbers + site.id}`)
            : lateral();
        continue;
      }
      const fromList: AstNode[] = site.holder;
      fromList[site.key as number] = replaceFunctionColumns(
        statement,
        site,
        [names[0], names[1] ?? 'confidence'],
        columns,
      )
        ? { __awsmlFromFunction: { results, on } }
        : { __awsmlFromFunction: { lateral: lateral(), results, on } };
      const list = joinsByLevel.get(site.level) ?? [];
      list.push({ results, on, site });
      joinsByLevel.set(site.level, list);
      continue;
    } else if (site.call.wrapper) {
      const substituted = answeredBody(site, alias);
      if (!substituted) continue;
      // The outer cast keeps `(wrapper(...)).field` parenthesized when deparsed.
      const returnType = site.call.wrapper.fn.returnType;
      // A STRICT wrapper given a NULL is NULL, whatever another row with the same inputs was answered.
      const nullWhen = site.call.wrapper.nullWhen;
      const replacement = parseExpression(
        `(CASE${nullWhen ? ` WHEN ${nullWhen} THEN NULL` : ''} WHEN ${alias}.aws_ml_key IS NULL THEN ${guardedCall(original, guard)} ELSE (${deparse(substituted)})::${returnType} END)::${returnType}`,
      );
      nameTarget(site);
      site.holder[site.key] = replacement;
    } else if (site.call.kind === 'sentiment') {
      const fieldHolder = site.fieldHolder!;
      const field = fieldHolder.field;
      nameTarget(site);
      fieldHolder.holder[fieldHolder.key] = parseExpression(
        `CASE WHEN ${alias}.aws_ml_key IS NULL THEN ${guardedCall(original, guard, field)} ELSE ${valueColumn(alias, 'sentiment', field)} END`,
      );
    } else {
      nameTarget(site);
      site.holder[site.key] = parseExpression(
        `CASE WHEN ${alias}.aws_ml_key IS NULL THEN ${guardedCall(original, guard)} ELSE ${alias}.aws_ml_text::varchar END`,
      );
    }
    group.joined = true;
    joined.add(site);
    calls.set(written, alias);
    if (sharedAlias) continue;
    const list = joinsByLevel.get(site.level) ?? [];
    list.push({ results, on, site });
    joinsByLevel.set(site.level, list);
    group.aliases.push(alias);
  }
  for (const [level, joins] of joinsByLevel) rebuildFrom(level, joins, emptyRowAlias);
  return joined;
}

/**
 * Calls of the statement that no join answers (an UPDATE's SET list, an
 * UPDATE's or DELETE's WHERE, levels with FOR UPDATE or `SELECT *`, HAVING
 * and aggregate arguments of grouped levels): each reads its stored answer
 * through a subquery that probes the results table's index on the input (a
 * few µs a row, where the in-database function's own lookup costs tens), and
 * is the original call when there is none. A stored NULL answer also takes
 * the original call, which answers the same. Row changes made meanwhile are
 * seen as they are: the subquery reads the row version the statement reads.
 * Calls outside aggregates of a grouped level stay as written, since GROUP BY
 * matches them by their expression.
 */
function rewriteAsLookups(analysis: Analysis, joined: ReadonlySet<CallSite>, rewriting: Rewriting): void {
  const { groupOfSite, guards, catalog, statementNumber, aliasNumbers } = rewriting;
  const aliasOfCall = new Map<Level, Map<string, string>>();
  for (const site of analysis.sites) {
    const group = groupOfSite.get(site);
    if (!group || group.rowIdentity || site.fromFunction || site.call.wrapper) continue;
    if (joined.has(site)) continue;
    const alias = `aws_ml_r${aliasNumbers + site.id}`;
    const { level } = site;
    // Only inputs the index can be probed with: a volatile function (another ML call, a user's
    // PL/pgSQL) in them would make the probe a scan of every stored answer, for every row.
    if (!stableArguments(site.call)) continue;
    if (insideMatchedExpression(level)) continue;
    if (level.kind === 'select') {
      // A stored definition (a view's) is not part of the statement's text.
      if (!level.joinable || !['target', 'where', 'having', 'order', 'join-on', 'values'].includes(site.clause)) {
        continue;
      }
      // (WHERE and JOIN conditions are evaluated before grouping.)
      if (level.aggregated && !site.insideAggregate && !['where', 'join-on'].includes(site.clause)) continue;
      // DISTINCT matches ORDER BY expressions to the select list: two probes are never equal.
      if (level.stmt.distinctClause) continue;
    } else if (!['target', 'where', 'join-on'].includes(site.clause)) {
      continue;
    }
    const current = recognizeMlCall(site.call.node, catalog);
    if (!current) continue;
    const field = site.call.kind === 'sentiment' ? site.fieldHolder?.field : undefined;
    if (site.call.kind === 'sentiment' && field !== 'sentiment' && field !== 'confidence') continue;
    const column = field === 'confidence' ? 'out_real' : 'out_text::varchar';
    const original = { FuncCall: site.call.node };
    const guard = guards.get(site);
    // Copies of a call at one level are written alike (`SET (a, b) = ROW(f(x), …)` holds one per column,
    // which must stay equal to be one assignment).
    const calls = aliasOfCall.get(level) ?? new Map<string, string>();
    aliasOfCall.set(level, calls);
    const written = `${group.id} ${deparse(original)}`;
    const probe = calls.get(written) ?? alias;
    calls.set(written, probe);
    const stored =
      `(SELECT ${probe}.${column} FROM ${RESULTS} AS ${probe} WHERE ${probe}.stmt ${EQ} ${statementNumber}` +
      ` AND ${probe}.kind ${EQ} '${current.kind}' AND ${probe}.target ${EQ} ${current.targetSql} AND ${probe}.key ${EQ} ${current.keySql} LIMIT 1)`;
    nameTarget(site); // the column keeps the name PostgreSQL gives the call, not `coalesce`
    if (field) {
      const holder = site.fieldHolder!;
      holder.holder[holder.key] = parseExpression(`COALESCE(${stored}, ${guardedCall(original, guard, field)})`);
    } else {
      site.holder[site.key] = parseExpression(`COALESCE(${stored}, ${guardedCall(original, guard)})`);
    }
    if (probe === alias) group.aliases.push(alias);
    group.probed = true;
  }
}

/**
 * `FROM t, detect_sentiment(t.doc, 'en') s`: when every use of s is `s.sentiment`
 * or `s.confidence` in s's own query level (no `s.*`, no whole-row `s`, no
 * unqualified column that could be one of them, none in a subquery), those
 * uses become the expressions themselves and s leaves the FROM list. Else a
 * LATERAL subquery provides the columns, which PostgreSQL runs once per row
 * (the per-row fallback call in it is volatile, so it cannot be flattened).
 */
function replaceFunctionColumns(statement: AstNode, site: CallSite, names: string[], columns: string[]): boolean {
  const alias = site.fromFunction!.alias;
  const uses: { holder: AstNode; key: string | number; column: number }[] = [];
  let safe = true;
  walk({ root: statement }, (node, parent, key) => {
    const ref = inner(node, 'ColumnRef');
    if (!ref || parent === undefined || key === undefined) return undefined;
    const fields: (string | undefined)[] = ref.fields.map((f: AstNode) => f.String?.sval);
    if (fields.length === 1 && (fields[0] === alias || names.includes(fields[0]!))) safe = false;
    else if (fields.includes(alias)) {
      const column = fields.length === 2 && fields[0] === alias ? names.indexOf(fields[1]!) : -1;
      if (column < 0) safe = false;
      else uses.push({ holder: parent as AstNode, key, column });
    }
    return false;
  });
  // (Nor where no column is used: the function would go, and with it the calls that raise what its arguments
  // are refused for, and the parameters only they name, which PostgreSQL then cannot type.)
  if (!safe || uses.length === 0) return false;
  // Only uses in the level's own clauses (FROM items and subqueries excluded).
  const local = new Set<AstNode>();
  const stmt = site.level.stmt;
  for (const clause of ['targetList', 'whereClause', 'groupClause', 'havingClause', 'sortClause', 'distinctClause']) {
    walk({ root: stmt[clause] }, (node, parent, key) => {
      if (inner(node, 'SubLink')) return false;
      if (inner(node, 'ColumnRef') && parent !== undefined && key !== undefined)
        local.add((parent as AstNode)[key as string]);
      return undefined;
    });
  }
  if (!uses.every((use) => local.has(use.holder[use.key as string]))) return false;
  // The output names PostgreSQL gives the original expressions (`s.sentiment::text` is "sentiment").
  for (const target of stmt.targetList ?? []) {
    const res = target.ResTarget;
    const containsUse = uses.some((u) => {
      const use = u.holder[u.key as string];
      return res.val === use || some(res.val, (n) => n === use);
    });
    if (containsUse && !res.name) res.name = figureColumnName(res.val);
  }
  for (const use of uses) use.holder[use.key as string] = parseExpression(columns[use.column]);
  return true;
}

function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

/** Keeps the output column name PostgreSQL would have given the original expression. */
function nameTarget(site: CallSite): void {
  if (site.clause !== 'target') return;
  for (const target of site.level.stmt.targetList ?? []) {
    const res = target.ResTarget;
    if (res.name) continue;
    const contains = some(res.val, (n) => inner(n, 'FuncCall') === site.call.node);
    if (contains) res.name = figureColumnName(res.val);
  }
}

/** A join to add to a level: the results subquery (as SQL), its condition, the call site it answers. */
interface ResultsJoin {
  results: string;
  on: string;
  site: CallSite;
}

/** Chains the level's FROM items with the result joins: `(a CROSS JOIN b) LEFT JOIN results ON …`. */
function rebuildFrom(level: Level, joins: ResultsJoin[], emptyRowAlias: string): void {
  const items: AstNode[] = level.stmt.fromClause;
  qualifySystemColumns(level.stmt, items);
  let acc: AstNode | undefined;
  const join = (jointype: string, larg: AstNode, rarg: AstNode, quals?: AstNode) => ({
    JoinExpr: { jointype, larg, rarg, ...(quals ? { quals } : {}) },
  });
  // Prefixed column names: the join must not make a user's unqualified column ambiguous.
  const resultsJoin = (left: AstNode, results: string, on: string) =>
    join('JOIN_LEFT', left, parseFromItem(results), parseExpression(on));
  for (const item of items) {
    const marker = item.__awsmlFromFunction;
    if (marker) {
      acc = resultsJoin(acc ?? parseFromItem(`(SELECT) AS ${emptyRowAlias}`), marker.results, marker.on);
      if (marker.lateral) acc = join('JOIN_INNER', acc, marker.lateral);
      continue;
    }
    acc = acc ? join('JOIN_INNER', acc, item) : item;
  }
  for (const j of joins) {
    if (j.site.fromFunction) continue;
    acc = resultsJoin(acc!, j.results, j.on);
  }
  level.stmt.fromClause = [acc];
}

/**
 * The numbers the statement's own names leave free: the gateway's aliases
 * (`aws_ml_r<n>`, `aws_ml_one<n>…`) start above any such name a user wrote,
 * which would otherwise be "specified more than once" (42712).
 */
function firstFreeAliasNumber(statement: AstNode): number {
  let highest = -1;
  for (const match of JSON.stringify(statement).matchAll(/"aws_ml_(?:r|one)(\d*)[^"]*"/g)) {
    highest = Math.max(highest, match[1] === '' ? 0 : Math.min(Number(match[1]), 1e9));
  }
  return highest + 1;
}

const SYSTEM_COLUMNS = new Set(['ctid', 'xmin', 'xmax', 'cmin', 'cmax', 'tableoid']);

/**
 * An unqualified system column (`ctid`, `xmin`, `tableoid`…) names the one
 * table of a plain FROM list; under a join PostgreSQL no longer finds it
 * (42703). Before the results join is added, such columns of this level (and
 * of subqueries that resolve them here) get the table's name.
 */
function qualifySystemColumns(stmt: AstNode, items: AstNode[]): void {
  const tables = items.filter((item) => inner(item, 'RangeVar'));
  if (tables.length !== 1) return; // none, or several: PostgreSQL would not have found it either
  const table = inner(tables[0], 'RangeVar');
  const qualifier = table.alias?.aliasname ?? table.relname;
  const ownsSystemColumns = (select: AstNode) =>
    (select.fromClause ?? []).some((item: AstNode) => inner(item, 'RangeVar'));
  walk({ SelectStmt: stmt }, (node) => {
    const select = inner(node, 'SelectStmt');
    if (select && select !== stmt && ownsSystemColumns(select)) return false;
    const column = inner(node, 'ColumnRef');
    const name = column?.fields.length === 1 ? column.fields[0].String?.sval : undefined;
    if (name && SYSTEM_COLUMNS.has(name)) column.fields = [{ String: { sval: qualifier } }, column.fields[0]];
    return undefined;
  });
}
