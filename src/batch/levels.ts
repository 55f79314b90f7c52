import { type AstNode, callsFunction, inner, nodeType, some, walk } from '../sql/ast.js';
import { parse } from '../sql/parser.js';
import { quoteIdentifier } from '../sql/quote.js';
import { type MlCatalog, type MlView, namesGatewayColumns, SIDE_EFFECT_FUNCTIONS, usesWriter } from './catalog.js';
import { type MlCall, recognizeMlCall } from './ml-calls.js';

/** One query level (a SELECT, the scan of an UPDATE or DELETE, or a stored view definition). */
export interface Level {
  id: number;
  kind: 'select' | 'update' | 'delete';
  /** The statement node's inner object (SelectStmt / UpdateStmt / DeleteStmt). */
  stmt: AstNode;
  parent: Level | undefined;
  /** The statement's WITH clause in scope for this level's argument queries. */
  withClause: AstNode | undefined;
  /** Calls here may be rewritten into joins (false for stored definitions: views, matviews). */
  joinable: boolean;
  /**
   * Calls here read their answers through index probes only, never a join:
   * a cursor's plan must stay a scan of its one table for `WHERE CURRENT OF`.
   */
  probesOnly?: boolean;
  /** The level groups or aggregates: calls outside aggregate arguments run after grouping. */
  aggregated: boolean;
  /** The statement's top level (its LIMIT bounds what must be scored). */
  top: boolean;
  /**
   * The parent level reads this one as an item of its FROM list (a subquery
   * or a view, neither LATERAL nor under a join): PostgreSQL applies the
   * parent's conditions on its columns inside it (see planner's argumentQuery).
   */
  readAs?: { item: AstNode; alias: string | undefined; columnNames: string[] | undefined; joined?: boolean };
  /** A WITH query: PostgreSQL computes it once (one with an ML call, volatile, is never inlined). */
  withQuery?: boolean;
  /** For a WITH query, the SELECT level whose WITH clause defines it (not its parent: it reads none of its rows). */
  definedBy?: Level;
  /** The call sites of this level. */
  sites: CallSite[];
  /**
   * A level evaluated for each of the parent's rows, which it may read (a
   * correlated subquery): a subquery giving a value in one of the parent's
   * expressions, or a LATERAL subquery in the parent's FROM list (its holder
   * and key there: the list and index, or a JoinExpr and 'rarg'). 'filter'
   * for an EXISTS, IN, ANY or ALL subquery, which PostgreSQL may run as a join.
   */
  enclosedBy?: 'expression' | 'filter' | { holder: AstNode; key: string | number };
  /**
   * An arm of a UNION ALL (of nested ones too) whose LIMIT, or whose reader's LIMIT, may bound the rows it
   * computes: `node` is the outermost UNION ALL, `top` whether it is the statement, `readAs` how its parent
   * reads it as a subquery (PostgreSQL runs the arms in turn and stops once the LIMIT has its rows).
   */
  unionArm?: { node: AstNode; top: boolean; readAs: Level['readAs'] };
  /**
   * A subquery of the parent's FROM list, wherever it is there (LATERAL, a side of an outer join): a FOR UPDATE of
   * the parent locks its rows too.
   */
  fromItem?: boolean;
  /** The query of an INSERT: computed once, its LIMIT bounds the rows it computes. */
  insertSource?: boolean;
}

/**
 * The call sites of a view a statement reads as a view (not in place), by the FROM item that names it (its RangeVar
 * node): a query that reads that item makes those calls, as PostgreSQL computes the view's rows.
 */
export const sitesOfView = new WeakMap<AstNode, CallSite[]>();

export type Clause =
  | 'target'
  | 'where'
  | 'having'
  | 'order'
  | 'group'
  | 'from-function'
  | 'join-on'
  | 'values'
  | 'distinct'
  | 'other';

export interface CallSite {
  id: number;
  level: Level;
  call: MlCall;
  clause: Clause;
  /** Parent object/array and key holding the call node, for replacement. */
  holder: AstNode;
  key: string | number;
  /** For calls under a field selection `(call).field`: the A_Indirection's holder. */
  fieldHolder?: { holder: AstNode; key: string | number; field: string | '*' };
  insideAggregate: boolean;
  /** For a call in a JOIN's ON condition: that JoinExpr (its inner object). */
  join?: AstNode;
  /** FROM-clause function (`FROM t, detect_sentiment(t.doc, 'en') s`): the RangeFunction and its alias. */
  fromFunction?: { rangeFunction: AstNode; alias: string; columnNames: string[] | undefined };
}

export interface Analysis {
  levels: Level[];
  sites: CallSite[];
  /** Statement features that rule batch mode out entirely (the per-row path handles them). */
  blockers: string[];
  /** Views over ML calls the statement reads (in its text or through other views' definitions). */
  viewReads: ViewRead[];
  /** Those it reads in place. */
  inlinedViews: ViewRead[];
}

/**
 * A view over ML calls the statement reads: as the statement names it (the
 * text to_regclass resolves as PostgreSQL will), the view it should be, and
 * its definition as the catalog has it (each execution checks it is still
 * the view's: argument queries, and a view read in place, are made of it).
 */
export interface ViewRead {
  written: string;
  oid: string;
  definition: string;
  /** The definition was printed schema-qualified (see MlView.qualified): it can be checked. */
  qualified: boolean;
  /** It may be read in place, if the session confirms it (see AnalyzeOptions.inlineViews). */
  inlinable: boolean;
}

export interface AnalyzeOptions {
  /** The statement is a stored definition. */
  stored?: boolean;
  /** The statement is a cursor's query. */
  cursor?: boolean;
  /**
   * Views (by their name as written) to read in place, as subqueries of
   * their definitions: the session checked that each name resolves to the
   * view, that it may read it, and that the view reads its tables with the
   * same rights (it owns the view, or the view is security_invoker).
   */
  inlineViews?: ReadonlySet<string>;
}

/** Builtin aggregates: calls inside their arguments run before grouping. */
const AGGREGATES = new Set([
  'avg',
  'count',
  'sum',
  'min',
  'max',
  'bool_and',
  'bool_or',
  'every',
  'array_agg',
  'string_agg',
  'json_agg',
  'jsonb_agg',
  'json_object_agg',
  'jsonb_object_agg',
  'stddev',
  'stddev_pop',
  'stddev_samp',
  'variance',
  'var_pop',
  'var_samp',
  'corr',
  'covar_pop',
  'covar_samp',
  'regr_avgx',
  'regr_avgy',
  'regr_count',
  'regr_intercept',
  'regr_r2',
  'regr_slope',
  'regr_sxx',
  'regr_sxy',
  'regr_syy',
  'percentile_cont',
  'percentile_disc',
  'mode',
  'bit_and',
  'bit_or',
  'bit_xor',
  'xmlagg',
  'any_value',
]);

export function isAggregateCall(call: AstNode): boolean {
  const names: AstNode[] = call.funcname ?? [];
  const name = names[names.length - 1]?.String?.sval;
  return (
    !call.over && (AGGREGATES.has(name) || call.agg_star || call.agg_distinct || call.agg_order || call.agg_filter)
  );
}

function hasAggregate(node: AstNode): boolean {
  return some(node, (n) => {
    const call = inner(n, 'FuncCall');
    return call !== undefined && isAggregateCall(call);
  });
}

/**
 * How a parent reads a FROM item: its alias (or the name it is read by) and column names; `joined` when it is a
 * side of inner joins rather than an item of the FROM list itself.
 */
function readThrough(item: AstNode, alias: AstNode | undefined, joined: boolean, name?: string): Level['readAs'] {
  const columnNames = alias?.colnames?.map((c: AstNode) => c.String.sval);
  return { item, alias: alias?.aliasname ?? name, columnNames, ...(joined ? { joined } : {}) };
}

/** Whether a statement has a RETURNING list (PostgreSQL 18's parse tree keeps it in returningClause.exprs). */
const returning = (stmt: AstNode): boolean => (stmt.returningClause?.exprs?.length ?? 0) > 0;

function rangeVarName(node: AstNode): { schema?: string; name: string } | undefined {
  const rv = inner(node, 'RangeVar');
  return rv ? { schema: rv.schemaname, name: rv.relname } : undefined;
}

/**
 * Finds every ML call in a statement and the query level it belongs to.
 * Subqueries, CTEs, set operations, views (their stored definitions) and the
 * scans of UPDATE/DELETE are levels of their own.
 */
export function analyze(statement: AstNode, catalog: MlCatalog, options: AnalyzeOptions = {}): Analysis {
  const levels: Level[] = [];
  const sites: CallSite[] = [];
  const blockers: string[] = catalog.writersEverywhere
    ? ['an implicit cast or comparison operator that runs a function with side effects (in this database)']
    : [];
  if (namesGatewayColumns(statement)) blockers.push('a column named aws_ml_… without its table');
  const viewReads: ViewRead[] = [];
  const inlinedViews: ViewRead[] = [];
  // (Not for a cursor: UPDATE … WHERE CURRENT OF needs it to stay a scan of the view's table.)
  const inlining = options.stored || options.cursor ? () => false : inliningAllowed(statement);
  const addSite = (site: Omit<CallSite, 'id'>) => {
    const added = { ...site, id: sites.length } as CallSite;
    sites.push(added);
    site.level.sites.push(added);
  };
  /** Views being expanded (a view read twice is analysed for each read, with that read's conditions). */
  const expanding = new Set<string>();

  /** The UNION ALL chain the next selectLevels call makes an arm of (see Level.unionArm). */
  let unionArm: Level['unionArm'];
  const newLevel = (
    kind: Level['kind'],
    stmt: AstNode,
    parent: Level | undefined,
    withClause: AstNode | undefined,
    joinable: boolean,
    top: boolean,
    readAs?: Level['readAs'],
    enclosedBy?: Level['enclosedBy'],
  ): Level => {
    const aggregated =
      kind === 'select' &&
      Boolean(stmt.groupClause || stmt.havingClause || (stmt.targetList ?? []).some((t: AstNode) => hasAggregate(t)));
    const level: Level = {
      id: levels.length,
      kind,
      stmt,
      parent,
      withClause,
      joinable,
      aggregated,
      top,
      readAs,
      enclosedBy,
      sites: [],
    };
    levels.push(level);
    return level;
  };

  /** An operator whose function may write, or a cast that runs such a function (see MlCatalog.writingOperators). */
  const writesThrough = (node: AstNode) => usesWriter(node, catalog);

  /** Registers ML calls in an expression; sub-selects become levels of their own. */
  const scanExpression = (
    root: AstNode,
    key: string | number,
    holder: AstNode,
    level: Level,
    clause: Clause,
    join?: AstNode,
  ) => {
    const visit = (
      node: AstNode,
      parent: AstNode,
      slot: string | number,
      aggregate: boolean,
      grand?: { holder: AstNode; key: string | number },
    ) => {
      if (node === null || typeof node !== 'object') return;
      if (Array.isArray(node)) {
        node.forEach((child, i) => {
          visit(child, node, i, aggregate);
        });
        return;
      }
      const type = nodeType(node);
      if (writesThrough(node)) blockers.push('an operator or cast that runs a function with side effects');
      if (type === 'SubLink') {
        if (node.SubLink.testexpr) visit(node.SubLink.testexpr, node.SubLink, 'testexpr', aggregate);
        // PostgreSQL may turn EXISTS and IN subqueries into joins, filtering all their rows first: only
        // subqueries that give a value are surely evaluated per row of the enclosing query.
        const perRow = ['EXPR_SUBLINK', 'ARRAY_SUBLINK', 'MULTIEXPR_SUBLINK'].includes(node.SubLink.subLinkType);
        const enclosedBy = perRow ? 'expression' : 'filter';
        statementLevels(node.SubLink.subselect, level, level.withClause, level.joinable, false, undefined, enclosedBy);
        return;
      }
      if (type === 'A_Indirection') {
        const indirection = node.A_Indirection;
        const first = indirection.indirection?.[0];
        const field = first?.String?.sval ?? (first && nodeType(first) === 'A_Star' ? '*' : undefined);
        if (inner(indirection.arg, 'FuncCall') && field && indirection.indirection.length === 1) {
          visit(indirection.arg, indirection, 'arg', aggregate, { holder: parent, key: slot });
          return;
        }
      }
      if (type === 'FuncCall') {
        const call = node.FuncCall;
        const names: AstNode[] = call.funcname ?? [];
        const name = names[names.length - 1]?.String?.sval;
        const ml = recognizeMlCall(call, catalog);
        // (A wrapper's inlined body is part of the statement too, and so are the defaults its parameters get,
        // also those its body does not read: called as a function, it computes them.)
        const writes = (fn: string) => SIDE_EFFECT_FUNCTIONS.has(fn) || Boolean(catalog.sideEffects?.has(fn));
        const inlined = ml?.wrapper ? [ml.wrapper.inlined, ...ml.wrapper.values] : [];
        if ((!ml && writes(name)) || inlined.some((part) => callsFunction(part, writes) || some(part, writesThrough))) {
          blockers.push('a function with side effects');
        }
        if (ml) {
          const fieldNode = grand ? inner(grand.holder[grand.key], 'A_Indirection') : undefined;
          const first = fieldNode?.indirection?.[0];
          addSite({
            level,
            call: ml,
            clause,
            holder: parent,
            key: slot,
            fieldHolder:
              grand && fieldNode
                ? { holder: grand.holder, key: grand.key, field: first?.String?.sval ?? '*' }
                : undefined,
            insideAggregate: aggregate,
            join,
          });
        }
        const nowAggregate = aggregate || isAggregateCall(call);
        for (const [k, child] of Object.entries(call)) {
          if (child && typeof child === 'object') visit(child, call, k, nowAggregate);
        }
        return;
      }
      for (const [k, child] of Object.entries(node[type ?? ''] ?? node)) {
        if (child && typeof child === 'object') visit(child, node[type ?? ''] ?? node, k, aggregate);
      }
    };
    visit(root, holder, key, false);
  };

  const scanFromItem = (item: AstNode, holder: AstNode, key: string | number, level: Level, innerJoined = false) => {
    const type = nodeType(item);
    // Read straight from the parent's FROM list (a SELECT's, an UPDATE's FROM, a DELETE's USING): not inside a join.
    const direct = holder === (level.kind === 'delete' ? level.stmt.usingClause : level.stmt.fromClause);
    // (Or a side of inner joins there: PostgreSQL moves a WHERE condition on its columns alone into it too.)
    const readable = direct || innerJoined;
    if (type === 'RangeSubselect') {
      const sub = item.RangeSubselect;
      const readAs = readable && !sub.lateral ? readThrough(item, sub.alias, !direct) : undefined;
      const enclosedBy = sub.lateral ? { holder, key } : undefined;
      const first = levels.length;
      statementLevels(sub.subquery, level, level.withClause, level.joinable, false, readAs, enclosedBy);
      for (const made of levels.slice(first)) if (made.parent === level) made.fromItem = true;
    } else if (type === 'JoinExpr') {
      const join = item.JoinExpr;
      const sides = readable && join.jointype === 'JOIN_INNER' && !join.alias;
      scanFromItem(join.larg, join, 'larg', level, sides);
      scanFromItem(join.rarg, join, 'rarg', level, sides);
      if (join.quals) scanExpression(join.quals, 'quals', join, level, 'join-on', join);
    } else if (type === 'RangeFunction') {
      const rf = item.RangeFunction;
      const functions: AstNode[] = rf.functions ?? [];
      const call = soleFunction(item);
      const ml = call ? recognizeMlCall(call, catalog) : undefined;
      if (ml && ml.kind === 'sentiment' && !ml.wrapper && !rf.ordinality && !rf.is_rowsfrom && rf.alias) {
        addSite({
          level,
          call: ml,
          clause: 'from-function',
          holder,
          key,
          insideAggregate: false,
          fromFunction: {
            rangeFunction: rf,
            alias: rf.alias.aliasname,
            columnNames: rf.alias.colnames?.map((c: AstNode) => c.String.sval),
          },
        });
        for (let i = 0; i < (call.args ?? []).length; i++) scanExpression(call.args[i], i, call.args, level, 'other');
      } else {
        const before = sites.length;
        scanExpression(functions, 'functions', rf, level, 'other');
        // (`unnest(ARRAY[f(doc)])`, `ROWS FROM (f(a), f(b))`: an argument query reading the level would copy the
        // function, its ML calls with it, and make them per row before any answer is stored.)
        // (A subquery there is a level of its own, read apart.)
        if (!ml && sites.slice(before).some((s) => s.level === level)) {
          blockers.push('an ML call inside a function of its FROM list');
        }
      }
    } else if (type === 'RangeVar') {
      const name = rangeVarName(item);
      if (name && catalog.relationsWithSideEffects?.has(name.name))
        blockers.push('a view or row-level security policy that calls a function with side effects');
      const view = name && findView(catalog.views, name.schema, name.name, catalog.searchPath);
      // (Reading a materialized view calls nothing: its definition runs only on REFRESH.)
      const viewKey = view && `${view.schema}.${view.name}`;
      const alias = item.RangeVar.alias?.aliasname ?? name?.name;
      if (view && name && view.kind === 'view') {
        const read = {
          written: writtenName(name),
          oid: view.oid,
          definition: view.definition,
          qualified: view.qualified,
          inlinable:
            view.qualified &&
            !view.securityBarrier &&
            inlining(alias, item.RangeVar.alias !== undefined) &&
            !expanding.has(viewKey!),
        };
        viewReads.push(read);
        const definition = read.inlinable && options.inlineViews?.has(read.written) ? parsedView(view) : undefined;
        if (definition && !readsWholeRows(definition)) {
          const subquery = {
            RangeSubselect: { subquery: definition, alias: { ...item.RangeVar.alias, aliasname: alias } },
          };
          holder[key] = subquery;
          inlinedViews.push(read);
          expanding.add(viewKey!);
          try {
            scanFromItem(subquery, holder, key, level, innerJoined);
          } finally {
            expanding.delete(viewKey!);
          }
          return;
        }
      }
      if (view && viewKey && view.kind === 'view' && !expanding.has(viewKey)) {
        expanding.add(viewKey);
        try {
          const [definition] = parse(view.definition);
          if (namesGatewayColumns(definition.stmt)) blockers.push(`a view (${view.name}) that names a column aws_ml_…`);
          const readAs =
            readable && !view.securityBarrier ? readThrough(item, item.RangeVar.alias, !direct, name.name) : undefined;
          const first = levels.length;
          statementLevels(definition.stmt, level, undefined, false, false, readAs);
          sitesOfView.set(
            item.RangeVar,
            levels.slice(first).flatMap((l) => l.sites),
          );
        } catch {
          blockers.push(`a view (${view.name}) that could not be analyzed`);
        } finally {
          expanding.delete(viewKey);
        }
      }
    }
  };

  /** The levels of a WITH clause's queries (of a SELECT, INSERT, UPDATE, DELETE or MERGE); those computed once. */
  const withQueryLevels = (clause: AstNode | undefined, parent: Level | undefined, joinable: boolean): Level[] => {
    const once: Level[] = [];
    for (const cte of clause?.ctes ?? []) {
      const query = cte.CommonTableExpr.ctequery;
      if (['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt'].includes(nodeType(query) ?? '')) {
        blockers.push('a data-modifying WITH query');
      }
      statementLevels(query, parent, clause, joinable, false);
      // (NOT MATERIALIZED lets PostgreSQL inline it, into a correlated subquery too.)
      const own = levels.find((l) => l.stmt === inner(query, 'SelectStmt'));
      if (own && cte.CommonTableExpr.ctematerialized !== 'CTEMaterializeNever') {
        own.withQuery = true;
        once.push(own);
      }
    }
    return once;
  };

  const selectLevels = (
    select: AstNode,
    parent: Level | undefined,
    withClause: AstNode | undefined,
    joinable: boolean,
    top: boolean,
    readAs?: Level['readAs'],
    enclosedBy?: Level['enclosedBy'],
  ) => {
    const scope = select.withClause ?? withClause;
    const arm = unionArm;
    unionArm = undefined;
    const withQueries = withQueryLevels(select.withClause, parent, joinable);
    if (select.op && select.op !== 'SETOP_NONE') {
      // (A UNION ALL inside another, with no ORDER BY or LIMIT of its own, is the same chain of arms.)
      const chained = arm && !select.sortClause && !select.limitCount && !select.limitOffset;
      const unionAll = select.op === 'SETOP_UNION' && select.all && !select.withClause;
      const armOf = unionAll ? (chained ? arm : { node: select, top, readAs }) : undefined;
      for (const side of [select.larg, select.rarg]) {
        unionArm = armOf;
        selectLevels(side, parent, scope, joinable, false, undefined, enclosedBy);
      }
      return;
    }
    if (select.valuesLists) {
      const level = newLevel('select', select, parent, scope, joinable, top, undefined, enclosedBy);
      scanExpression(select.valuesLists, 'valuesLists', select, level, 'values');
      return;
    }
    const level = newLevel('select', select, parent, scope, joinable, top, readAs, enclosedBy);
    level.unionArm = arm;
    for (const withQuery of withQueries) withQuery.definedBy = level;
    for (let i = 0; i < (select.fromClause ?? []).length; i++)
      scanFromItem(select.fromClause[i], select.fromClause, i, level);
    if (select.targetList) scanExpression(select.targetList, 'targetList', select, level, 'target');
    if (select.whereClause) scanExpression(select.whereClause, 'whereClause', select, level, 'where');
    if (select.havingClause) scanExpression(select.havingClause, 'havingClause', select, level, 'having');
    if (select.sortClause) scanExpression(select.sortClause, 'sortClause', select, level, 'order');
    if (select.groupClause) scanExpression(select.groupClause, 'groupClause', select, level, 'group');
    if (select.distinctClause) scanExpression(select.distinctClause, 'distinctClause', select, level, 'distinct');
    for (const field of ['windowClause', 'limitCount', 'limitOffset']) {
      if (select[field]) scanExpression(select[field], field, select, level, 'other');
    }
  };

  const statementLevels = (
    node: AstNode,
    parent: Level | undefined,
    withClause: AstNode | undefined,
    joinable: boolean,
    top: boolean,
    readAs?: Level['readAs'],
    enclosedBy?: Level['enclosedBy'],
  ) => {
    const type = nodeType(node);
    const stmt = type ? node[type] : undefined;
    switch (type) {
      case 'SelectStmt':
        selectLevels(stmt, parent, withClause, joinable, top, readAs, enclosedBy);
        break;
      case 'InsertStmt': {
        const scope = stmt.withClause ?? withClause;
        withQueryLevels(stmt.withClause, parent, joinable);
        const first = levels.length;
        if (stmt.selectStmt) statementLevels(stmt.selectStmt, parent, scope, joinable, false);
        const source = inner(stmt.selectStmt, 'SelectStmt');
        for (const made of levels.slice(first)) if (made.stmt === source) made.insertSource = true;
        if (returning(stmt) || stmt.onConflictClause) {
          const level = newLevel('select', {}, parent, scope, false, false);
          if (returning(stmt))
            scanExpression(stmt.returningClause.exprs, 'exprs', stmt.returningClause, level, 'other');
          if (stmt.onConflictClause) scanExpression(stmt.onConflictClause, 'onConflictClause', stmt, level, 'other');
        }
        break;
      }
      case 'MergeStmt': {
        const scope = stmt.withClause ?? withClause;
        withQueryLevels(stmt.withClause, parent, joinable);
        // The source is read once and joined to the target: calls there are batched like a subquery's.
        // Calls in the join condition and the WHEN clauses act on pairs of rows; they stay per row.
        const merge = newLevel('select', {}, parent, scope, false, false);
        const source = stmt.sourceRelation;
        if (nodeType(source) === 'RangeSubselect' && !source.RangeSubselect.lateral) {
          statementLevels(source.RangeSubselect.subquery, merge, scope, joinable, false);
        } else {
          scanFromItem(source, stmt, 'sourceRelation', merge);
        }
        scanExpression(stmt.joinCondition, 'joinCondition', stmt, merge, 'other');
        scanExpression(stmt.mergeWhenClauses, 'mergeWhenClauses', stmt, merge, 'other');
        if (returning(stmt)) scanExpression(stmt.returningClause.exprs, 'exprs', stmt.returningClause, merge, 'other');
        break;
      }
      case 'UpdateStmt':
      case 'DeleteStmt': {
        const scope = stmt.withClause ?? withClause;
        withQueryLevels(stmt.withClause, parent, joinable);
        const level = newLevel(type === 'UpdateStmt' ? 'update' : 'delete', stmt, parent, scope, false, top);
        for (const [field, list] of [
          ['fromClause', stmt.fromClause],
          ['usingClause', stmt.usingClause],
        ] as const) {
          for (let i = 0; i < (list ?? []).length; i++) scanFromItem(list[i], stmt[field], i, level);
        }
        if (stmt.targetList) scanExpression(stmt.targetList, 'targetList', stmt, level, 'target');
        if (stmt.whereClause) scanExpression(stmt.whereClause, 'whereClause', stmt, level, 'where');
        if (returning(stmt)) scanExpression(stmt.returningClause.exprs, 'exprs', stmt.returningClause, level, 'other');
        break;
      }
      default:
        break;
    }
  };

  statementLevels(statement, undefined, undefined, !options.stored, true);
  return { levels, sites, blockers, viewReads, inlinedViews };
}

/** A view's definition as a statement, or undefined when it does not parse as one. */
function parsedView(view: MlView): AstNode | undefined {
  try {
    const statements = parse(view.definition);
    return statements.length === 1 ? statements[0].stmt : undefined;
  } catch {
    return undefined;
  }
}

/** A RangeVar's name as to_regclass reads it, resolved by the session's search_path when unqualified. */
function writtenName(name: { schema?: string; name: string }): string {
  return name.schema ? `${quoteIdentifier(name.schema)}.${quoteIdentifier(name.name)}` : quoteIdentifier(name.name);
}

/**
 * Whether a view read under this alias may be read in place (a subquery named
 * alike): not in a statement that locks rows (FOR UPDATE reaches into views
 * and subqueries differently), names a column with its schema (`s.v.col`
 * has no subquery to name), or uses the alias as a whole row (the view's row
 * type would become an anonymous record); and, unaliased, only where no other
 * relation of the statement has its name (`public.v, s2.v` is allowed for
 * relations, not for subqueries).
 */
function inliningAllowed(statement: AstNode): (alias: string | undefined, aliased: boolean) => boolean {
  let locks = false;
  let schemaQualified = false;
  const wholeRows = wholeRowNames(statement);
  const relationNames = new Map<string, number>();
  walk(statement, (node) => {
    if (nodeType(node) === 'SelectStmt' && node.SelectStmt.lockingClause) locks = true;
    if ((inner(node, 'ColumnRef')?.fields.length ?? 0) >= 3) schemaQualified = true;
    const relation = inner(node, 'RangeVar')?.relname ?? inner(node, 'CommonTableExpr')?.ctename;
    if (relation) relationNames.set(relation, (relationNames.get(relation) ?? 0) + 1);
    return undefined;
  });
  return (alias, aliased) =>
    !locks &&
    !schemaQualified &&
    alias !== undefined &&
    !wholeRows.has(alias) &&
    (aliased || (relationNames.get(alias) ?? 0) <= 1);
}

/**
 * Names used as whole rows: a bare name (`v`, `row_to_json(v)`), or `v.*`
 * anywhere but as an output column of its own (where it lists the columns).
 */
function wholeRowNames(root: AstNode): Set<string> {
  const listed = new Set<AstNode>();
  walk(root, (node) => {
    const target = inner(node, 'ResTarget');
    if (target && inner(target.val, 'ColumnRef')) listed.add(inner(target.val, 'ColumnRef'));
    return undefined;
  });
  const names = new Set<string>();
  walk(root, (node) => {
    const column = inner(node, 'ColumnRef');
    if (!column) return undefined;
    const fields: AstNode[] = column.fields;
    if (fields.length === 1 && fields[0].String) names.add(fields[0].String.sval);
    const star = fields.length === 2 && nodeType(fields[1]) === 'A_Star' && fields[0].String;
    if (star && !listed.has(column)) names.add(fields[0].String.sval);
    return undefined;
  });
  return names;
}

/** A definition that reads one of its own FROM items as a whole row: read as a view, it keeps that item's row type. */
function readsWholeRows(definition: AstNode): boolean {
  const names = wholeRowNames(definition);
  let found = false;
  walk(definition, (node) => {
    const rv = inner(node, 'RangeVar');
    if (rv && names.has(rv.alias?.aliasname ?? rv.relname)) found = true;
    return undefined;
  });
  return found;
}

export function findView(
  views: MlView[],
  schema: string | undefined,
  name: string,
  searchPath: readonly string[] | undefined,
): MlView | undefined {
  const matches = views.filter((v) => v.name === name && (schema === undefined || v.schema === schema));
  if (matches.length === 1) return matches[0];
  // (A temporary view of the name may be this session's, which PostgreSQL reads first, or another session's.)
  if (schema !== undefined || !searchPath || matches.some((v) => v.schema.startsWith('pg_temp_'))) return undefined;
  // PostgreSQL reads the first on the path. (A table of that name earlier on the path hides it: the view's rows are
  // then scored for nothing, and the execution's check keeps it from being read in place.)
  for (const onPath of searchPath) {
    const view = matches.find((v) => v.schema === onPath);
    if (view) return view;
  }
  return undefined;
}

/** The FuncCall of a FROM-list function item with one function (`f(…) AS s`, not ROWS FROM of several). */
export function soleFunction(item: AstNode): AstNode | undefined {
  const rf = inner(item, 'RangeFunction');
  return rf?.functions?.length === 1 ? inner(rf.functions[0].List?.items?.[0], 'FuncCall') : undefined;
}

/** Every qualified ColumnRef's table (an alias or a table name; `schema.table.column` names it second to last). */
export function referencedQualifiers(node: AstNode): Set<string> {
  const out = new Set<string>();
  walk(node, (n) => {
    const column = inner(n, 'ColumnRef');
    if (column && column.fields.length > 1) out.add(column.fields[column.fields.length - 2].String?.sval);
    return undefined;
  });
  return out;
}
