import { copyField } from './copy-text.js';
import { type CallGroup, ROW_RESULTS } from './planner.js';
import type { CallResult } from './scoring.js';

/**
 * The session's table of results stored per table row (groups planned with
 * `rowIdentity`). Only the session's own rewritten statements read it, with
 * the session user's rights, so the session user owns it; it lives as long
 * as the session, like the per-input results table.
 */
export function rowResultsTableSql(fresh: boolean): string {
  return `DO $aws_ml$BEGIN
    IF to_regclass('${ROW_RESULTS}') IS NULL THEN
      CREATE TEMP TABLE aws_ml_row_results (
        stmt int NOT NULL, grp int NOT NULL, row_tid tid NOT NULL, row_xmin xid NOT NULL, out_text text, out_real real);
    ELSIF ${fresh} THEN
      TRUNCATE ${ROW_RESULTS};
    END IF;
  END$aws_ml$`;
}

export const ROW_RESULTS_COPY = `COPY ${ROW_RESULTS} (stmt, grp, row_tid, row_xmin, out_text, out_real) FROM STDIN`;

/**
 * The rows of a group's table in the order its argument query gave them,
 * each with the scorer slot of its input (repeated inputs share a slot, so
 * each distinct input is called once). A row is kept as its COPY text
 * `ctid<TAB>xmin`. Rows are written out in that order as their answers come.
 */
export class RowLog {
  private readonly rows: string[] = [];
  private readonly slots: number[] = [];
  private next = 0;

  constructor(readonly group: CallGroup) {}

  /** A row and its input's slot; a row without one (NULL input) gets no stored answer. */
  add(slot: number, row: string): void {
    if (slot < 0) return;
    this.rows.push(row);
    this.slots.push(slot);
  }

  get done(): boolean {
    return this.next === this.rows.length;
  }

  /** COPY lines for the next rows whose answers are in (up to the first still missing, at most `limit`). */
  take(statement: number, answerOf: (slot: number) => CallResult | undefined, limit: number): string {
    const head = `${statement}\t${this.group.id}\t`;
    let out = '';
    const end = Math.min(this.rows.length, this.next + limit);
    while (this.next < end) {
      const answer = answerOf(this.slots[this.next]);
      if (!answer) break;
      out += `${head}${this.rows[this.next]}\t${copyField(answer.outText)}\t${copyField(answer.outReal)}\n`;
      this.next += 1;
    }
    return out;
  }
}
