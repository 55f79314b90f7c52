import { Deparser } from 'pgsql-deparser';
import { type AstNode, parse } from './parser.js';
import { quoteIdentifier } from './quote.js';

/**
 * Small helpers over libpg-query's JSON AST: every node is `{ NodeType: {...} }`,
 * lists are arrays. Nodes the gateway builds are parsed from SQL text, so their
 * shape is always what PostgreSQL's own grammar produces.
 */

export type { AstNode };

export function nodeType(node: AstNode): string | undefined {
  if (!node || typeof node !== 'object' || Array.isArray(node)) return undefined;
  const keys = Object.keys(node);
  return keys.length === 1 ? keys[0] : undefined;
}

export function inner(node: AstNode, type: string): AstNode | undefined {
  return nodeType(node) === type ? node[type] : undefined;
}

export const clone = <T>(node: T): T => structuredClone(node);

/** The word SELECT INTO and CREATE TABLE AS need for a new table's persistence. */
const PERSISTENCE: Record<string, string> = { t: 'TEMPORARY', u: 'UNLOGGED' };

/**
 * Fixes for pgsql-deparser 18.3.8, which drops UNLOGGED from CREATE TABLE AS
 * and both TEMPORARY and UNLOGGED from SELECT INTO (such a statement would
 * create a permanent table), and writes EXECUTE's statement name unquoted.
 */
class FaithfulDeparser extends Deparser {
  override IntoClause(node: AstNode, context: Parameters<Deparser['IntoClause']>[1]): string {
    const written = super.IntoClause(node, context);
    const word = PERSISTENCE[node.rel?.relpersistence];
    return word ? `${word} ${written}` : written;
  }

  override CreateTableAsStmt(node: AstNode, context: Parameters<Deparser['CreateTableAsStmt']>[1]): string {
    const written = super.CreateTableAsStmt(node, context);
    const unlogged = node.objtype !== 'OBJECT_MATVIEW' && node.into?.rel?.relpersistence === 'u';
    return unlogged ? written.replace(/^CREATE TABLE/, 'CREATE UNLOGGED TABLE') : written;
  }

  /**
   * A SELECT inside an UPDATE's SET list or an INSERT's column list (a
   * subquery in its FROM) writes its own output columns as `expr AS name`:
   * the deparser would carry `col = expr` into it.
   */
  override SelectStmt(node: AstNode, context: Parameters<Deparser['SelectStmt']>[1]): string {
    if (!context.update && !context.insertColumns) return this.withTies(node, context);
    const own = Object.assign(Object.create(Object.getPrototypeOf(context)), context, {
      update: false,
      insertColumns: false,
    });
    return this.withTies(node, own);
  }

  /** `FETCH FIRST n ROWS WITH TIES`, which the deparser writes as `LIMIT n` (no ties). */
  private withTies(node: AstNode, context: Parameters<Deparser['SelectStmt']>[1]): string {
    if (node.limitOption !== 'LIMIT_OPTION_WITH_TIES' || !node.limitCount || node.lockingClause) {
      return super.SelectStmt(node, context);
    }
    const written = super.SelectStmt({ ...node, limitCount: undefined, limitOffset: undefined }, context);
    const offset = node.limitOffset ? ` OFFSET (${this.visit(node.limitOffset, context)}) ROWS` : '';
    return `${written}${offset} FETCH FIRST (${this.visit(node.limitCount, context)}) ROWS WITH TIES`;
  }

  /** The view's name as a RangeVar node: the deparser writes a bare one's schema-qualified name as nothing. */
  override RefreshMatViewStmt(node: AstNode, context: Parameters<Deparser['RefreshMatViewStmt']>[1]): string {
    const relation = node.relation && !node.relation.RangeVar ? { RangeVar: node.relation } : node.relation;
    return super.RefreshMatViewStmt({ ...node, relation }, context);
  }

  /**
   * `"bit"` and `"char"` as PostgreSQL prints them in view and function bodies: the deparser wrote `bit` (the
   * keyword, which means bit(1): `'101'::"bit"` became `'1'`), `pg_catalog."char"` as `char` (character(1)), and
   * dropped a `"char"` array's brackets.
   */
  override TypeName(node: AstNode, context: Parameters<Deparser['TypeName']>[1]): string {
    const names: string[] = (node.names ?? []).map((n: AstNode) => n.String?.sval);
    const [schema, name] = names.length === 1 ? [undefined, names[0]] : names;
    const builtin = names.length === 1 || (names.length === 2 && schema === 'pg_catalog');
    if (!builtin || (name !== 'bit' && name !== 'char') || node.typmods || node.setof || node.pct_type) {
      return super.TypeName(node, context);
    }
    const bounds = (node.arrayBounds ?? [])
      .map((b: AstNode) => (b.Integer?.ival !== undefined && b.Integer.ival !== -1 ? `[${b.Integer.ival}]` : '[]'))
      .join('');
    return `${schema ? 'pg_catalog.' : ''}"${name}"${bounds}`;
  }

  override ExecuteStmt(node: AstNode, context: Parameters<Deparser['ExecuteStmt']>[1]): string {
    const withoutName = super.ExecuteStmt({ ...node, name: undefined }, context);
    return withoutName.replace(/^EXECUTE/, `EXECUTE ${quoteIdentifier(node.name)}`);
  }
}

/** SQL text of a node (statement or expression). */
export function deparse(node: AstNode): string {
  return new FaithfulDeparser(node).deparseQuery();
}

/**
 * A statement as deparsesFaithfully compares it. COPY's old-style flags (`CSV HEADER`, psycopg2's usual form)
 * parse to an explicit `true`, which the deparser writes as a bare option (`HEADER`): PostgreSQL reads both as true.
 */
function comparable(statement: AstNode): AstNode {
  const copy = inner(statement, 'CopyStmt');
  if (!copy?.options) return statement;
  const options = copy.options.map((option: AstNode) =>
    option.DefElem?.arg?.Boolean?.boolval === true ? { DefElem: { ...option.DefElem, arg: undefined } } : option,
  );
  return { CopyStmt: { ...copy, options } };
}

/** Parse-tree fields that only record where something was in the source text. */
const SOURCE_POSITIONS = new Set(['location', 'list_start', 'list_end', 'rexpr_list_start', 'rexpr_list_end']);

/**
 * Whether the deparser writes `statement` back as SQL that parses to the same
 * tree (source positions aside). Batch mode rewrites statements through the
 * deparser; some syntax it loses or garbles (e.g. GROUP BY DISTINCT, newer
 * SQL/JSON forms), and such a statement must go to PostgreSQL as written.
 */
export function deparsesFaithfully(statement: AstNode): boolean {
  // (Fields in the parser's order: a tree the gateway built may have them in another.)
  const withoutPositions = (node: AstNode) =>
    JSON.stringify(comparable(node), (key, value) => {
      if (SOURCE_POSITIONS.has(key)) return undefined;
      if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
      return Object.fromEntries(
        Object.keys(value)
          .sort()
          .map((k) => [k, value[k]]),
      );
    });
  try {
    const again = parse(deparse(statement));
    return again.length === 1 && withoutPositions(again[0].stmt) === withoutPositions(statement);
  } catch {
    return false;
  }
}

/** Parses one expression written as SQL. */
export function parseExpression(sql: string): AstNode {
  const [statement] = parse(`SELECT ${sql}`);
  return statement.stmt.SelectStmt.targetList[0].ResTarget.val;
}

/** Parses a FROM item (e.g. a JOIN tree) written as SQL. */
export function parseFromItem(sql: string): AstNode {
  const [statement] = parse(`SELECT FROM ${sql}`);
  return statement.stmt.SelectStmt.fromClause[0];
}

/** Whether an expression calls a function whose last name part `test` accepts. */
export function callsFunction(node: AstNode, test: (name: string) => boolean): boolean {
  return some({ root: node }, (n) => {
    const parts = functionName(inner(n, 'FuncCall') ?? {});
    return parts.length > 0 && test(parts[parts.length - 1]);
  });
}

/** The name of the operator an A_Expr node applies (`=`, `<~`), without its schema; undefined for other nodes. */
export function operatorName(node: AstNode): string | undefined {
  const name: AstNode[] | undefined = inner(node, 'A_Expr')?.name;
  return name?.[name.length - 1]?.String?.sval;
}

/** The name parts of a FuncCall (e.g. ['aws_comprehend', 'detect_sentiment']), lower-cased as the parser leaves them. */
export function functionName(call: AstNode): string[] {
  return (call.funcname ?? []).map((part: AstNode) => part.String?.sval ?? '');
}

/**
 * Visits every node below `root` (depth first, parents before children).
 * `enter` may return false to skip a node's children.
 */
export function walk(
  root: AstNode,
  enter: (
    node: AstNode,
    parent: AstNode | AstNode[] | undefined,
    key: string | number | undefined,
  ) => boolean | undefined,
): void {
  const visit = (node: AstNode, parent: AstNode | AstNode[] | undefined, key: string | number | undefined) => {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      node.forEach((child, i) => {
        visit(child, node, i);
      });
      return;
    }
    if (enter(node, parent, key) === false) return;
    for (const [k, child] of Object.entries(node)) {
      if (child && typeof child === 'object') visit(child, node, k);
    }
  };
  visit(root, undefined, undefined);
}

/** True if any node below `root` satisfies `test`. */
export function some(root: AstNode, test: (node: AstNode) => boolean): boolean {
  let found = false;
  walk(root, (node) => {
    if (found) return false;
    if (test(node)) {
      found = true;
      return false;
    }
    return undefined;
  });
  return found;
}

/** The column name PostgreSQL gives an output expression without an alias (FigureColname). */
export function figureColumnName(expression: AstNode): string {
  return figure(expression)[0];
}

/**
 * FigureColnameInternal: a name and its strength (2: from the expression
 * itself, 1: a fallback such as a cast's type or `case`, 0: none), which
 * decides whether a cast or CASE passes its operand's name on.
 */
function figure(expression: AstNode): [string, number] {
  const type = nodeType(expression);
  const node = type ? expression[type] : undefined;
  switch (type) {
    case 'ColumnRef': {
      const fields = node.fields as AstNode[];
      const name = fields[fields.length - 1].String?.sval;
      return name ? [name, 2] : NO_NAME;
    }
    case 'A_Indirection': {
      for (let i = node.indirection.length - 1; i >= 0; i--) {
        const name = node.indirection[i].String?.sval;
        if (name) return [name, 2];
      }
      return figure(node.arg);
    }
    case 'FuncCall': {
      const name = functionName(node);
      return [name[name.length - 1], 2];
    }
    case 'A_Expr':
      return node.kind === 'AEXPR_NULLIF' ? ['nullif', 2] : NO_NAME;
    case 'TypeCast': {
      const fromArg = figure(node.arg);
      if (fromArg[1] > 1) return fromArg;
      const names = node.typeName.names as AstNode[];
      return [names[names.length - 1].String.sval, 1];
    }
    case 'CollateClause':
      return figure(node.arg);
    case 'GroupingFunc':
      return ['grouping', 2];
    case 'CaseExpr': {
      const fromDefault = node.defresult ? figure(node.defresult) : NO_NAME;
      return fromDefault[1] > 1 ? fromDefault : ['case', 1];
    }
    case 'CoalesceExpr':
      return ['coalesce', 2];
    case 'A_ArrayExpr':
      return ['array', 2];
    case 'RowExpr':
      return ['row', 2];
    case 'MinMaxExpr':
      return [node.op === 'IS_GREATEST' ? 'greatest' : 'least', 2];
    case 'XmlExpr':
      return node.op === 'IS_DOCUMENT' ? NO_NAME : [String(node.op).replace(/^IS_/, '').toLowerCase(), 2];
    case 'XmlSerialize':
      return ['xmlserialize', 2];
    case 'JsonObjectConstructor':
      return ['json_object', 2];
    case 'JsonArrayConstructor':
    case 'JsonArrayQueryConstructor':
      return ['json_array', 2];
    case 'JsonObjectAgg':
      return ['json_objectagg', 2];
    case 'JsonArrayAgg':
      return ['json_arrayagg', 2];
    case 'JsonParseExpr':
      return ['json', 2];
    case 'JsonScalarExpr':
      return ['json_scalar', 2];
    case 'JsonSerializeExpr':
      return ['json_serialize', 2];
    case 'JsonFuncExpr':
      return [String(node.op).replace(/_OP$/, '').toLowerCase(), 2];
    case 'SQLValueFunction':
      return [
        String(node.op)
          .replace(/^SVFOP_/, '')
          .replace(/_N$/, '')
          .toLowerCase(),
        2,
      ];
    case 'SubLink':
      if (node.subLinkType === 'EXISTS_SUBLINK') return ['exists', 2];
      if (node.subLinkType === 'ARRAY_SUBLINK') return ['array', 2];
      if (node.subLinkType === 'EXPR_SUBLINK') {
        const targets = node.subselect?.SelectStmt?.targetList;
        if (targets?.length === 1) return [targets[0].ResTarget.name ?? figureColumnName(targets[0].ResTarget.val), 2];
      }
      return NO_NAME;
    default:
      return NO_NAME;
  }
}

const NO_NAME: [string, number] = ['?column?', 0];
