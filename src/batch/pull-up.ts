import {
  type AstNode,
  clone,
  deparse,
  deparsesFaithfully,
  figureColumnName,
  functionName,
  inner,
  nodeType,
  some,
} from '../sql/ast.js';

/** What pulledUp needs to know of the statement's levels and functions (from the planner's analysis). */
export interface PullUpTests {
  /** The SELECT aggregates its rows (an aggregate call in its output list or HAVING). */
  aggregated(select: AstNode): boolean;
  /** The expression may not be computed in another place or more than once: set-returning, volatile or window functions. */
  unsafe(expression: AstNode): boolean;
  /** The expression makes an ML call (of the statement's call sites). */
  callsMl(expression: AstNode): boolean;
}

/**
 * A subquery read alone with a LIMIT after an ML condition, pulled up as PostgreSQL's own planner pulls up a simple
 * subquery: `SELECT id FROM (SELECT id, (aws_comprehend.detect_sentiment(body, 'en')).sentiment FROM reviews) AS v
 * WHERE v.sentiment = 'NEGATIVE' LIMIT 10` (a view read in place, or a subquery as written) becomes `SELECT id
 * FROM reviews WHERE (aws_comprehend.detect_sentiment(body, 'en')).sentiment = 'NEGATIVE' LIMIT 10`. PostgreSQL
 * computes v's rows one by one, each with its call, until the LIMIT has its rows: the statement written as one level
 * gives the same rows (output names and positions as written), and its LIMIT can be searched window by window, where
 * the subquery's calls would all be scored. Undefined when the subquery is not simple (grouping, DISTINCT, ORDER BY,
 * LIMIT, WITH, set operations, `*`, functions that must be computed once in its output list), or the statement reads
 * more than it (a join, a subquery of its own, whose column names cannot be told from the subquery's without the
 * catalog), or names one of its columns otherwise than by name.
 */
export function pulledUp(statement: AstNode, tests: PullUpTests): AstNode | undefined {
  const outer = inner(statement, 'SelectStmt');
  if (!outer || !simpleReader(outer, tests)) return undefined;
  const item = inner(outer.fromClause[0], 'RangeSubselect');
  const sub = item && !item.lateral ? inner(item.subquery, 'SelectStmt') : undefined;
  if (!sub || !simpleSubquery(sub, tests)) return undefined;
  const targets: AstNode[] = sub.targetList.map((t: AstNode) => t.ResTarget);
  const aliasNames: AstNode[] = item.alias?.colnames ?? [];
  if (aliasNames.length > targets.length) return undefined;
  const names = targets.map((t, i) => aliasNames[i]?.String?.sval ?? t.name ?? figureColumnName(t.val));
  if (new Set(names).size !== names.length) return undefined;
  const alias: string | undefined = item.alias?.aliasname;
  /** The subquery's column a reference names (-1: none of its columns), or undefined for a node that is none. */
  const columnOf = (node: AstNode): number | undefined => {
    const fields: AstNode[] | undefined = inner(node, 'ColumnRef')?.fields;
    if (!fields) return undefined;
    const name = fields[fields.length - 1].String?.sval;
    if (name === undefined || fields.length > 2 || (fields.length === 2 && fields[0].String?.sval !== alias)) return -1;
    return names.indexOf(name);
  };
  // (An untyped literal or parameter is typed by where it is read: as the subquery's column, text.)
  const untyped = (val: AstNode) => nodeType(val) === 'A_Const' || nodeType(val) === 'ParamRef';
  let unreadable = false;
  /** The columns substituted (those of the conditions: whether they read an ML call's answer). */
  const read = new Set<number>();
  const substitute = (node: AstNode): AstNode => {
    if (node === null || typeof node !== 'object') return node;
    if (Array.isArray(node)) return node.map(substitute);
    const column = columnOf(node);
    if (column !== undefined) {
      if (column < 0 || untyped(targets[column].val)) unreadable = true;
      if (column < 0) return node;
      read.add(column);
      return clone(targets[column].val);
    }
    return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, substitute(value)]));
  };

  /** Each output column's name and expression, as the statement pulled up computes it. */
  const outputs: [string, AstNode][] = [];
  const targetList: AstNode[] = [];
  for (const target of outer.targetList as AstNode[]) {
    const res = target.ResTarget;
    const star = starOf(res.val, alias);
    if (star === 'other') return undefined;
    if (star === 'star') {
      targets.forEach((t, i) => {
        const val = clone(t.val);
        targetList.push({ ResTarget: names[i] === figureColumnName(val) ? { val } : { name: names[i], val } });
        outputs.push([names[i], val]);
      });
      continue;
    }
    // (Named as written, or as PostgreSQL names the expression: the subquery's expression in its place would
    // give it another name.)
    const name = res.name ?? figureColumnName(res.val);
    const val = substitute(res.val);
    targetList.push({ ResTarget: name === figureColumnName(val) && !res.name ? { val } : { name, val } });
    outputs.push([name, val]);
  }
  read.clear();
  const where = outer.whereClause ? substitute(outer.whereClause) : undefined;
  const mlCondition = [...read].some((column) => readsAnswer(targets[column].val, sub, tests));
  // (An ORDER BY of a bare name reads an output column before an input one: it sorts by that column's expression.
  // Two columns of the name make PostgreSQL refuse it, as written.)
  let ambiguous = false;
  const sortClause = outer.sortClause?.map((sortBy: AstNode) => {
    const fields: AstNode[] | undefined = inner(sortBy.SortBy.node, 'ColumnRef')?.fields;
    const outputName = fields?.length === 1 ? fields[0].String?.sval : undefined;
    const named = outputs.filter(([name]) => name === outputName);
    if (named.length > 1) ambiguous = true;
    // (A constant stays named: in its place it would be a position, or refused.)
    const expression = named.length === 1 && nodeType(named[0][1]) !== 'A_Const' ? named[0][1] : undefined;
    const node = expression
      ? clone(expression)
      : named.length === 1
        ? sortBy.SortBy.node
        : substitute(sortBy.SortBy.node);
    // A bare name in its place must not be read as another output column's (`SELECT -k AS id … ORDER BY k`, k
    // being the view's id, would sort by -id).
    const bare = inner(node, 'ColumnRef')?.fields;
    const bareName = bare?.length === 1 ? bare[0].String?.sval : undefined;
    if (bareName !== undefined && outputs.some(([name, val]) => name === bareName && deparse(val) !== deparse(node))) {
      ambiguous = true;
    }
    return { SortBy: { ...sortBy.SortBy, node } };
  });
  if (unreadable || ambiguous) return undefined;
  // (Or a subquery of its own, a view over a view, which may then be pulled up in turn.)
  const nested = sub.fromClause.some((from: AstNode) => nodeType(from) === 'RangeSubselect');
  if (!mlCondition && !nested && !(sub.whereClause && readsAnswer(sub.whereClause, sub, tests))) return undefined;
  // (One AND of every conjunct, as PostgreSQL parses `a AND b AND c`: a nested one would not deparse faithfully.)
  const conditions = [sub.whereClause, where]
    .filter(Boolean)
    .flatMap((c) => (inner(c, 'BoolExpr')?.boolop === 'AND_EXPR' ? c.BoolExpr.args : [c]))
    .map((c: AstNode) => clone(c));
  const flat = {
    SelectStmt: {
      ...outer,
      targetList,
      fromClause: clone(sub.fromClause),
      whereClause: conditions.length === 1 ? conditions[0] : { BoolExpr: { boolop: 'AND_EXPR', args: conditions } },
      sortClause,
    },
  };
  if (!sortClause) delete flat.SelectStmt.sortClause;
  return deparsesFaithfully(flat) ? flat : undefined;
}

/** A plain SELECT: no set operation, grouping, aggregate, DISTINCT, window, locking, INTO or VALUES. */
function plainSelect(select: AstNode, tests: PullUpTests): boolean {
  return (
    (!select.op || select.op === 'SETOP_NONE') &&
    !select.intoClause &&
    !select.lockingClause &&
    !select.groupClause &&
    !select.havingClause &&
    !select.distinctClause &&
    !select.windowClause &&
    !select.valuesLists &&
    !tests.aggregated(select)
  );
}

/** A SELECT whose one FROM item is what it reads, that filters and limits its rows and nothing else. */
function simpleReader(select: AstNode, tests: PullUpTests): boolean {
  return (
    plainSelect(select, tests) &&
    select.limitCount !== undefined &&
    select.fromClause?.length === 1 &&
    !tests.unsafe({ targets: select.targetList, sort: select.sortClause ?? [] }) &&
    // (A subquery of its own could name a column of its tables that the pulled-up subquery's tables also have.)
    !some({ targets: select.targetList, where: select.whereClause, sort: select.sortClause ?? [] }, (n) =>
      Boolean(inner(n, 'SubLink')),
    )
  );
}

/** A subquery PostgreSQL could pull up into its reader (is_simple_subquery), each of its output columns computable anywhere. */
function simpleSubquery(select: AstNode, tests: PullUpTests): boolean {
  return (
    plainSelect(select, tests) &&
    select.fromClause?.length > 0 &&
    !select.withClause &&
    !select.sortClause &&
    !select.limitCount &&
    !select.limitOffset &&
    (!select.whereClause || conditionCannotFail(select.whereClause, tests)) &&
    (select.targetList as AstNode[]).every((t) => {
      const val = t.ResTarget.val;
      return !tests.unsafe(val) && (plainValue(val) || answerOf(val, tests));
    })
  );
}

/** Comparison operators, which cannot fail on plain values of one type. */
const COMPARISONS = new Set(['=', '<>', '<', '>', '<=', '>=']);

/**
 * A subquery's condition that cannot fail (PostgreSQL evaluates it for every row it reads from a view it does not
 * flatten, as for its columns): ANDs, ORs and NOTs of comparisons and NULL tests of plain values and ML answers. (An
 * ML answer fails where the service refuses a row, which the search covers: see docs/batch-mode.md.)
 */
function conditionCannotFail(node: AstNode, tests: PullUpTests): boolean {
  const value = (operand: AstNode) => plainValue(operand) || answerOf(operand, tests);
  const bool = inner(node, 'BoolExpr');
  if (bool) return (bool.args as AstNode[]).every((arg) => conditionCannotFail(arg, tests));
  const nullTest = inner(node, 'NullTest');
  if (nullTest) return value(nullTest.arg);
  const expr = inner(node, 'A_Expr');
  const operator: AstNode[] | undefined = expr?.name;
  return (
    expr?.kind === 'AEXPR_OP' &&
    operator?.length === 1 &&
    COMPARISONS.has(operator[0].String?.sval) &&
    value(expr.lexpr) &&
    value(expr.rexpr)
  );
}

/** Types a column is cast to without fail (`body::varchar`, as a view's definition writes a text argument). */
const TEXT_TYPES = new Set(['text', 'varchar']);

/**
 * A value whose computing cannot fail: a column, a constant (cast as PostgreSQL casts it when it parses the
 * statement), a column cast to text. PostgreSQL computes a view's every column for each row it reads, before the
 * reader's conditions; pulled up, a column is computed only where the statement reads it: one that can fail (`x::int`,
 * `100 / n`) would fail per row on a row the statement pulled up does not compute.
 */
function plainValue(node: AstNode): boolean {
  const type = nodeType(node);
  if (type === 'ColumnRef') return !some(node, (n) => nodeType(n) === 'A_Star');
  if (type === 'A_Const') return true;
  const cast = inner(node, 'TypeCast');
  if (!cast) return false;
  if (nodeType(cast.arg) === 'A_Const') return true;
  const names: AstNode[] = cast.typeName.names ?? [];
  return (
    nodeType(cast.arg) === 'ColumnRef' &&
    !cast.typeName.typmods &&
    !cast.typeName.arrayBounds &&
    TEXT_TYPES.has(names[names.length - 1]?.String?.sval)
  );
}

/** An ML call's answer, a field of it, or that cast (as a view writes them), its inputs plain values. */
function answerOf(node: AstNode, tests: PullUpTests): boolean {
  let value = inner(node, 'TypeCast')?.arg ?? node;
  value = inner(value, 'A_Indirection')?.arg ?? value;
  const call = inner(value, 'FuncCall');
  return Boolean(call) && tests.callsMl(value) && ((call.args ?? []) as AstNode[]).every(plainInput);
}

/** An ML call's argument: a plain value, or model inputs packed as the gateway packs them (`json_build_array(…)`). */
function plainInput(node: AstNode): boolean {
  const packed = inner(node, 'FuncCall');
  const name: string[] | undefined = packed ? functionName(packed) : undefined;
  if (name?.[name.length - 1] !== 'json_build_array') return plainValue(node);
  return (name.length === 1 || name[0] === 'pg_catalog') && ((packed.args ?? []) as AstNode[]).every(plainValue);
}

/**
 * Whether an expression of a subquery (a column, its condition) reads an ML call's answer: the call itself, or a
 * column of an ML call in its FROM list (`SELECT r.id, s.sentiment FROM reviews r,
 * aws_comprehend.detect_sentiment(r.body, 'en') s`, as a view writes it).
 */
function readsAnswer(expression: AstNode, sub: AstNode, tests: PullUpTests): boolean {
  if (tests.callsMl(expression)) return true;
  // (Items of the FROM list, and the sides of its joins: `reviews r CROSS JOIN LATERAL detect_sentiment(…) s`.)
  const items: AstNode[] = [...sub.fromClause];
  for (let i = 0; i < items.length; i++) {
    const join = inner(items[i], 'JoinExpr');
    if (join) items.push(join.larg, join.rarg);
  }
  const calls = new Set(
    items
      .map((from) => inner(from, 'RangeFunction'))
      .filter((range) => range?.alias && tests.callsMl(range.functions))
      .map((range) => range.alias.aliasname as string),
  );
  return some(expression, (node) => {
    const fields: AstNode[] | undefined = inner(node, 'ColumnRef')?.fields;
    return fields?.length === 2 && calls.has(fields[0].String?.sval);
  });
}

/** Whether an output expression is the whole subquery (`*`, `v.*`), another star (`t.*` of no table here), or not one. */
function starOf(val: AstNode, alias: string | undefined): 'star' | 'other' | undefined {
  if (!some(val, (n) => nodeType(n) === 'A_Star')) return undefined;
  const fields: AstNode[] | undefined = inner(val, 'ColumnRef')?.fields;
  if (!fields || nodeType(fields[fields.length - 1]) !== 'A_Star') return 'other';
  if (fields.length === 1 || (fields.length === 2 && fields[0].String?.sval === alias)) return 'star';
  return 'other';
}
