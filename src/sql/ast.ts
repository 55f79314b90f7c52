import { deparseSync } from 'pgsql-deparser';
import { type AstNode, parse } from './parser.js';

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

/** SQL text of a node (statement or expression). */
export function deparse(node: AstNode): string {
  return deparseSync(node);
}

/**
 * Whether the deparser writes `statement` back as SQL that parses to the same
 * tree (source positions aside). Batch mode rewrites statements through the
 * deparser; some syntax it loses or garbles (e.g. FETCH … WITH TIES, GROUP BY
 * DISTINCT, newer SQL/JSON forms), and such a statement must go to PostgreSQL
 * as written.
 */
export function deparsesFaithfully(statement: AstNode): boolean {
  const withoutPositions = (node: AstNode) =>
    JSON.stringify(node, (key, value) => (key === 'location' ? undefined : value));
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
  const type = nodeType(expression);
  const node = type ? expression[type] : undefined;
  switch (type) {
    case 'ColumnRef': {
      const fields = node.fields as AstNode[];
      const last = fields[fields.length - 1];
      return last.String?.sval ?? '?column?';
    }
    case 'A_Indirection': {
      for (let i = node.indirection.length - 1; i >= 0; i--) {
        const name = node.indirection[i].String?.sval;
        if (name) return name;
      }
      return figureColumnName(node.arg);
    }
    case 'FuncCall': {
      const name = functionName(node);
      return name[name.length - 1];
    }
    case 'TypeCast': {
      const fromArg = figureColumnName(node.arg);
      if (fromArg !== '?column?') return fromArg;
      const names = node.typeName.names as AstNode[];
      return names[names.length - 1].String.sval;
    }
    case 'CaseExpr':
      return 'case';
    case 'CoalesceExpr':
      return 'coalesce';
    case 'A_ArrayExpr':
      return 'array';
    case 'RowExpr':
      return 'row';
    case 'MinMaxExpr':
      return node.op === 'IS_GREATEST' ? 'greatest' : 'least';
    case 'NullIfExpr':
      return 'nullif';
    case 'SubLink':
      if (node.subLinkType === 'EXISTS_SUBLINK') return 'exists';
      if (node.subLinkType === 'ARRAY_SUBLINK') return 'array';
      if (node.subLinkType === 'EXPR_SUBLINK') {
        const targets = node.subselect?.SelectStmt?.targetList;
        if (targets?.length === 1) return targets[0].ResTarget.name ?? figureColumnName(targets[0].ResTarget.val);
      }
      return '?column?';
    default:
      return '?column?';
  }
}
