import { getHeapStatistics } from 'node:v8';
import { SqlError, SqlState } from '../util/errors.js';

/** How often the heap is looked at while batched statements run. */
const CHECK_EVERY_MS = 100;

/** A batched statement while it reads and scores its inputs. */
export interface WatchedStatement {
  /** Argument rows read so far: what the statement holds grows with them. */
  rowsRead(): number;
  /** Stops the statement with `reason` (its scoring and argument reading end; it fails with it). */
  stop(reason: SqlError): void;
}

const megabytes = (bytes: number) => Math.round(bytes / 2 ** 20);

/**
 * Keeps the gateway's JavaScript heap from filling up. A full heap ends the
 * whole process and every session with it, and batched statements are what
 * grow it (the distinct inputs, the answers waiting to be written). Past
 * `share` of the heap's limit the statement that has read the most rows is
 * stopped with 53200, as PostgreSQL fails a statement that runs out of
 * memory; the next is stopped only once that one has ended and the heap is
 * still past the mark.
 */
export class MemoryGuard {
  private readonly running = new Set<WatchedStatement>();
  private timer: NodeJS.Timeout | undefined;
  /** A statement stopped here that has not ended yet: its memory is still to be freed. */
  private stopping: WatchedStatement | undefined;

  constructor(
    private readonly share: number,
    private readonly heap: () => { used_heap_size: number; heap_size_limit: number } = getHeapStatistics,
  ) {}

  /** Watches a statement until the function returned is called (when it ends, however it ends). */
  watch(statement: WatchedStatement): () => void {
    this.running.add(statement);
    // (Unref'd: a guard must not keep the process alive.)
    this.timer ??= setInterval(() => this.check(), CHECK_EVERY_MS).unref();
    return () => {
      this.running.delete(statement);
      if (this.stopping === statement) this.stopping = undefined;
      if (this.running.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  private check(): void {
    if (this.stopping) return;
    const { used_heap_size: used, heap_size_limit: limit } = this.heap();
    if (used <= limit * this.share) return;
    let largest: WatchedStatement | undefined;
    for (const statement of this.running) {
      if (!largest || statement.rowsRead() > largest.rowsRead()) largest = statement;
    }
    if (!largest) return;
    this.stopping = largest;
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
