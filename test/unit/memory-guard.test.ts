import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { type MajorGcSource, MemoryGuard } from '../../src/batch/memory-guard.js';
import type { SqlError } from '../../src/util/errors.js';

/** A statement that has read `rows` rows and records why it was stopped. */
function statement(rows: number, stopping = false) {
  const stopped: SqlError[] = [];
  return { rowsRead: () => rows, stop: (reason: SqlError) => stopped.push(reason), stopping: () => stopping, stopped };
}

/** Full collections the test makes happen: `collect()` calls what the guard listens with. */
function collections() {
  let listener: (() => void) | undefined;
  const source: MajorGcSource = (l) => {
    listener = l;
    return () => {
      listener = undefined;
    };
  };
  return { source, collect: () => listener?.(), listening: () => listener !== undefined };
}

describe('MemoryGuard', () => {
  it('stops the statement that read the most rows when a full collection leaves the heap past its share', () => {
    let used = 40;
    const gc = collections();
    const heap = () => ({ used_heap_size: used * 2 ** 20, heap_size_limit: 100 * 2 ** 20 });
    const guard = new MemoryGuard(0.5, heap, gc.source);
    const idle = statement(0);
    const small = statement(10);
    const large = statement(20);
    guard.watch(idle);
    const endSmall = guard.watch(small);
    const endLarge = guard.watch(large);
    gc.collect();
    expect([small.stopped, large.stopped]).toEqual([[], []]);
    used = 60;
    gc.collect();
    expect(small.stopped).toEqual([]);
    expect(large.stopped).toHaveLength(1);
    expect(large.stopped[0]).toMatchObject({ sqlstate: '53200' });
    expect(large.stopped[0].message).toBe("out of memory: the gateway's heap holds 60 MB of its 100 MB");
    // While it ends, another is stopped only if the heap grows past where it stood.
    gc.collect();
    expect(small.stopped).toEqual([]);
    used = 55;
    gc.collect();
    expect(small.stopped).toEqual([]);
    used = 70;
    gc.collect();
    expect(small.stopped).toHaveLength(1);
    expect(large.stopped).toHaveLength(1);
    // One that has read nothing is never stopped.
    used = 90;
    gc.collect();
    expect(idle.stopped).toEqual([]);
    // Once the stopped ones have ended, the mark alone decides again.
    endLarge();
    endSmall();
    const later = statement(5);
    guard.watch(later);
    used = 60;
    gc.collect();
    expect(later.stopped).toHaveLength(1);
  });

  it('judges afresh once the heap is back under the mark, and passes over one being stopped already', () => {
    let used = 95;
    const gc = collections();
    const guard = new MemoryGuard(
      0.5,
      () => ({ used_heap_size: used * 2 ** 20, heap_size_limit: 100 * 2 ** 20 }),
      gc.source,
    );
    const first = statement(30);
    const cancelled = statement(50, true);
    const second = statement(20);
    guard.watch(first);
    guard.watch(cancelled);
    guard.watch(second);
    gc.collect();
    expect([first.stopped.length, cancelled.stopped.length, second.stopped.length]).toEqual([1, 0, 0]);
    // The first let go of what it held, though it has not ended; then the second grows.
    used = 30;
    gc.collect();
    used = 80;
    gc.collect();
    expect(second.stopped).toHaveLength(1);
    expect(cancelled.stopped).toEqual([]);
  });

  it('listens only while statements run', () => {
    const gc = collections();
    const guard = new MemoryGuard(0.8, () => ({ used_heap_size: 0, heap_size_limit: 1 }), gc.source);
    expect(gc.listening()).toBe(false);
    const end = guard.watch(statement(1));
    expect(gc.listening()).toBe(true);
    end();
    expect(gc.listening()).toBe(false);
  });

  it("hears the process's own full collections", async () => {
    setFlagsFromString('--expose-gc');
    const collectGarbage = runInNewContext('gc') as () => void;
    const guard = new MemoryGuard(1e-9);
    let stopped = (_reason: SqlError) => {};
    const stop = new Promise<SqlError>((resolve) => {
      stopped = resolve;
    });
    const end = guard.watch({ rowsRead: () => 1, stop: (reason) => stopped(reason), stopping: () => false });
    try {
      collectGarbage();
      // (PerformanceObserver delivers its entries after the collection, asynchronously.)
      expect(await stop).toMatchObject({ sqlstate: '53200' });
    } finally {
      end();
    }
  });
});
