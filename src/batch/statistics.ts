/** Per-function batch-mode figures since the gateway started (SQL view and Prometheus metrics). */
export interface FunctionFigures {
  statements: number;
  batches: number;
  rows: number;
  callTimeMs: number;
  retries: number;
  errors: number;
  perRowCalls: number;
}

/** Where the last batch-mode statement spent its time, in milliseconds. */
export interface StatementPhases {
  argumentsMs: number;
  scoringTailMs: number;
  loadTailMs: number;
  /** The rewritten statement itself; unknown for extended-protocol groups, which are forwarded, not awaited. */
  statementMs?: number;
  rows: number;
  /** Argument rows whose model inputs were read and sent as numbers (binary COPY). */
  numericRows: number;
}

/** Counts one function's batches as they are answered (see BatchStatistics.tally). */
export interface BatchTally {
  batch(size: number, ms: number): void;
  retry(): void;
}

export class BatchStatistics {
  private readonly byFunction = new Map<string, FunctionFigures>();
  /** The most recent batch-mode statement's phases (benchmarks read it). */
  lastStatement: StatementPhases | undefined;
  /** Reads of the ML catalog (wrappers, views) from the database: after DDL, when old, per snapshot. */
  catalogReads = 0;
  /** Notifications of DDL made elsewhere (a direct connection, another gateway) that made the catalog stale. */
  ddlHeard = 0;
  /** Databases whose DDL the gateway listens for now (one connection each, while sessions use them). */
  ddlListening = 0;
  /**
   * Client transaction blocks a cancel aborted as the gateway's own work after a statement began (on its
   * SAVEPOINT): the client heard of it only from its next statement's 25P02, or a COMMIT that answered ROLLBACK.
   */
  blocksLost = 0;

  private entry(label: string): FunctionFigures {
    let entry = this.byFunction.get(label);
    if (!entry) {
      entry = { statements: 0, batches: 0, rows: 0, callTimeMs: 0, retries: 0, errors: 0, perRowCalls: 0 };
      this.byFunction.set(label, entry);
    }
    return entry;
  }

  /** A statement starts scoring calls of these functions: each counts it once. */
  recordStatement(labels: Iterable<string>): void {
    for (const label of new Set(labels)) this.entry(label).statements += 1;
  }

  /**
   * Where a function's batches and retries are counted as they happen, so
   * that a statement that fails or is cancelled later still counts the
   * service's work it had done.
   */
  tally(label: string): BatchTally {
    const entry = this.entry(label);
    return {
      batch: (size, ms) => {
        entry.batches += 1;
        entry.rows += size;
        entry.callTimeMs += ms;
      },
      retry: () => {
        entry.retries += 1;
      },
    };
  }

  /** A statement scoring calls of these functions failed: each counts it once. */
  recordError(labels: Iterable<string>): void {
    for (const label of new Set(labels)) this.entry(label).errors += 1;
  }

  recordPerRowCall(label: string): void {
    this.entry(label).perRowCalls += 1;
  }

  snapshot(): { function: string; figures: FunctionFigures }[] {
    return [...this.byFunction.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, figures]) => ({ function: name, figures: { ...figures } }));
  }

  /** Prometheus text exposition format. */
  prometheus(): string {
    const metrics: [keyof FunctionFigures, string, string][] = [
      ['statements', 'pgsage_batch_statements_total', 'Statements that ran ML calls in batch mode'],
      ['batches', 'pgsage_batch_batches_total', 'Batches sent to ML services'],
      ['rows', 'pgsage_batch_rows_total', 'Rows scored in batch mode'],
      ['callTimeMs', 'pgsage_batch_call_time_ms_total', 'Time spent in batch calls, milliseconds'],
      ['retries', 'pgsage_batch_retries_total', 'Throttled batch calls retried'],
      [
        'errors',
        'pgsage_batch_errors_total',
        'Batch-mode statements that failed while scoring (a service error, a cancel or timeout)',
      ],
      ['perRowCalls', 'pgsage_per_row_calls_total', 'Calls served one row at a time through the bridge'],
    ];
    const lines: string[] = [];
    for (const [field, name, help] of metrics) {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
      for (const { function: fn, figures } of this.snapshot()) {
        lines.push(`${name}{function="${fn}"} ${Math.round(figures[field] * 1000) / 1000}`);
      }
    }
    lines.push(
      '# HELP pgsage_ml_catalog_reads_total Reads of the ML wrapper and view catalog from the database',
      '# TYPE pgsage_ml_catalog_reads_total counter',
      `pgsage_ml_catalog_reads_total ${this.catalogReads}`,
      '# HELP pgsage_ddl_notifications_total Notifications of function or view DDL that did not pass through the gateway',
      '# TYPE pgsage_ddl_notifications_total counter',
      `pgsage_ddl_notifications_total ${this.ddlHeard}`,
      '# HELP pgsage_ddl_listeners Databases whose DDL the gateway listens for',
      '# TYPE pgsage_ddl_listeners gauge',
      `pgsage_ddl_listeners ${this.ddlListening}`,
      "# HELP pgsage_transaction_blocks_lost_total Client transaction blocks a cancel aborted during the gateway's own work after a statement",
      '# TYPE pgsage_transaction_blocks_lost_total counter',
      `pgsage_transaction_blocks_lost_total ${this.blocksLost}`,
    );
    return `${lines.join('\n')}\n`;
  }
}
