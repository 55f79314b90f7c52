import type { Message } from './protocol.js';

/**
 * `statement_timeout` bounds a statement as the client sent it. In batch mode
 * PostgreSQL sees several statements (the gateway's reads, the argument
 * queries, the final statement), each of which it would give the whole
 * setting: the final statement is sent under what is left of it instead, so
 * the statement as a whole fails where the per-row path would.
 */

/** Milliseconds of `timeoutMs` left `began` (performance.now()) ago; undefined when no timeout is set. */
export function timeLeft(timeoutMs: number, began: number, now = performance.now()): number | undefined {
  if (timeoutMs <= 0) return undefined;
  // (At least 1 ms: 0 would turn the timeout off. The statement then fails at once, as it should.)
  return Math.max(1, Math.ceil(timeoutMs - (now - began)));
}

/** The statement text to send and which of its replies the client must not see. */
export interface TimedStatement {
  sql: string;
  /** Drops the CommandComplete of the gateway's own SETs (returns the message otherwise). */
  hide: (message: Message) => Buffer | null;
}

/**
 * `sql` (one statement) sent in one Query with `SET LOCAL statement_timeout`
 * before it. Outside a block the Query is one implicit transaction, which
 * takes the LOCAL value with it; inside one the setting is put back after the
 * statement (if the statement fails, the block's rollback puts it back).
 * PostgreSQL starts each statement of a Query string with a fresh timeout
 * (since version 13), so the statement gets exactly `left`.
 */
export function underTimeLeft(sql: string, left: number, timeoutMs: number, inBlock: boolean): TimedStatement {
  // (Line breaks: the statement may end in a comment.)
  const text = `SET LOCAL statement_timeout = ${left};\n${sql}\n;${inBlock ? `SET LOCAL statement_timeout = ${timeoutMs}` : ''}`;
  let completes = 0;
  return {
    sql: text,
    hide: (message) => {
      if (message.type !== 0x43 /* CommandComplete */) return message.bytes;
      completes += 1;
      return completes === 2 ? message.bytes : null;
    },
  };
}
