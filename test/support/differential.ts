import type pg from 'pg';
import { expect } from 'vitest';

export interface Outcome {
  rows?: unknown[][];
  error?: { code: string; message: string };
}

/** Runs one statement and captures rows (as arrays) or the error. */
export async function outcome(client: pg.Client, sql: string, params: unknown[] = []): Promise<Outcome> {
  try {
    const result = await client.query({ text: sql, values: params, rowMode: 'array' });
    return { rows: result.rows as unknown[][] };
  } catch (error) {
    const e = error as { code: string; message: string };
    return { error: { code: e.code, message: e.message } };
  }
}

function canonical(rows: unknown[][], ordered: boolean): string[] {
  const lines = rows.map((r) => JSON.stringify(r, (_, v) => (typeof v === 'number' ? Number(v.toPrecision(10)) : v)));
  return ordered ? lines : lines.sort();
}

/**
 * Runs a statement with batch mode on and off (the per-row path) in the same
 * session and expects the same answer: rows (order-insensitive unless the SQL
 * orders them) or the same error.
 */
export async function expectSameBothWays(
  client: pg.Client,
  sql: string,
  options: { params?: unknown[]; ordered?: boolean; setup?: string } = {},
): Promise<Outcome> {
  const ordered = options.ordered ?? /order\s+by/i.test(sql);
  await client.query('SET apg_enable_function_migration = on');
  if (options.setup) await client.query(options.setup);
  const batched = await outcome(client, sql, options.params);
  await client.query('SET apg_enable_function_migration = off');
  if (options.setup) await client.query(options.setup);
  const perRow = await outcome(client, sql, options.params);
  await client.query('RESET apg_enable_function_migration');
  if (perRow.error || batched.error) {
    // Same SQLSTATE; batch mode's message adds which function and batch failed.
    expect(batched.error?.code, `${sql}\nper-row: ${JSON.stringify(perRow.error)}`).toBe(perRow.error?.code);
    expect(batched.error?.message).toContain(perRow.error?.message);
  } else {
    expect(canonical(batched.rows!, ordered), sql).toEqual(canonical(perRow.rows!, ordered));
  }
  return batched;
}
