import type pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSameBothWays } from '../support/differential.js';
import { binaryLogisticFixture, deployEndpoint } from '../support/endpoints.js';
import { startStack, type TestStack } from '../support/stack.js';

/**
 * `SELECT … WHERE <ML condition> … LIMIT n`: per row, PostgreSQL calls for rows until n pass; batch mode searches
 * the rows window by window (see SteppedLimit in src/batch/planner.ts).
 */
let stack: TestStack;
let db: pg.Client;
const fixture = binaryLogisticFixture();
const f = Array.from({ length: 12 }, (_, i) => `f${i + 1}`);
const SENTIMENT = 'aws_comprehend.detect_sentiment';
const ENDPOINT = 'aws_sagemaker.invoke_endpoint';
const MOOD = `(${SENTIMENT}(body, 'en')).sentiment`;
const ROWS = 3000;

function figures(fn: string): { rows: number; perRowCalls: number } {
  const entry = stack.pgsage.statistics.snapshot().find((s) => s.function === fn);
  return { rows: entry?.figures.rows ?? 0, perRowCalls: entry?.figures.perRowCalls ?? 0 };
}

/** Runs `sql` in batch mode: its rows, the inputs it scored and the calls it made per row. */
async function searched(sql: string, fn = SENTIMENT): Promise<{ rows: unknown[]; scored: number; perRow: number }> {
  const before = figures(fn);
  const { rows } = await db.query(sql);
  const after = figures(fn);
  return { rows, scored: after.rows - before.rows, perRow: after.perRowCalls - before.perRowCalls };
}

beforeAll(async () => {
  stack = await startStack();
  await deployEndpoint(stack.pgsage.edge.url, 'xgb', fixture.model);
  db = await stack.connect();
  await db.query('CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE');
  // One review in 40 is negative (each differently worded, so each is its own input); some texts NULL or blank.
  await db.query(`CREATE TABLE reviews (id int PRIMARY KEY, body text, stars int)`);
  await db.query(`INSERT INTO reviews
    SELECT g,
      CASE WHEN g % 97 = 0 THEN NULL WHEN g % 89 = 0 THEN '   '
           WHEN g % 40 = 0 THEN 'I hate it, awful and broken, number ' || g
           ELSE 'I love it, great product number ' || g END,
      g % 5
    FROM generate_series(1, ${ROWS}) g`);
  await db.query(`CREATE TABLE features (id int PRIMARY KEY, ${f.map((c) => `${c} float8`).join(', ')})`);
  const values = fixture.rows.map((row, i) => `(${i + 1}, ${row.map((v) => (v === null ? 'NULL' : v)).join(', ')})`);
  await db.query(`INSERT INTO features VALUES ${values.join(', ')}`);
});

afterAll(async () => {
  await stack?.stop();
});

describe('a LIMIT after an ML condition', () => {
  it('scores the first rows in the ORDER BY until the LIMIT has its rows, without per-row calls', async () => {
    for (const sql of [
      `SELECT id, body FROM reviews WHERE ${MOOD} = 'NEGATIVE' ORDER BY id DESC LIMIT 3`,
      `SELECT id FROM reviews WHERE ${MOOD} = 'NEGATIVE' AND id % 3 > 0 ORDER BY id LIMIT 4 OFFSET 2`,
      `SELECT id, (${SENTIMENT}(body, 'en')).confidence > 0.5 AS sure FROM reviews
        WHERE ${MOOD} = 'NEGATIVE' ORDER BY stars, id LIMIT 5`,
      `SELECT r.id, s.confidence > 0.5 FROM reviews r, ${SENTIMENT}(r.body, 'en') s
        WHERE s.sentiment = 'NEGATIVE' ORDER BY r.id DESC LIMIT 3`,
      // Ties in the ORDER BY: every match before the last row taken is taken (ten with key 0, then two of key 1).
      `SELECT id % 7 AS k FROM reviews WHERE ${MOOD} = 'NEGATIVE' ORDER BY id % 7 LIMIT 12`,
    ]) {
      await expectSameBothWays(db, sql);
      const { scored, perRow } = await searched(sql);
      expect(perRow, sql).toBe(0);
      // Before: every row of the table was scored.
      expect(scored, sql).toBeGreaterThan(0);
      expect(scored, sql).toBeLessThan(ROWS / 4);
    }
  });

  it('without an ORDER BY, scores the rows PostgreSQL reads first, in batches rather than one call each', async () => {
    const sql = `SELECT id FROM reviews WHERE ${MOOD} = 'NEGATIVE' LIMIT 5`;
    const { rows, scored, perRow } = await searched(sql);
    // (Any five negative reviews answer it: the rows per row gives depend on its plan.)
    expect(rows).toHaveLength(5);
    for (const { id } of rows as { id: number }[]) expect(id % 40).toBe(0);
    // Before: a per-row call for each of the first 200 rows.
    expect(perRow).toBe(0);
    expect(scored).toBeGreaterThanOrEqual(5);
    expect(scored).toBeLessThan(ROWS / 4);
    // A LIMIT the first rows answer costs what it costs per row, written as a number or bound as a parameter.
    const first = await searched(`SELECT id FROM reviews WHERE ${MOOD} = 'POSITIVE' LIMIT 1`);
    expect(first).toMatchObject({ rows: [{ id: 1 }], scored: 1, perRow: 0 });
    const before = figures(SENTIMENT);
    const bound = await db.query(`SELECT id FROM reviews WHERE ${MOOD} = $1 LIMIT $2`, ['POSITIVE', 1]);
    expect(bound.rows).toEqual([{ id: 1 }]);
    expect(figures(SENTIMENT).rows - before.rows).toBe(1);
  });

  it('grows its windows when matches are rare, and scores every row when the LIMIT is never reached', async () => {
    const rare = `SELECT id FROM reviews WHERE ${MOOD} = 'NEGATIVE' AND id % 7 = 0 ORDER BY id LIMIT 3`;
    await expectSameBothWays(db, rare);
    const found = await searched(rare);
    expect(found.perRow).toBe(0);
    // (Its matches are ids 280, 560 and 840: 120 of the 428 rows with id % 7 = 0 are needed.)
    expect(found.scored).toBeLessThan(300);

    const all = `SELECT count(*) OVER () AS n, id FROM reviews WHERE ${MOOD} = 'NEGATIVE' ORDER BY id LIMIT 1000`;
    await expectSameBothWays(db, all);
    const never = `SELECT id FROM reviews WHERE ${MOOD} = 'NEGATIVE' ORDER BY id LIMIT 1000`;
    await expectSameBothWays(db, never);
    expect((await searched(never)).perRow).toBe(0);
  });

  it('answers NULL and blank texts as the function does, without the service', async () => {
    for (const sql of [
      `SELECT id FROM reviews WHERE ${MOOD} IS NULL ORDER BY id LIMIT 4`,
      `SELECT id FROM reviews WHERE ${MOOD} IS DISTINCT FROM 'POSITIVE' ORDER BY id DESC LIMIT 6`,
      `SELECT id FROM reviews WHERE coalesce(${MOOD}, 'none') <> 'POSITIVE' ORDER BY id LIMIT 6`,
    ]) {
      await expectSameBothWays(db, sql);
      expect((await searched(sql)).perRow, sql).toBe(0);
    }
  });

  it('searches a LIMIT after a condition on a view’s or subquery’s ML column, as if written on the table', async () => {
    await db.query(`CREATE VIEW moods AS SELECT id, body, stars, ${MOOD} AS mood FROM reviews`);
    await db.query(`CREATE VIEW negatives AS SELECT id, body FROM reviews WHERE ${MOOD} = 'NEGATIVE'`);
    await db.query('CREATE VIEW moods_again AS SELECT id AS rid, mood FROM moods WHERE id > 1000');
    await db.query(
      `CREATE VIEW churn AS SELECT id, ${ENDPOINT}('xgb', NULL, ${f.join(', ')})::float8 AS p FROM features`,
    );
    // Both fields of the answer, as columns of their own or of the call in the FROM list (the guide's form).
    await db.query(
      `CREATE VIEW moods_both AS SELECT id, ${MOOD} AS mood, (${SENTIMENT}(body, 'en')).confidence FROM reviews`,
    );
    await db.query(
      `CREATE VIEW moods_from AS SELECT r.id, s.sentiment, s.confidence FROM reviews r, ${SENTIMENT}(r.body, 'en') s`,
    );
    // (Its own conditions, with the reader's, make one AND.)
    await db.query(`CREATE VIEW rated_moods AS SELECT id, ${MOOD} AS mood FROM reviews WHERE stars < 4 AND id > 5`);
    await db.query(`CREATE VIEW moods_joined AS SELECT r.id, s.sentiment FROM reviews r
      LEFT JOIN LATERAL ${SENTIMENT}(r.body, 'en') s ON true`);
    await db.query(`CREATE VIEW negatives_from AS SELECT r.id, s.confidence FROM reviews r,
      ${SENTIMENT}(r.body, 'en') s WHERE s.sentiment = 'NEGATIVE'`);
    const subquery = `(SELECT id AS rid, stars, ${MOOD} FROM reviews) AS q`;
    for (const [sql, fn] of [
      [`SELECT * FROM moods WHERE mood = 'NEGATIVE' ORDER BY id DESC LIMIT 3`, SENTIMENT],
      [`SELECT id, mood FROM moods WHERE mood = 'NEGATIVE' AND id > 100 LIMIT 4`, SENTIMENT],
      [
        `SELECT m.id AS n, lower(m.mood) FROM moods m WHERE m.mood <> 'POSITIVE' ORDER BY n LIMIT 5 OFFSET 1`,
        SENTIMENT,
      ],
      [`SELECT x, z FROM moods AS v(x, y, z) WHERE v.mood = 'NEGATIVE' ORDER BY z, x LIMIT 3`, SENTIMENT],
      [`SELECT * FROM negatives ORDER BY id DESC LIMIT 3`, SENTIMENT],
      [`SELECT rid FROM moods_again WHERE mood = 'NEGATIVE' ORDER BY rid LIMIT 3`, SENTIMENT],
      [
        `SELECT rid, sentiment FROM ${subquery} WHERE sentiment = 'NEGATIVE' ORDER BY stars, rid DESC LIMIT 3`,
        SENTIMENT,
      ],
      [`SELECT id, p FROM churn WHERE p > 0.5 ORDER BY id DESC LIMIT 3`, ENDPOINT],
      // (Per row, a view PostgreSQL does not flatten computes every row its conditions on plain columns keep.)
      [
        `SELECT id, confidence FROM moods_both WHERE mood = 'NEGATIVE' AND id > 2700 ORDER BY id DESC LIMIT 3`,
        SENTIMENT,
      ],
      [`SELECT * FROM moods_from WHERE sentiment = 'NEGATIVE' ORDER BY id LIMIT 3`, SENTIMENT],
      [`SELECT id, confidence FROM moods_from WHERE sentiment = 'NEGATIVE' LIMIT 3`, SENTIMENT],
      [`SELECT id FROM negatives_from ORDER BY id LIMIT 4`, SENTIMENT],
      [`SELECT id FROM rated_moods WHERE mood = 'NEGATIVE' AND id < 2900 ORDER BY id DESC LIMIT 3`, SENTIMENT],
      [`SELECT id FROM moods_joined WHERE sentiment = 'NEGATIVE' ORDER BY id DESC LIMIT 3`, SENTIMENT],
    ]) {
      await expectSameBothWays(db, sql);
      const { scored, perRow } = await searched(sql, fn);
      expect(perRow, sql).toBe(0);
      // Before: every row the view reads was scored.
      expect(scored, sql).toBeGreaterThan(0);
      expect(scored, sql).toBeLessThan((fn === ENDPOINT ? fixture.rows.length : ROWS) / 4);
    }
  });

  it('does not pull up what cannot be written on the table, and gives the same answers', async () => {
    // What cannot be written on the table gives the same answers, scoring every row as before: a bare name in the
    // ORDER BY that another output column has, constants there, a view column that can fail (which PostgreSQL
    // computes for every row it reads from the view).
    await db.query(`CREATE OR REPLACE VIEW moods AS SELECT id, body, stars, ${MOOD} AS mood FROM reviews`);
    await db.query(
      `CREATE VIEW moods_k AS SELECT id AS k, ${MOOD} AS mood, (100 / (id % 1500))::text AS ratio FROM reviews`,
    );
    // (A condition of the view's own that can fail: per row PostgreSQL evaluates it for every row too.)
    await db.query(`CREATE VIEW moods_ratio AS SELECT id, ${MOOD} AS mood FROM reviews WHERE 100 / (id % 1500) > 0`);
    for (const sql of [
      `SELECT -k AS id FROM moods_k WHERE mood = 'NEGATIVE' ORDER BY k LIMIT 3`,
      `SELECT -id AS id FROM moods WHERE mood = 'NEGATIVE' ORDER BY moods.id LIMIT 3`,
      `SELECT -id AS id, id AS k FROM moods WHERE mood = 'NEGATIVE' ORDER BY k LIMIT 3`,
      `SELECT id, 1 AS n FROM moods WHERE mood = 'NEGATIVE' ORDER BY n, id DESC LIMIT 3`,
      `SELECT id, true AS n FROM moods WHERE mood = 'NEGATIVE' ORDER BY n, id DESC LIMIT 3`,
      `SELECT id, 2 AS k FROM reviews WHERE ${MOOD} = 'NEGATIVE' ORDER BY 2, id DESC LIMIT 3`,
      `SELECT k FROM moods_k WHERE mood = 'NEGATIVE' ORDER BY k DESC LIMIT 3`,
      `SELECT m FROM moods m WHERE m.mood = 'NEGATIVE' ORDER BY m.id LIMIT 3`,
      `SELECT id FROM moods WHERE mood = 'NEGATIVE' AND id IN (SELECT id FROM reviews WHERE stars = 1) ORDER BY id LIMIT 3`,
      `SELECT id, mood FROM (SELECT DISTINCT id, mood FROM moods) d WHERE mood = 'NEGATIVE' ORDER BY id LIMIT 3`,
    ]) {
      await expectSameBothWays(db, sql);
      expect((await searched(sql)).perRow, sql).toBe(0);
    }
    // Fails as per row (a search would have answered from rows before the failing one).
    const failing = await expectSameBothWays(
      db,
      `SELECT id FROM moods_ratio WHERE mood <> 'POSITIVE' AND id > 1400 ORDER BY id LIMIT 1`,
    );
    expect(failing.error?.code).toBe('22012');
    // A constant LIMIT that computes nothing, or fails first: nothing scored, as on the table.
    for (const limit of ['LIMIT 0', 'LIMIT -1', 'LIMIT 5 OFFSET -2']) {
      const sql = `SELECT id FROM moods WHERE mood = 'NEGATIVE' ORDER BY id ${limit}`;
      await expectSameBothWays(db, sql);
      const before = figures(SENTIMENT).rows;
      await db.query(sql).catch(() => undefined);
      expect(figures(SENTIMENT).rows - before, sql).toBe(0);
    }
  });

  it('searches a model’s answers too', async () => {
    const score = `${ENDPOINT}('xgb', NULL, ${f.join(', ')})::float8`;
    const sql = `SELECT id FROM features WHERE ${score} > 0.5 ORDER BY id DESC LIMIT 3`;
    await expectSameBothWays(db, sql);
    expect((await searched(sql, ENDPOINT)).perRow).toBe(0);
  });

  it('sees the transaction’s own rows, and leaves the next statements their own answers', async () => {
    await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    try {
      await db.query(`UPDATE reviews SET body = 'Terrible, I hate it' WHERE id IN (2, 3)`);
      const sql = `SELECT id FROM reviews WHERE ${MOOD} = 'NEGATIVE' ORDER BY id LIMIT 3`;
      const { rows, perRow, scored } = await searched(sql);
      expect(rows).toEqual([{ id: 2 }, { id: 3 }, { id: 40 }]);
      expect(perRow).toBe(0);
      expect(scored).toBeLessThan(ROWS / 4);
      // A statement after a restricted one reads every row it should.
      const later = await db.query(`SELECT count(*)::int AS n FROM reviews WHERE ${MOOD} = 'NEGATIVE'`);
      expect(later.rows[0].n).toBe(ROWS / 40 + 2);
    } finally {
      await db.query('ROLLBACK');
    }
  });

  it('is not searched in a READ COMMITTED block, whose statements read other snapshots than its search', async () => {
    // (A row another session changes between them would have no answer, and be missed. Outside a block the
    // gateway runs the search and the statement in one REPEATABLE READ transaction of its own.)
    const sql = `SELECT id FROM reviews WHERE ${MOOD} = 'NEGATIVE' ORDER BY id LIMIT 3`;
    await db.query('BEGIN');
    try {
      const { rows, scored, perRow } = await searched(sql);
      expect(rows).toEqual([{ id: 40 }, { id: 80 }, { id: 120 }]);
      expect(perRow).toBe(0);
      expect(scored).toBeGreaterThan(ROWS / 2);
      // Without an ORDER BY the statement reads every row it reads per row: searched.
      const first = await searched(`SELECT id FROM reviews WHERE ${MOOD} = 'NEGATIVE' LIMIT 3`);
      expect(first.rows).toEqual([{ id: 40 }, { id: 80 }, { id: 120 }]);
      expect(first.scored).toBeLessThan(ROWS / 4);
    } finally {
      await db.query('ROLLBACK');
    }
    // After the gateway's own transaction, the session is as it was.
    expect((await db.query("SELECT current_setting('transaction_isolation') AS i")).rows).toEqual([
      { i: 'read committed' },
    ]);
  });

  it('searches statements sent with the extended protocol, parameters and prepared statements too', async () => {
    const ordered = `SELECT id FROM reviews WHERE ${MOOD} = $1 ORDER BY id DESC LIMIT $2`;
    const unordered = `SELECT id FROM reviews WHERE ${MOOD} = $1 AND id > $2 LIMIT 3`;
    await expectSameBothWays(db, ordered, { params: ['NEGATIVE', 3] });
    for (const [text, values] of [
      [ordered, ['NEGATIVE', 3]],
      [unordered, ['NEGATIVE', 100]],
    ] as const) {
      for (const name of [undefined, `searched_${values[1]}`, `searched_${values[1]}`]) {
        const before = figures(SENTIMENT);
        const { rows } = await db.query({ text, values: [...values], name });
        if (text === ordered) expect(rows, text).toEqual([{ id: 3000 }, { id: 2960 }, { id: 2920 }]);
        expect(rows, text).toHaveLength(3);
        for (const { id } of rows) expect(id % 40 === 0 && id > values[1], text).toBe(true);
        expect(figures(SENTIMENT).perRowCalls - before.perRowCalls, text).toBe(0);
        expect(figures(SENTIMENT).rows - before.rows, text).toBeLessThan(ROWS / 4);
      }
    }
    // The largest LIMIT after an OFFSET: its rows are counted as PostgreSQL counts them, not overflowing bigint
    // (which left the rows unscored, and the sorted statement called every row of the table one by one).
    const before = figures(SENTIMENT);
    const all = await db.query(`SELECT id FROM reviews WHERE ${MOOD} = $1 ORDER BY id LIMIT $2 OFFSET $3`, [
      'NEGATIVE',
      '9223372036854775807',
      70,
    ]);
    expect(all.rows).toEqual([{ id: 2840 }, { id: 2880 }, { id: 2920 }, { id: 2960 }, { id: 3000 }]);
    expect(figures(SENTIMENT).perRowCalls - before.perRowCalls).toBe(0);
  });

  it('searches an unsorted LIMIT that a driver describes before it binds it (postgres.js)', async () => {
    const sql = postgres(stack.gatewayUrl(), { max: 1, onnotice: () => {} });
    try {
      // (After another batched statement of the session, its answers ANALYZEd, the statement read per row made
      // its calls in the order of a hash join: 2,465 calls where per row makes 5, in a review.)
      await sql.unsafe(`SELECT id FROM reviews WHERE ${MOOD} = $1 ORDER BY id DESC LIMIT 3`, ['NEGATIVE']);
      for (let run = 0; run < 2; run++) {
        const before = figures(SENTIMENT);
        const rows = await sql.unsafe(`SELECT id FROM reviews WHERE ${MOOD} = $1 LIMIT 3`, ['NEGATIVE']);
        expect(rows.map((r) => r.id % 40)).toEqual([0, 0, 0]);
        expect(figures(SENTIMENT).perRowCalls - before.perRowCalls).toBe(0);
        expect(figures(SENTIMENT).rows - before.rows).toBeLessThan(ROWS / 4);
      }
    } finally {
      await sql.end();
    }
  });

  it('keeps what it kept before: CASE guards, read-only sessions, start times, errors before any call', async () => {
    await db.query(`CREATE TABLE long_reviews AS SELECT * FROM reviews;
      UPDATE long_reviews SET body = repeat('I love it. ', 1000) WHERE id = 5`);
    try {
      // A CASE spares the long text its call (it is not searched: the rows it spares would have no answer).
      const guarded = `SELECT id FROM long_reviews WHERE CASE WHEN length(body) < 5000 THEN ${MOOD} END = 'NEGATIVE'
        ORDER BY id LIMIT 3`;
      await expectSameBothWays(db, guarded);
      expect((await searched(guarded)).perRow).toBe(0);
    } finally {
      await db.query('DROP TABLE long_reviews');
    }
    // A read-only session cannot make the results tables in a block of the gateway's own: scored as before.
    const sql = `SELECT id FROM reviews WHERE ${MOOD} = 'NEGATIVE' ORDER BY id LIMIT 3`;
    await db.query('SET default_transaction_read_only = on');
    try {
      const readOnly = await searched(sql);
      expect(readOnly.rows).toEqual([{ id: 40 }, { id: 80 }, { id: 120 }]);
      expect(readOnly.perRow).toBe(0);
    } finally {
      await db.query('RESET default_transaction_read_only');
    }
    // Under a transaction_timeout the gateway opens no block of its own, whose time the search would count against.
    await db.query("SET transaction_timeout = '60s'");
    try {
      const timed = await searched(sql);
      expect(timed.rows).toEqual([{ id: 40 }, { id: 80 }, { id: 120 }]);
      expect(timed.scored).toBeGreaterThan(ROWS / 2);
    } finally {
      await db.query('RESET transaction_timeout');
    }
    // Reading the transaction's start, it is searched in the gateway's own REPEATABLE READ transaction.
    const recent = await searched(
      `SELECT id FROM reviews WHERE now() > '2000-01-01' AND ${MOOD} = 'NEGATIVE' ORDER BY id DESC LIMIT 3`,
    );
    expect(recent.rows).toEqual([{ id: 3000 }, { id: 2960 }, { id: 2920 }]);
    expect(recent.scored).toBeLessThan(ROWS / 4);
    // A negative LIMIT fails before any call, as per row.
    for (const [bad, code] of [
      [`SELECT id FROM reviews WHERE ${MOOD} = 'NEGATIVE' LIMIT -1`, '2201W'],
      [`${sql} OFFSET -1`, '2201X'],
    ]) {
      const before = figures(SENTIMENT);
      await expect(db.query(bad)).rejects.toMatchObject({ code });
      expect(figures(SENTIMENT).rows - before.rows, bad).toBe(0);
    }
    // Nothing of the search is left in the session.
    expect((await db.query("SELECT current_setting('aws_ml.batch_window', true) AS w")).rows).toEqual([{ w: '' }]);
  });

  it('runs under EXPLAIN ANALYZE, which shows the batches of every window', async () => {
    const sql = `SELECT id FROM reviews WHERE ${MOOD} = 'NEGATIVE' ORDER BY id DESC LIMIT 2`;
    const before = figures(SENTIMENT);
    const { rows } = await db.query({ text: `EXPLAIN (ANALYZE, COSTS false) ${sql}`, rowMode: 'array' });
    const scored = figures(SENTIMENT).rows - before.rows;
    const batches = Number(/Batch Processing: num batches=(\d+)/.exec(rows.map((r) => r[0]).join('\n'))?.[1]);
    // (Each window's last batch may be short.)
    expect(batches).toBeGreaterThanOrEqual(Math.ceil(scored / 25));
    expect(batches).toBeLessThanOrEqual(Math.ceil(scored / 25) + 3);
    expect(scored).toBeLessThan(ROWS / 4);
  });
});
