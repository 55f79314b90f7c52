import { type AstNode, clone, deparse, functionName, inner, nodeType, some, walk } from '../sql/ast.js';
import { parse } from '../sql/parser.js';
import { quoteIdentifier, quoteLiteralAnyStrings } from '../sql/quote.js';
import type { MlCatalog, MlView } from './catalog.js';
import { findView } from './levels.js';
import { recognizeMlCall } from './ml-calls.js';
import type { BatchPlan } from './planner.js';
import { ROW_ONLY_FUNCTIONS } from './pure-functions.js';

/** What batch mode works on in a statement, and how the statement runs afterwards. */
export interface BatchTarget {
  /** The query whose ML calls are batched (the SELECT of an INSERT, a CTAS, an EXPLAIN …). */
  query: AstNode;
  /** The query is a stored definition (materialized view): read results per row, never rewrite it. */
  stored: boolean;
  explain?: { analyze: boolean; text: boolean };
  /** DECLARE … CURSOR, the cursor's name: its rows are fetched later, and may still read the stored answers then. */
  cursor?: string;
  /**
   * How PostgreSQL checks the statement as written before anything is scored (SELECT, INSERT, UPDATE, DELETE,
   * MERGE, CREATE TABLE AS, CREATE MATERIALIZED VIEW, DECLARE, COPY), without running it: parsed, then `bind`, a
   * plain SELECT bound to a portal, or `explain`, other statements EXPLAINed (binding does not start their
   * executor, which checks privileges).
   * Undefined for statements left unchecked.
   */
  checkedBy?: 'bind' | 'explain';
  /**
   * SQL true when the session's role may run it, for a privilege PostgreSQL checks only as it runs it, which
   * neither binding nor EXPLAIN sees (REFRESH MATERIALIZED VIEW: the view's owner, or MAINTAIN on it), or for
   * another check it makes then (DECLARE: no cursor of that name yet).
   */
  mayRun?: string;
  /** DECLARE without WITH HOLD: PostgreSQL runs it only in a transaction block, and refuses it elsewhere. */
  inBlockOnly?: boolean;
  /** What is checked in the statement's place: COPY's query (COPY can be neither bound nor EXPLAINed), EXPLAIN's statement. */
  checkedSql?: string;
  /**
   * Running it writes or locks rows, or makes a table: a read-only
   * transaction refuses it (but for temp tables), so batch mode leaves it to
   * the per-row path there rather than score inputs for a statement that fails.
   */
  writes: boolean;
  /**
   * CREATE TABLE / MATERIALIZED VIEW … AS: the relation it makes. If one of
   * that name exists, or the user may not create it there, PostgreSQL skips
   * or refuses the statement, and batch mode scores nothing for it.
   */
  makes?: { schema?: string; name: string; temp: boolean };
  /** The statement to run once results are stored. */
  finalSql(plan: BatchPlan): string;
}

const CATALOG_DDL = new Set([
  'CreateFunctionStmt',
  'ViewStmt',
  'DropStmt',
  'AlterFunctionStmt',
  'RenameStmt',
  'AlterObjectSchemaStmt',
  'CreateExtensionStmt',
  'AlterExtensionStmt',
  'DoStmt',
]);

/** DECLARE's WITH HOLD option bit (CURSOR_OPT_HOLD in PostgreSQL's parsenodes.h). */
const CURSOR_OPT_HOLD = 0x0020;

/** Statements after which the set of ML wrappers and views may have changed. */
export function isCatalogDdl(stmt: AstNode): boolean {
  const type = nodeType(stmt) ?? '';
  if (CATALOG_DDL.has(type)) return true;
  return type === 'CreateTableAsStmt' && stmt.CreateTableAsStmt.objtype === 'OBJECT_MATVIEW';
}

function optionNames(options: AstNode[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const option of options ?? []) {
    const def = inner(option, 'DefElem');
    if (!def) continue;
    // (`ANALYZE 0`: a number; the parse tree leaves a zero out.)
    const number = def.arg?.Integer ? String(def.arg.Integer.ival ?? 0) : def.arg?.Float?.fval;
    const arg = def.arg
      ? (def.arg.String?.sval ?? def.arg.Boolean?.boolval ?? def.arg.A_Const?.sval?.sval ?? number ?? 'true')
      : 'true';
    out.set(def.defname, String(arg).toLowerCase());
  }
  return out;
}

/** The statement as planning left it, written once (planning is done when it is first asked for). */
const rewritten = (stmt: AstNode) => {
  let sql: string | undefined;
  return () => {
    sql ??= deparse(stmt);
    return sql;
  };
};

/** A statement prepared with SQL's PREPARE in the session: its query and declared parameter types. */
export interface SqlPrepared {
  query: AstNode;
  types: AstNode[];
}

/**
 * The query `EXECUTE name(args)` runs, with the arguments in place of its
 * parameters (cast to the declared types), or undefined for an unknown name.
 */
function executedQuery(execute: AstNode, prepared: ReadonlyMap<string, SqlPrepared>): AstNode | undefined {
  const statement = prepared.get(execute.name);
  if (!statement) return undefined;
  const args: AstNode[] = execute.params ?? [];
  let highest = 0;
  walk(statement.query, (node) => {
    highest = Math.max(highest, inner(node, 'ParamRef')?.number ?? 0);
    return undefined;
  });
  // (A wrong number of arguments is PostgreSQL's error to report, with nothing scored first.)
  if (args.length !== Math.max(highest, statement.types.length)) return undefined;
  const query = { root: clone(statement.query) };
  walk(query, (node, parent, key) => {
    const param = inner(node, 'ParamRef');
    if (!param || parent === undefined || key === undefined) return undefined;
    const arg = args[(param.number ?? 0) - 1];
    const type = statement.types[(param.number ?? 0) - 1];
    if (arg)
      (parent as AstNode)[key] = type ? { TypeCast: { arg: clone(arg), typeName: clone(type.TypeName) } } : clone(arg);
    return false;
  });
  return query.root;
}

const WRITING_NODES = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt', 'CreateTableAsStmt']);

/** Whether running the statement writes (also in a CTE or through SELECT INTO) or locks rows. */
function writes(stmt: AstNode): boolean {
  return some(stmt, (node) => {
    const select = inner(node, 'SelectStmt');
    if (select && (select.intoClause || select.lockingClause)) return true;
    const type = nodeType(node);
    return type !== undefined && WRITING_NODES.has(type);
  });
}

/**
 * Finds the query batch mode can work on, or undefined for statements it
 * leaves alone. `prepared` holds what an EXECUTE's statement name stands
 * for, as the server has it: the EXECUTE runs as written, its calls reading
 * the answers they were given beforehand by input.
 */
export function batchTarget(
  stmt: AstNode,
  catalog: MlCatalog,
  prepared: ReadonlyMap<string, SqlPrepared> = new Map(),
): BatchTarget | undefined {
  const type = nodeType(stmt);
  const node = type ? stmt[type] : undefined;
  switch (type) {
    case 'SelectStmt':
    case 'InsertStmt':
    case 'UpdateStmt':
    case 'DeleteStmt':
    case 'MergeStmt':
      return {
        query: stmt,
        stored: false,
        checkedBy: type !== 'SelectStmt' || node.intoClause ? 'explain' : 'bind',
        writes: writes(stmt),
        finalSql: rewritten(stmt),
      };
    case 'CreateTableAsStmt': {
      if (node.into?.skipData) return undefined;
      const matview = node.objtype === 'OBJECT_MATVIEW';
      const original = deparse(stmt);
      const made = node.into?.rel;
      const makes = made && { schema: made.schemaname, name: made.relname, temp: made.relpersistence === 't' };
      const execute = inner(node.query, 'ExecuteStmt');
      if (execute) {
        // CREATE TABLE … AS EXECUTE name(args): as EXECUTE alone.
        const query = executedQuery(execute, prepared);
        return query && { query, stored: true, writes: true, makes, finalSql: () => original };
      }
      // (PostgreSQL counts the names against the query's columns only as it runs it.)
      if (moreNamesThanColumns(node.into?.colNames ?? [], node.query)) return undefined;
      return {
        query: node.query,
        stored: matview,
        checkedBy: 'explain',
        writes: true,
        makes,
        finalSql: matview ? () => original : rewritten(stmt),
      };
    }
    case 'DeclareCursorStmt':
    case 'CopyStmt':
      if (!node.query) return undefined;
      return {
        query: node.query,
        stored: false,
        cursor: type === 'DeclareCursorStmt' ? node.portalname : undefined,
        ...(type === 'DeclareCursorStmt'
          ? {
              checkedBy: 'explain',
              inBlockOnly: ((node.options ?? 0) & CURSOR_OPT_HOLD) === 0,
              mayRun: cursorNameFree(node.portalname),
            }
          : {
              // (A SELECT is checked bound; binding a writing query does not start its executor.)
              checkedBy: nodeType(node.query) === 'SelectStmt' ? 'bind' : 'explain',
              checkedSql: deparse(node.query),
              mayRun: copyTarget(node),
            }),
        writes: writes(node.query),
        finalSql: rewritten(stmt),
      };
    case 'ExplainStmt': {
      const options = optionNames(node.options);
      const inner = batchTarget(node.query, catalog);
      if (!inner || inner.stored) return undefined;
      const format = options.get('format') ?? 'text';
      // As PostgreSQL reads a boolean option (defGetBoolean: true, false, on, off, 1, 0); one it refuses runs
      // nothing either.
      const analyze = options.has('analyze') && ['true', 'on', '1'].includes(options.get('analyze')!);
      // (PostgreSQL refuses ANALYZE with GENERIC_PLAN: nothing to score for it.)
      if (analyze && options.has('generic_plan') && options.get('generic_plan') !== 'false') return undefined;
      return {
        query: inner.query,
        stored: false,
        explain: { analyze, text: format === 'text' },
        // (Only EXPLAIN ANALYZE runs it, and only its statement can be checked.)
        ...(analyze && inner.checkedBy
          ? { checkedBy: inner.checkedBy, checkedSql: inner.checkedSql ?? deparse(node.query) }
          : {}),
        writes: analyze && inner.writes,
        makes: inner.makes,
        finalSql: rewritten(stmt),
      };
    }
    case 'ExecuteStmt': {
      const query = executedQuery(node, prepared);
      if (!query) return undefined;
      const original = deparse(stmt);
      return { query, stored: true, writes: writes(query), finalSql: () => original };
    }
    case 'RefreshMatViewStmt': {
      if (node.skipData) return undefined;
      const relation = node.relation;
      const matviews = catalog.views.filter((v) => v.kind === 'matview');
      const view = findView(matviews, relation.schemaname, relation.relname, catalog.searchPath);
      if (!view) return undefined;
      const [definition] = parse(view.definition);
      const original = deparse(stmt);
      return {
        query: definition.stmt,
        stored: true,
        writes: true,
        mayRun: refreshable(relation, view),
        finalSql: () => original,
      };
    }
    default:
      return undefined;
  }
}

/**
 * Whether the role may refresh the materialized view, as PostgreSQL decides: from PostgreSQL 17, MAINTAIN on it
 * (its owner has it unless revoked); before, its owner's privileges. (CASE: MAINTAIN is unknown before 17.) The
 * name may find another view of that name than the catalog's, which is the one scored: then not.
 */
function refreshable(relation: AstNode, view: MlView): string {
  const name = [relation.schemaname, relation.relname]
    .filter((n) => n !== undefined)
    .map(quoteIdentifier)
    .join('.');
  // (Operators and types named with their schema, as the functions: it runs with the client's search_path.)
  const eq = 'OPERATOR(pg_catalog.=)';
  return `COALESCE((SELECT CASE WHEN pg_catalog.current_setting('server_version_num')::pg_catalog.int4 OPERATOR(pg_catalog.>=) 170000
                THEN pg_catalog.has_table_privilege(c.oid, 'MAINTAIN') ELSE pg_catalog.pg_has_role(c.relowner, 'USAGE') END
      FROM pg_catalog.pg_class c WHERE c.oid ${eq} pg_catalog.to_regclass(${quoteLiteralAnyStrings(name)}::pg_catalog.text)
        AND c.oid ${eq} ${quoteLiteralAnyStrings(view.oid)}::pg_catalog.oid), false)`;
}

/** For DECLARE: SQL true when the session has no cursor of that name (PostgreSQL refuses a second, 42P03). */
function cursorNameFree(name: string): string {
  return `NOT EXISTS (SELECT FROM pg_catalog.pg_cursors c
    WHERE c.name OPERATOR(pg_catalog.=) ${quoteLiteralAnyStrings(name)}::pg_catalog.text)`;
}

/**
 * CREATE TABLE t (a, b, c) AS …: whether it names more columns than the query has, where its target list
 * tells (no `*`); PostgreSQL refuses it (42601).
 */
function moreNamesThanColumns(names: AstNode[], query: AstNode): boolean {
  let select = inner(query, 'SelectStmt');
  // (A set operation's columns are its first arm's.)
  while (select && select.op !== 'SETOP_NONE') select = select.larg;
  if (!select || names.length === 0) return false;
  if (select.valuesLists) return names.length > (select.valuesLists[0].List?.items ?? []).length;
  const targets: AstNode[] = select.targetList ?? [];
  if (some(targets, (n) => nodeType(n) === 'A_Star')) return false;
  return names.length > targets.length;
}

/** For COPY … TO a server file or program: SQL true when the role may write one (else undefined). */
function copyTarget(copy: AstNode): string | undefined {
  if (!copy.filename) return undefined;
  const role = copy.is_program ? 'pg_execute_server_program' : 'pg_write_server_files';
  return `pg_catalog.pg_has_role(current_user, '${role}', 'USAGE')`;
}

/** Tables a query reads (for their parallel_workers setting). */
export function tablesOf(query: AstNode): { schema?: string; name: string }[] {
  const out: { schema?: string; name: string }[] = [];
  walk(query, (node) => {
    const rv = inner(node, 'RangeVar');
    if (rv && rv.schemaname !== 'pg_temp') out.push({ schema: rv.schemaname, name: rv.relname });
    return undefined;
  });
  return out;
}

/** Batch mode's own round trips cost more than this many calls made one by one (see evaluatesOnce). */
const FEW_CALLS = 2;

/**
 * Whether a query (before planning) makes each of its ML calls once, and
 * makes at most a couple: a SELECT without FROM (`SELECT
 * detect_sentiment($1, 'en')`), none of whose expressions can return several
 * rows (a subquery, a set-returning function: only the calls themselves, with
 * arguments of no other function, and known scalar built-ins are called).
 * Batching has nothing to gather there, and its own work (reading the
 * session's settings, the argument query, loading the answer) would only add
 * to the calls' time: such a query goes per row.
 */
export function evaluatesOnce(query: AstNode, catalog: MlCatalog): boolean {
  const select = inner(query, 'SelectStmt');
  if (!select || select.fromClause?.length || select.valuesLists || select.withClause) return false;
  if (select.larg || (select.op && select.op !== 'SETOP_NONE')) return false;
  let calls = 0;
  const severalRows = some(query, (node) => {
    const type = nodeType(node);
    if (type === 'SubLink') return true;
    if (type !== 'FuncCall') return false;
    const call = inner(node, 'FuncCall');
    if (recognizeMlCall(call, catalog)) {
      calls += 1;
      return false;
    }
    const name = functionName(call);
    return !((name.length === 1 || name[0] === 'pg_catalog') && ROW_ONLY_FUNCTIONS.has(name[name.length - 1]));
  });
  return !severalRows && calls > 0 && calls <= FEW_CALLS;
}
