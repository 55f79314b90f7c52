import type { MlKind } from './ml-calls.js';
import type { CallGroup } from './planner.js';
import { ROW_RESULTS } from './planner.js';

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
 * Which rows of its table asked a group for which input: the scorer calls
 * each distinct input once, and every row that asked for it gets the answer.
 * A row is kept as its COPY text `ctid<TAB>xmin`.
 */
export class RowRequests {
  private readonly byTarget = new Map<string, Map<string, string | string[]>>();
  private last: { target: string; rows: Map<string, string | string[]> } | undefined;

  constructor(readonly group: CallGroup) {}

  add(target: string, key: string, row: string): void {
    const rows = this.rowsOfTarget(target);
    const earlier = rows.get(key);
    if (earlier === undefined) rows.set(key, row);
    else if (typeof earlier === 'string') rows.set(key, [earlier, row]);
    else earlier.push(row);
  }

  /** COPY lines for the rows that asked for this answer (empty when none did). */
  lines(statement: number, kind: MlKind, target: string, key: string, outText: string, outReal: string): string {
    if (kind !== this.group.kind) return '';
    const rows = this.byTarget.get(target)?.get(key);
    if (rows === undefined) return '';
    const tail = `\t${outText}\t${outReal}\n`;
    const head = `${statement}\t${this.group.id}\t`;
    if (typeof rows === 'string') return head + rows + tail;
    let out = '';
    for (const row of rows) out += head + row + tail;
    return out;
  }

  private rowsOfTarget(target: string): Map<string, string | string[]> {
    if (this.last?.target === target) return this.last.rows;
    let rows = this.byTarget.get(target);
    if (!rows) {
      rows = new Map();
      this.byTarget.set(target, rows);
    }
    this.last = { target, rows };
    return rows;
  }
}
