import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryGuard } from '../../src/batch/memory-guard.js';
import type { SqlError } from '../../src/util/errors.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** A statement that has read `rows` rows and records why it was stopped. */
function statement(rows: number) {
  const stopped: SqlError[] = [];
  return { rowsRead: () => rows, stop: (reason: SqlError) => stopped.push(reason), stopped };
}

describe('MemoryGuard', () => {
  it('stops the statement that read the most rows once the heap is past its share, one at a time', () => {
    let used = 40;
    const guard = new MemoryGuard(0.5, () => ({ used_heap_size: used * 2 ** 20, heap_size_limit: 100 * 2 ** 20 }));
    const small = statement(10);
    const large = statement(20);
    guard.watch(small);
    const endLarge = guard.watch(large);
    vi.advanceTimersByTime(500);
    expect([small.stopped, large.stopped]).toEqual([[], []]);
    used = 60;
    vi.advanceTimersByTime(100);
    expect(small.stopped).toEqual([]);
    expect(large.stopped).toHaveLength(1);
    expect(large.stopped[0]).toMatchObject({ sqlstate: '53200' });
    expect(large.stopped[0].message).toBe("out of memory: the gateway's heap holds 60 MB of its 100 MB");
    // Its memory is not freed before it ends: nothing else is stopped meanwhile.
    vi.advanceTimersByTime(1000);
    expect(small.stopped).toEqual([]);
    expect(large.stopped).toHaveLength(1);
    // Ended, and the heap still past the mark: the next one goes.
    endLarge();
    vi.advanceTimersByTime(100);
    expect(small.stopped).toHaveLength(1);
  });

  it('looks at the heap only while statements run', () => {
    const heap = vi.fn(() => ({ used_heap_size: 0, heap_size_limit: 1 }));
    const guard = new MemoryGuard(0.8, heap);
    vi.advanceTimersByTime(1000);
    expect(heap).not.toHaveBeenCalled();
    const end = guard.watch(statement(1));
    vi.advanceTimersByTime(300);
    expect(heap).toHaveBeenCalledTimes(3);
    end();
    vi.advanceTimersByTime(1000);
    expect(heap).toHaveBeenCalledTimes(3);
  });
});
