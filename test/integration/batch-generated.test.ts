/**
 * Property-style check of batch mode: random tables (NULLs, repeated rows,
 * awkward text, every numeric type) and random statements over them, sent
 * with the simple or the extended protocol, must answer exactly as the
 * per-row path does. The seed is fixed, so a failure names a statement that
 * fails again; SEED=… in the environment tries other ones.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSameBothWays } from '../support/differential.js';
import { binaryLogisticFixture, deployEndpoint } from '../support/endpoints.js';
import { startStack, type TestStack } from '../support/stack.js';

let stack: TestStack;
let db: pg.Client;
const seed = Number(process.env.SEED ?? 20261127);

function generator(start: number) {
  let state = start >>> 0;
  const random = () => {
    // mulberry32: small, well mixed, reproducible.
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const int = (low: number, high: number) => low + Math.floor(random() * (high - low + 1));
  return { random, pick, int };
}

const TEXTS = [
  'I loved this film',
  'terrible acting and a boring plot',
  'not bad at all',
  '',
  '   ',
  'it\'s "quoted", with commas',
  'tab\there and a\nline break',
  'back\\slash \\N and \\t',
  'naïve café ☃',
  '日本語のレビューです',
  'great 😀 value',
  'NULL',
  '$1',
  "'; SELECT 1; --",
  'a'.repeat(3000),
] as const;

const FLOATS = ['0', '-0', '1.5', '-2.25', '1e-300', '1.7976931348623157e308', "'NaN'", "'Infinity'", '0.1', '3.14159'];
const REALS = ['0', '-0', '1.5', '-2.25', '1e-30', '3.4e38', "'NaN'", "'-Infinity'", '0.1', '3.14159'];

const TABLES = ['g1', 'g2', 'g3'];

/** Model inputs drawn from a table's columns (twelve, as the endpoint's model takes). */
const FEATURES = [
  'a',
  'b',
  'c',
  'e',
  'r',
  'a * 2',
  'b + 1',
  'length(d)',
  'c::float8',
  'coalesce(a, 0)',
  'abs(b)',
  'e % 1000',
  '0.5',
  'NULL::float8',
];

beforeAll(async () => {
  stack = await startStack();
  await deployEndpoint(stack.pgsage.edge.url, 'xgb', binaryLogisticFixture().model);
  db = await stack.connect();
  await db.query('CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE');
  await db.query(`CREATE FUNCTION gscore(x float8, y int4) RETURNS float8 LANGUAGE sql
    AS $$ SELECT aws_sagemaker.invoke_endpoint('xgb', NULL, x, y, x * 2, y + 1, 0.5, x, y, x, y, x, y, x)::float8 $$`);
  const { random, pick, int } = generator(seed);
  for (const table of TABLES) {
    await db.query(
      `CREATE TABLE ${table} (id int PRIMARY KEY, a float8, b int4, c numeric, e int8, r real, d text, w text)`,
    );
    const nullRate = random() * 0.4;
    const value = (make: () => string) => (random() < nullRate ? 'NULL' : make());
    const rows: string[][] = [];
    for (let id = 1; id <= int(0, 70); id++) {
      if (rows.length > 0 && random() < 0.3) {
        // A repeated row: the same inputs must be scored once and answered for each row.
        rows.push([String(id), ...pick(rows).slice(1)]);
        continue;
      }
      rows.push([
        String(id),
        value(() => pick(FLOATS)),
        value(() => String(int(-50, 50))),
        value(() => `${int(-999, 999)}.${int(0, 999999)}`),
        value(() => String(int(-9, 9) * 1_000_000_007)),
        value(() => pick(REALS)),
        value(() => db.escapeLiteral(pick(TEXTS))),
        value(() => db.escapeLiteral(pick(TEXTS))),
      ]);
    }
    if (rows.length > 0)
      await db.query(`INSERT INTO ${table} VALUES ${rows.map((r) => `(${r.join(', ')})`).join(', ')}`);
  }
});

afterAll(async () => {
  await stack?.stop();
});

describe('generated tables and statements answer as the per-row path does', () => {
  const { random, pick, int } = generator(seed + 1);
  const statements: { sql: string; params: unknown[] }[] = [];
  for (let i = 0; i < 30; i++) {
    const table = pick(TABLES);
    const extended = random() < 0.5;
    const params: unknown[] = [];
    const param = (value: unknown) => {
      params.push(value);
      return `$${params.length}`;
    };
    // Built only if the shape picked uses it: a parameter the statement does not use fails the Bind.
    let endpointCall: string | undefined;
    const endpoint = () => {
      if (endpointCall) return endpointCall;
      const features = Array.from({ length: 12 }, () => pick(FEATURES)).map((feature) =>
        extended && random() < 0.15 ? `(${feature}) * ${param(pick([1, 2.5, -1]))}::float8` : feature,
      );
      const batch = pick([() => 'NULL', () => '1', () => '3', () => '7', () => (extended ? param(int(2, 9)) : '5')])();
      endpointCall = `aws_sagemaker.invoke_endpoint('xgb', ${batch}, ${features.join(', ')})::float8`;
      return endpointCall;
    };
    const sentiment = (column: string) => `aws_comprehend.detect_sentiment(${column}, 'en')`;
    const predicate = pick([
      () => 'true',
      () => 'id % 2 = 0',
      () => 'a IS NOT NULL',
      () => 'b > 0',
      () => (extended ? `d IS DISTINCT FROM ${param(pick(TEXTS))}` : "d LIKE '%a%'"),
      () => (extended ? `id > ${param(int(0, 30))}` : 'id > 10'),
      () => "w <> ''",
    ])();
    // (Thunks: only the shape picked may add parameters.)
    const sql = pick([
      () => `SELECT id, ${endpoint()} FROM ${table} WHERE ${predicate}`,
      () => `SELECT count(*) FROM ${table} WHERE ${predicate} AND ${endpoint()} > ${random().toFixed(2)}`,
      () => `SELECT b % 3 AS k, round(avg(${endpoint()})::numeric, 6) FROM ${table} WHERE ${predicate} GROUP BY 1`,
      () =>
        `SELECT id, (${sentiment('d')}).sentiment, round((${sentiment('d')}).confidence::numeric, 4) FROM ${table} WHERE ${predicate}`,
      () => `SELECT ${table}.id, s.sentiment FROM ${table}, ${sentiment(`${table}.w`)} s WHERE ${predicate}`,
      () =>
        `SELECT id, CASE WHEN ${endpoint()} > 0.5 THEN (${sentiment('w')}).sentiment ELSE 'low' END FROM ${table} WHERE ${predicate}`,
      () => `SELECT id FROM ${table} WHERE ${predicate} ORDER BY ${endpoint()} DESC, id LIMIT ${int(1, 20)}`,
      () =>
        `SELECT x.id, x.p FROM (SELECT id, ${endpoint()} AS p FROM ${table} WHERE ${predicate}) x WHERE x.p IS NOT NULL`,
      () =>
        `SELECT x.id, x.p FROM (SELECT id, b, ${endpoint()} AS p FROM ${table} WHERE ${predicate}) x WHERE x.b ${
          extended ? `> ${param(int(-5, 5))}` : '% 3 = 0'
        } AND x.id IS NOT NULL`,
      () =>
        `SELECT id, CASE WHEN b % 3 = 0 THEN 'skip' WHEN a IS NULL THEN (${sentiment('d')}).sentiment ELSE 'n' END FROM ${table} WHERE ${predicate}`,
      () =>
        `SELECT id, CASE b % 4 WHEN 1 THEN ${endpoint()} ELSE -1 END, ${endpoint()} FROM ${table} WHERE ${predicate} ORDER BY 1 LIMIT ${int(1, 20)}`,
      () => `SELECT id, gscore(${extended ? `a * ${param(pick([0.5, 3]))}` : 'a'}, b) FROM ${table} WHERE ${predicate}`,
    ])();
    statements.push({ sql, params });
  }
  for (const [i, { sql, params }] of statements.entries()) {
    it(`statement ${i + 1}${params.length ? ' (extended protocol)' : ''}`, async () => {
      const outcome = await expectSameBothWays(db, sql, { params });
      // Data errors (an input out of the model's range…) must match; others mean a malformed statement.
      if (outcome.error) expect(outcome.error.code, sql).toMatch(/^22/);
    });
  }

  it('ran in batch mode each function the per-row path had to call', () => {
    for (const name of ['aws_sagemaker.invoke_endpoint', 'aws_comprehend.detect_sentiment']) {
      const figures = stack.pgsage.statistics.snapshot().find((s) => s.function === name)?.figures;
      // (A seed whose tables or conditions leave no row to score needs no call either way.)
      if ((figures?.perRowCalls ?? 0) > 0) expect(figures?.rows, name).toBeGreaterThan(0);
    }
  });
});
