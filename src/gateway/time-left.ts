import { quoteLiteral } from '../sql/quote.js';
import { withPosition } from './client-errors.js';
import { type Message, ServerMessage } from './protocol.js';

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

/** A time setting of `ms` milliseconds as SHOW and current_setting() print it (`1234ms`, `2s`, `5min`). */
export function shownMilliseconds(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['min', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms !== 0 && ms % size === 0) return `${ms / size}${unit}`;
  }
  return ms === 0 ? '0' : `${ms}ms`;
}

/**
 * SQL that puts a setting the gateway changed back to `previous` unless it is
 * no longer `ours`: something the client's statements ran changed it meanwhile.
 */
export function putBackSetting(name: string, ours: string, previous: string, local = true): string {
  const current = `pg_catalog.current_setting(${quoteLiteral(name)})`;
  return `SELECT pg_catalog.set_config(${quoteLiteral(name)}, CASE ${current}
      WHEN ${quoteLiteral(ours)} THEN ${quoteLiteral(previous)} ELSE ${current} END, ${local})`;
}

/** The statement text to send and what of its replies the client may see. */
export interface TimedStatement {
  sql: string;
  /** Drops the replies of the gateway's own statements (returns the message, possibly changed, otherwise). */
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
  const prefix = `SET LOCAL statement_timeout = ${left};\n`;
  // (Line breaks: the statement may end in a comment.)
  const suffix = inBlock ? `\n;${putBackSetting('statement_timeout', shownMilliseconds(left), String(timeoutMs))}` : '';
  let completes = 0;
  return {
    sql: `${prefix}${sql}${suffix}`,
    hide: (message) => {
      switch (message.type) {
        case ServerMessage.ErrorResponse:
          return shiftPosition(message.bytes, prefix.length);
        case ServerMessage.CommandComplete: // the SET's, the statement's, the put-back's
          completes += 1;
          return completes === 2 ? message.bytes : null;
        case ServerMessage.RowDescription:
        case ServerMessage.DataRow:
          return completes >= 2 ? null : message.bytes;
        default:
          return message.bytes;
      }
    },
  };
}

/** An ErrorResponse with its position (P) moved `by` characters back: the statement's text began that far in. */
function shiftPosition(error: Buffer, by: number): Buffer {
  return withPosition(error, (position) => (position > by ? position - by : position));
}
