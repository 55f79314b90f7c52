import { constants, PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { SqlError, SqlState } from '../util/errors.js';

/** A batched statement while it reads and scores its inputs. */
export interface WatchedStatement {
  /** Argument rows read so far: what the statement holds grows with them. */
  rowsRead(): number;
  /** Stops the statement with `reason` (its scoring and argument reading end; it fails with it). */
  stop(reason: SqlError): void;
  /** It is being stopped already (a cancel, statement_timeout, a failure) or is done scoring. */
  stopping(): boolean;
}

/** Calls `listener` after each full (major) garbage collection until the function returned is called. */
export type MajorGcSource = (listener: () => void) => () => void;

const afterMajorGc: MajorGcSource = (listener) => {
  const observer = new PerformanceObserver((list) => {
    const entries = list.getEntries() as { detail?: { kind?: number } }[];
    if (entries.some((entry) => entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)) listener();
  });
  observer.observe({ entryTypes: ['gc'] });
  return () => observer.disconnect();
};

const megabytes = (bytes: number) => Math.round(bytes / 2 ** 20);

/**
 * Keeps the gateway's JavaScript heap from filling up. A full heap ends the
 * whole process and every session with it, and batched statements are what
 * grow it (the distinct inputs' text, the answers waiting to be written).
 * The heap is judged right after each full garbage collection (before one it
 * also holds garbage, two to three times what is live during a big
 * statement): past `share` of its limit, the statement that has read the most
 * rows is stopped with 53200, as PostgreSQL fails a statement that runs out
 * of memory. A stopped statement lets go of what it holds at once (see
 * BatchScorer), though it may still be reading its last argument rows: until
 * the heap is back under the mark, the next is stopped only if it has grown
 * past where it stood at the last stop.
 */
export class MemoryGuard {
  private readonly running = new Set<WatchedStatement>();
  private stopWatchingGc: (() => void) | undefined;
  /** Statements stopped here that have not ended yet. */
  private readonly stopped = new Set<WatchedStatement>();
  /** The heap in use at the last stop, while a statement stopped here has not ended. */
  private usedAtLastStop: number | undefined;

  constructor(
    private readonly share: number,
    private readonly heap: () => { used_heap_size: number; heap_size_limit: number } = getHeapStatistics,
    private readonly majorGcs: MajorGcSource = afterMajorGc,
  ) {}

  /** Watches a statement until the function returned is called (when it ends, however it ends). */
  watch(statement: WatchedStatement): () => void {
    this.running.add(statement);
    this.stopWatchingGc ??= this.majorGcs(() => this.check());
    return () => {
      this.running.delete(statement);
      this.stopped.delete(statement);
      if (this.stopped.size === 0) this.usedAtLastStop = undefined;
      if (this.running.size === 0) {
        this.stopWatchingGc?.();
        this.stopWatchingGc = undefined;
      }
    };
  }

  private check(): void {
    const { used_heap_size: used, heap_size_limit: limit } = this.heap();
    if (used <= limit * this.share) {
      // (Back under the mark: the next time past it is judged afresh.)
      this.usedAtLastStop = undefined;
      return;
    }
    if (this.usedAtLastStop !== undefined && used <= this.usedAtLastStop) return;
    let largest: WatchedStatement | undefined;
    for (const statement of this.running) {
      if (this.stopped.has(statement) || statement.stopping()) continue;
      if (!largest || statement.rowsRead() > largest.rowsRead()) largest = statement;
    }
    // (One that has read nothing yet holds nothing to free.)
    if (!largest || largest.rowsRead() === 0) return;
    this.stopped.add(largest);
    this.usedAtLastStop = used;
    largest.stop(
      new SqlError(
        SqlState.outOfMemory,
        `out of memory: the gateway's heap holds ${megabytes(used)} MB of its ${megabytes(limit)} MB`,
        'pgsage stopped this statement, the largest batched statement it was running, so that it can go on serving ' +
          'the others.',
        'Run it again when fewer large statements run at once, or split it (by a key range); or give the gateway ' +
          'more heap (NODE_OPTIONS=--max-old-space-size=…) or a larger batch.heapShare.',
      ),
    );
  }
}
