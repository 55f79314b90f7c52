import { type AstNode, callsFunction, inner, nodeType, some } from '../sql/ast.js';
import { parse } from '../sql/parser.js';
import { ClientMessage, executePortalName, type Message, readBind, readParse } from './protocol.js';

/**
 * Statements after which the rest of an extended-protocol group can still be
 * scored before the group runs. The gateway scores a group's statements
 * before PostgreSQL has run any of them: one that comes after DDL (a table it
 * creates, a column it adds), a SET (search_path, batch mode off, a role), a
 * DO block or a procedure would be scored against the session as it was
 * before; so would one after `EXECUTE` or `FETCH`, which run what was
 * prepared or declared earlier. Writes are not in question: a row they add or
 * change has no answer yet and is answered per row, as the planner's fallback
 * does for any row. (A trigger that changes more than rows is not seen.)
 */
const SCORED_AFTER = new Set([
  'SelectStmt',
  'InsertStmt',
  'UpdateStmt',
  'DeleteStmt',
  'MergeStmt',
  'VariableShowStmt',
  'CopyStmt',
  'DeclareCursorStmt',
  'ClosePortalStmt',
  'LockStmt',
  'NotifyStmt',
  'ListenStmt',
  'UnlistenStmt',
  'PrepareStmt',
  'DeallocateStmt',
  'CheckPointStmt',
]);

/** Transaction statements that leave the block as it is for what follows (pgjdbc's autosave adds savepoints). */
const KEEPS_BLOCK = new Set(['TRANS_STMT_BEGIN', 'TRANS_STMT_START', 'TRANS_STMT_SAVEPOINT', 'TRANS_STMT_RELEASE']);

function leavesLaterAlone(stmt: AstNode, catalog: SideEffects): boolean {
  const explained = inner(stmt, 'ExplainStmt');
  if (explained) return leavesLaterAlone(explained.query, catalog);
  const type = nodeType(stmt) ?? '';
  if (type === 'TransactionStmt') return KEEPS_BLOCK.has(stmt.TransactionStmt.kind);
  // (A function that may write may as well run DDL or SET: a PL/pgSQL one that replaces a wrapper. So may a view
  // or a row-level security policy that calls one.)
  return (
    SCORED_AFTER.has(type) &&
    !callsFunction(stmt, (name) => name === 'set_config' || catalog.sideEffects.has(name)) &&
    !some(stmt, (node) => catalog.relations.has(inner(node, 'RangeVar')?.relname))
  );
}

interface SideEffects {
  sideEffects: ReadonlySet<string>;
  relations: ReadonlySet<string | undefined>;
}

/**
 * Answers by text, per catalog (its set of side effects stands for it: the catalog's two sets are read together),
 * so that sessions of different databases keep theirs.
 */
const known = new WeakMap<ReadonlySet<string>, Map<string, boolean>>();
const KNOWN_LIMIT = 1000;
const NONE: ReadonlySet<string> = new Set();

/**
 * Whether a statement parsed in a group may change how the group's later
 * statements read (see SCORED_AFTER). Text the parser refuses changes
 * nothing: PostgreSQL refuses it too, and skips the rest of the group.
 */
export function changesLaterStatements(
  sql: string,
  catalog: { sideEffects?: ReadonlySet<string>; relationsWithSideEffects?: ReadonlySet<string> },
): boolean {
  const sideEffects = catalog.sideEffects ?? NONE;
  let answers = known.get(sideEffects);
  if (!answers || answers.size >= KNOWN_LIMIT) {
    // Drivers send the same few texts over and over; one that sends ever new ones only costs a parse each.
    answers = new Map();
    known.set(sideEffects, answers);
  }
  let answer = answers.get(sql);
  if (answer === undefined) {
    const effects = { sideEffects, relations: catalog.relationsWithSideEffects ?? NONE };
    try {
      answer = !parse(sql).every((s) => leavesLaterAlone(s.stmt, effects));
    } catch {
      answer = false;
    }
    answers.set(sql, answer);
  }
  return answer;
}

/**
 * How many of a group's first messages open a transaction block: Parse,
 * Bind, (Describe,) Execute of `BEGIN` or `START TRANSACTION` (with
 * `readWrite`, not READ ONLY: the gateway makes its results tables in a
 * read-write transaction). 0 if the group starts otherwise.
 */
export function blockOpening(group: Message[], { readWrite = false } = {}): number {
  const [parseMsg, bindMsg, third, fourth] = group;
  if (parseMsg?.type !== ClientMessage.Parse || bindMsg?.type !== ClientMessage.Bind) return 0;
  const { name, sql } = readParse(parseMsg.bytes);
  const bind = readBind(bindMsg.bytes);
  if (bind.statement !== name) return 0;
  const execute = third?.type === ClientMessage.Describe ? fourth : third;
  if (execute?.type !== ClientMessage.Execute || executePortalName(execute.bytes) !== bind.portal) return 0;
  try {
    const statements = parse(sql);
    const begin = statements.length === 1 ? inner(statements[0].stmt, 'TransactionStmt') : undefined;
    const opens = begin && (begin.kind === 'TRANS_STMT_BEGIN' || begin.kind === 'TRANS_STMT_START');
    if (!opens || (readWrite && JSON.stringify(begin.options ?? []).includes('transaction_read_only'))) return 0;
  } catch {
    return 0;
  }
  return group.indexOf(execute) + 1;
}
