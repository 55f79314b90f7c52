import { copyField } from './copy-text.js';
import { type CallGroup, ROW_RESULTS } from './planner.js';

/**
 * The session's table of results stored per table row (groups planned with
 * `rowIdentity`). Only the session's own rewritten statements read it, with
 * the session user's rights, so the session user owns it; it lives as long
 * as the session, like the per-input results table.
 */
export function rowResultsTableSql(fresh: boolean): string {
  return `DO $aws_ml$BEGIN
    IF to_regclass('${ROW_RESULTS}') IS NULL THEN
      CREATE TEMP TABLE aws_ml_row_results (stmt int NOT NULL, grp int NOT NULL,
        row_file oid NOT NULL, row_tid tid NOT NULL, row_xmin xid NOT NULL, out_text text, out_real real);
      -- Whatever role the session has later (SET ROLE) reads and loads it; other sessions never see it.
      GRANT SELECT, INSERT, TRUNCATE ON ${ROW_RESULTS} TO PUBLIC;
      -- Statistics need only how a statement's rows are spread (see analyzeResults): a small sample.
      ALTER TABLE ${ROW_RESULTS} ALTER COLUMN stmt SET STATISTICS 10, ALTER COLUMN grp SET STATISTICS 10,
        ALTER COLUMN row_file SET STATISTICS 10;
    ELSIF ${fresh} THEN
      TRUNCATE ${ROW_RESULTS};
    END IF;
  END$aws_ml$`;
}

export const ROW_RESULTS_COPY = `COPY ${ROW_RESULTS} (stmt, grp, row_file, row_tid, row_xmin, out_text, out_real) FROM STDIN`;

/** Its columns, as an SQL array: a temp table of that name with others is the user's own. */
export const ROW_RESULTS_COLUMNS = "ARRAY['stmt', 'grp', 'row_file', 'row_tid', 'row_xmin', 'out_text', 'out_real']";

/** The answers of a statement's distinct inputs, by the slot the scorer gave each. */
export interface Answers {
  isAnswered(slot: number): boolean;
  /** Answered with no answer: the row is left to the statement's per-row fallback. */
  isDeclined(slot: number): boolean;
  textOf(slot: number): string | null;
  realOf(slot: number): number | null;
}

/** The slot of a row whose input answers NULL without the service (NULL or blank text): stored with no answer. */
export const ANSWERED_NULL = -2;

/**
 * The rows of a group's table in the order its argument query gave them,
 * each with the scorer slot of its input (repeated inputs share a slot, so
 * each distinct input is called once). A row is kept as numbers (ctid block
 * and offset, xmin), not text: a million-row statement keeps them all.
 * Rows are written out in that order as their answers come.
 */
export class RowLog {
  private readonly blocks: number[] = [];
  private readonly offsets: number[] = [];
  private readonly xmins: number[] = [];
  private readonly slots: number[] = [];
  private next = 0;
  /** The table's file when the argument query read it (the same for every row). */
  private file = 0;
  /** Rows logged, by ctid (block and offset as one number), with their xmin: only for a group read more than once. */
  private readonly logged: Map<number, number> | undefined;
  /** Rows read that get no stored answer (left to the per-row fallback): no input slot, or a declined batch. */
  unanswered = 0;

  /** `readTwice`: the group's argument query runs more than once (for several Binds), and may give a row again. */
  constructor(
    readonly group: CallGroup,
    readTwice = false,
  ) {
    if (readTwice) this.logged = new Map();
  }

  /** Rows logged (each gets a stored answer once answered). */
  get size(): number {
    return this.slots.length;
  }

  /** A row and its input's slot; a row without one (NULL input) gets no stored answer, unless ANSWERED_NULL. */
  add(slot: number, file: number, block: number, offset: number, xmin: number): void {
    if (slot === -1) {
      this.unanswered += 1;
      return;
    }
    if (this.logged) {
      const tid = block * 65536 + offset;
      if (this.logged.get(tid) === xmin) return;
      this.logged.set(tid, xmin);
    }
    this.file = file;
    this.blocks.push(block);
    this.offsets.push(offset);
    this.xmins.push(xmin);
    this.slots.push(slot);
  }

  /** COPY lines for the next rows whose answers are in (up to the first still missing, at most `limit`). */
  take(statement: number, answers: Answers, limit: number): string {
    const head = `${statement}\t${this.group.id}\t${this.file}\t(`;
    let out = '';
    const end = Math.min(this.slots.length, this.next + limit);
    while (this.next < end) {
      const slot = this.slots[this.next];
      const i = this.next;
      if (slot === ANSWERED_NULL) {
        this.next += 1;
        out += `${head}${this.blocks[i]},${this.offsets[i]})\t${this.xmins[i]}\t\\N\t\\N\n`;
        continue;
      }
      if (!answers.isAnswered(slot)) break;
      this.next += 1;
      if (answers.isDeclined(slot)) {
        this.unanswered += 1;
        continue;
      }
      out += `${head}${this.blocks[i]},${this.offsets[i]})\t${this.xmins[i]}\t${copyField(answers.textOf(slot))}\t${copyField(answers.realOf(slot))}\n`;
    }
    return out;
  }
}
