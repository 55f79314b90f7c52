/**
 * What PostgreSQL still owes for the client's messages the gateway passed
 * on, in order. A Query (or FunctionCall) sent after extended-protocol
 * messages with no Sync between them is answered only if none of those
 * messages fails: after an error PostgreSQL skips every message up to the
 * next Sync, a Query too, and never sends that Query's ReadyForQuery. Only the
 * order of the replies tells whether an ErrorResponse came from such a
 * message (the Query is skipped) or from the Query itself (answered).
 */

import { ClientMessage, countsAsReply, repliesTo, ServerMessage } from './protocol.js';

/** Entries: a positive count of replies owed to extended messages in a row (see repliesTo), or a message answered by ReadyForQuery. */
const AWAITS_QUERY = -1;
const AWAITS_SYNC = -2;

export class ReplyLedger {
  private entries: number[] = [];
  /** PostgreSQL failed an extended message and skips what comes until a Sync not sent yet. */
  private skippingToSync = false;

  /** Whether PostgreSQL will skip a Query (or FunctionCall) sent now, unanswered. */
  get skipping(): boolean {
    return this.skippingToSync;
  }

  /** A client message went to the server. */
  sent(message: Buffer): void {
    const type = message[0];
    if (type === ClientMessage.Sync) {
      this.skippingToSync = false;
      this.entries.push(AWAITS_SYNC);
    } else if (this.skippingToSync) {
      // Skipped by PostgreSQL: nothing will answer it.
    } else if (type === ClientMessage.Query || type === ClientMessage.FunctionCall) {
      this.entries.push(AWAITS_QUERY);
    } else {
      const replies = repliesTo(message) ?? 0;
      if (replies === 0) return;
      const last = this.entries.length - 1;
      if (last >= 0 && this.entries[last] > 0) this.entries[last] += replies;
      else this.entries.push(replies);
    }
  }

  /** Every message in `bytes` (whole messages) went to the server. */
  sentAll(bytes: Buffer): void {
    for (let pos = 0, end = 0; pos + 5 <= bytes.length; pos = end) {
      end = pos + 1 + bytes.readInt32BE(pos + 1);
      this.sent(bytes.subarray(pos, end));
    }
  }

  /**
   * A server message arrived for the client. Returns how many Queries sent
   * earlier PostgreSQL will now skip: their ReadyForQuery will not come.
   */
  received(type: number): number {
    const entries = this.entries;
    if (entries.length === 0) return 0;
    const head = entries[0];
    if (type === ServerMessage.ReadyForQuery) {
      // (Replies the ledger missed, as after a COPY that ignored a Sync, end with the next ReadyForQuery.)
      let drop = 0;
      while (drop < entries.length && entries[drop] > 0) drop += 1;
      entries.splice(0, Math.min(drop + 1, entries.length));
      return 0;
    }
    if (head < 0) return 0; // a reply to that Query (or Sync): the Query's own error is answered as usual
    if (type === ServerMessage.ErrorResponse) return this.skipToSync();
    if (type === ServerMessage.CopyInResponse) {
      // PostgreSQL ignores a Sync that reaches it during COPY FROM STDIN: the client sends another after the data.
      if (head === 1 && entries[1] === AWAITS_SYNC) entries.splice(1, 1);
      return 0;
    }
    if (countsAsReply(type)) {
      if (head === 1) entries.shift();
      else entries[0] = head - 1;
    }
    return 0;
  }

  /** The server answered everything sent so far (the gateway read it itself). */
  clear(): void {
    this.entries = [];
    this.skippingToSync = false;
  }

  private skipToSync(): number {
    const entries = this.entries;
    let skippedQueries = 0;
    let end = 0;
    while (end < entries.length && entries[end] !== AWAITS_SYNC) {
      if (entries[end] === AWAITS_QUERY) skippedQueries += 1;
      end += 1;
    }
    entries.splice(0, end);
    this.skippingToSync = entries.length === 0;
    return skippedQueries;
  }
}
