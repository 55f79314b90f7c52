/**
 * Hostile values as data through the gateway's rewriting and batch mode (and
 * the per-row path): quotes, dollar quotes, semicolons, comments, backslashes,
 * COPY's own escapes, unicode, NUL bytes, 100 arguments, huge arrays. Each
 * value must reach the model exactly as the user wrote it, and no statement
 * may be changed by it.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaryLogisticFixture, deployEndpoint } from '../support/endpoints.js';
import { type EdgeTap, rejection, standInComprehend, standInSentiment, tapEdge } from '../support/security.js';
import { startStack, type TestStack } from '../support/stack.js';

const fixture = binaryLogisticFixture();

/** Data an attacker controls. */
const HOSTILE: string[] = [
  "it's",
  "''",
  "'; DROP TABLE sentinel; --",
  "'); DELETE FROM sentinel; --",
  "x'||(SELECT current_user)||'",
  '$$',
  '$$; DROP TABLE sentinel; $$',
  '$tag$ inside $tag$',
  '$1',
  '$1::text; SELECT 1',
  'SELECT 1; SELECT 2;',
  '-- a comment',
  '/* an unterminated comment',
  'a /* b */ c',
  '*/ DROP TABLE sentinel; /*',
  '\\',
  '\\\\',
  "\\'; DROP TABLE sentinel; --",
  "E'\\x41'",
  '\\N',
  '\\.',
  'tab\there',
  'line one\nline two',
  'carriage\rreturn\r\n',
  'json "quotes" and \\"escapes\\"',
  'csv,commas,"and quotes"',
  '`backticks` and [brackets] {braces}',
  '%s %L %I %%',
  'héllo wörld — ¿qué?',
  '日本語のテキスト',
  '😀👍🏽 emoji',
  'مرحبا بالعالم',
  'e\u0301 combining, \u200b zero width, \u200d joiner',
  '\ufeffbyte order mark',
  '\u2028line separator\u2029',
  'bad news: it broke',
  "aws_sagemaker.invoke_endpoint('churn-xgb', NULL, 1, 2, 3)",
  "aws_comprehend.detect_sentiment('x', 'en')",
  'json_build_array(1, 2)',
  '{"op":"sagemaker.invoke_endpoint","endpoint":"churn-xgb","input":"[1]"}',
  'apg_enable_function_migration = off',
  `${'long text '.repeat(450)}end`,
];

/** The literal forms SQL offers for a string, each decoding to `value`. */
function literals(value: string): { form: string; sql: string }[] {
  const standard = `'${value.replace(/'/g, "''")}'`;
  const escaped = `E'${[...value]
    .map((c) => {
      if (c === "'") return "\\'";
      if (c === '\\') return '\\\\';
      if (c === '\n') return '\\n';
      if (c === '\r') return '\\r';
      if (c === '\t') return '\\t';
      return c;
    })
    .join('')}'`;
  let tag = 'v';
  while (value.includes(`$${tag}$`)) tag += 'v';
  const dollar = `$${tag}$${value}$${tag}$`;
  const unicode = `U&'${[...value]
    .map((c) => {
      const code = c.codePointAt(0)!;
      if (c === "'") return "''";
      if (c === '\\') return '\\\\';
      if (code < 0x80 && c !== '\n' && c !== '\r') return c;
      return code > 0xffff ? `\\+${code.toString(16).padStart(6, '0')}` : `\\${code.toString(16).padStart(4, '0')}`;
    })
    .join('')}'`;
  return [
    { form: 'standard', sql: standard },
    { form: 'E-string', sql: escaped },
    { form: 'dollar-quoted', sql: dollar },
    { form: 'unicode escapes', sql: unicode },
  ];
}

/** RFC 4180 rows and fields. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let fieldStarted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        field += c;
      }
      continue;
    }
    if (c === '"' && !fieldStarted) {
      quoted = true;
      fieldStarted = true;
    } else if (c === ',') {
      row.push(field);
      field = '';
      fieldStarted = false;
    } else if (c === '\n' || (c === '\r' && text[i + 1] === '\n')) {
      if (c === '\r') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      fieldStarted = false;
    } else {
      field += c;
      fieldStarted = true;
    }
  }
  if (fieldStarted || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

const sorted = (values: string[]) => [...values].sort();

let stack: TestStack;
let db: pg.Client;
let tap: EdgeTap;

async function sentinelIntact(): Promise<void> {
  const { rows } = await db.query('SELECT id FROM sentinel ORDER BY id');
  expect(rows.map((r) => r.id)).toEqual([1, 2, 3]);
}

async function bothModes(run: (mode: 'batch' | 'per-row') => Promise<void>): Promise<void> {
  await run('batch');
  await db.query('SET apg_enable_function_migration = false');
  try {
    await run('per-row');
  } finally {
    await db.query('RESET apg_enable_function_migration');
  }
}

beforeAll(async () => {
  stack = await startStack();
  await deployEndpoint(stack.pgsage.edge.url, 'churn-xgb', fixture.model);
  standInComprehend(stack.pgsage.edge);
  tap = tapEdge(stack.pgsage.edge);
  db = await stack.connect();
  await db.query('CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE');
  await db.query('CREATE TABLE sentinel (id int PRIMARY KEY); INSERT INTO sentinel VALUES (1), (2), (3)');
  await db.query('CREATE TABLE hostile (id int PRIMARY KEY, body text)');
  // Bound parameters: the values reach the table without any rewriting.
  for (const [i, value] of HOSTILE.entries()) await db.query('INSERT INTO hostile VALUES ($1, $2)', [i, value]);
});

afterAll(async () => {
  await stack?.stop();
});

describe('hostile text sent to Comprehend', () => {
  it('arrives unchanged from a table, in batch mode and per row', async () => {
    await bothModes(async (mode) => {
      tap.clear();
      const { rows } = await db.query(
        `SELECT h.id, s.sentiment, s.confidence FROM hostile h, aws_comprehend.detect_sentiment(h.body, 'en') s ORDER BY h.id`,
      );
      expect(rows, mode).toHaveLength(HOSTILE.length);
      for (const row of rows) {
        const expected = standInSentiment(HOSTILE[row.id]);
        expect({ mode, id: row.id, sentiment: row.sentiment }).toEqual({
          mode,
          id: row.id,
          sentiment: expected.sentiment,
        });
        expect(row.confidence).toBeCloseTo(expected.confidence, 5);
      }
      expect(sorted(tap.sentimentTexts()), mode).toEqual(sorted(HOSTILE));
    });
    await sentinelIntact();
  });

  it('arrives unchanged when written as a literal in the statement, in every literal form', async () => {
    const failures: string[] = [];
    await bothModes(async (mode) => {
      for (const value of HOSTILE) {
        for (const { form, sql } of literals(value)) {
          tap.clear();
          const statement = `SELECT s.sentiment, s.confidence FROM aws_comprehend.detect_sentiment(${sql}, 'en') s`;
          const result = await db.query(statement).catch((error: Error) => error);
          const texts = tap.sentimentTexts();
          if (result instanceof Error || texts.length !== 1 || texts[0] !== value) {
            failures.push(
              `${mode} ${form} ${JSON.stringify(value.slice(0, 60))}: ${result instanceof Error ? result.message : `model got ${JSON.stringify(texts)}`}`,
            );
            continue;
          }
          if (result.rows[0].sentiment !== standInSentiment(value).sentiment) failures.push(`${mode} ${form}: answer`);
        }
      }
    });
    expect(failures).toEqual([]);
    await sentinelIntact();
  });

  it('arrives unchanged as bound parameters (extended protocol), language code included', async () => {
    await bothModes(async (mode) => {
      for (const value of HOSTILE) {
        tap.clear();
        const { rows } = await db.query('SELECT (aws_comprehend.detect_sentiment($1, $2)).sentiment AS s', [
          value,
          'en',
        ]);
        expect(rows[0].s).toBe(standInSentiment(value).sentiment);
        expect(tap.sentimentTexts(), `${mode} ${JSON.stringify(value)}`).toEqual([value]);
      }
      tap.clear();
      const language = "en'; DROP TABLE sentinel; --";
      await db.query('SELECT (aws_comprehend.detect_sentiment($1, $2)).sentiment', ['fine', language]);
      const request = JSON.parse(tap.requests[0].body.toString()) as { LanguageCode: string };
      expect(request.LanguageCode, mode).toBe(language);
    });
    await sentinelIntact();
  });

  it('leaves NUL bytes to PostgreSQL, which refuses them in text as it always does', async () => {
    await bothModes(async (mode) => {
      tap.clear();
      const bound = await rejection(db.query('SELECT aws_comprehend.detect_sentiment($1, $2)', ['a\u0000b', 'en']));
      expect(bound.code, mode).toBe('22021');
      expect(bound.message).toBe('invalid byte sequence for encoding "UTF8": 0x00');
      const escaped = await rejection(db.query("SELECT aws_comprehend.detect_sentiment(E'a\\000b', 'en')"));
      expect(escaped.code, mode).toBe('22021');
      const built = await rejection(db.query("SELECT aws_comprehend.detect_sentiment('a' || chr(0), 'en')"));
      expect(built.code, mode).toBe('54000');
      expect(built.message).toBe('null character not permitted');
      expect(tap.requests, mode).toEqual([]);
    });
    // A NUL inside the query text itself ends the query string where PostgreSQL reads it, as without the gateway.
    const direct = await stack.direct();
    const viaDirect = await direct.query("SELECT 'before\u0000after' AS v").then(
      (r) => JSON.stringify(r.rows),
      (e: Error & { code?: string }) => e.code,
    );
    const viaGateway = await db.query("SELECT 'before\u0000after' AS v").then(
      (r) => JSON.stringify(r.rows),
      (e: Error & { code?: string }) => e.code,
    );
    expect(viaGateway).toBe(viaDirect);
    await sentinelIntact();
  });
});

describe('hostile values sent to a SageMaker endpoint', () => {
  it('arrive as the CSV fields of exactly those values, in batch mode and per row', async () => {
    await bothModes(async (mode) => {
      tap.clear();
      // The XGBoost model refuses text features: the statement fails after the values reached it.
      const error = await rejection(
        db.query(`SELECT aws_sagemaker.invoke_endpoint('churn-xgb', NULL, body) FROM hostile`),
      );
      expect(error.code, mode).toBe('38000');
      expect(error.message).toMatch(/could not convert/);
      const received = tap.invocations('churn-xgb').flatMap((body) => parseCsv(body).map((fields) => fields));
      expect(
        received.every((fields) => fields.length === 1),
        mode,
      ).toBe(true);
      const values = received.map((fields) => fields[0]);
      // (Batch mode sends refused rows again in smaller requests, to find the ones the model refuses.)
      if (mode === 'batch') expect(sorted([...new Set(values)])).toEqual(sorted([...new Set(HOSTILE)]));
      else expect(HOSTILE).toContain(values[0]);
    });
    for (const value of HOSTILE) {
      tap.clear();
      await rejection(
        db.query(`SELECT aws_sagemaker.invoke_endpoint('churn-xgb', NULL, $1::text, 1.5, NULL)`, [value]),
      );
      const invocations = tap.invocations('churn-xgb').map(parseCsv);
      expect(invocations.length).toBeGreaterThan(0);
      for (const body of invocations) expect(body).toEqual([[value, '1.5', '']]);
    }
    await sentinelIntact();
  });

  it('takes 100 model inputs (the most PostgreSQL allows) and keeps their order', async () => {
    const inputs = Array.from({ length: 100 }, (_, i) => (i % 7 === 0 ? `'${i}, with comma'` : `${i}.25`));
    const expected = Array.from({ length: 100 }, (_, i) => (i % 7 === 0 ? `${i}, with comma` : `${i}.25`));
    await bothModes(async (mode) => {
      tap.clear();
      const error = await rejection(
        db.query(
          `SELECT aws_sagemaker.invoke_endpoint('churn-xgb', NULL, ${inputs.join(', ')}) FROM sentinel WHERE id = 1`,
        ),
      );
      expect(error.message, mode).toMatch(/could not convert|has 12 features but the input has 100 columns/);
      // (Refused in batch mode, the row is called again per row, where the statement fails.)
      const invocations = tap.invocations('churn-xgb').map(parseCsv);
      expect(invocations.length, mode).toBeGreaterThan(0);
      for (const body of invocations) expect(body, mode).toEqual([expected]);
    });
  });

  it('flattens huge arrays into the row and scores arrays like separate arguments', async () => {
    await bothModes(async (mode) => {
      tap.clear();
      const error = await rejection(
        db.query(
          `SELECT aws_sagemaker.invoke_endpoint('churn-xgb', NULL, ARRAY(SELECT g::float8 / 4 FROM generate_series(1, 200000) g))`,
        ),
      );
      expect(error.message, mode).toMatch(/has 12 features but the input has 200000 columns/);
      const [body] = tap.invocations('churn-xgb');
      const fields = body.trim().split(',');
      expect(fields.length).toBe(200000);
      expect([fields[0], fields[199999]]).toEqual(['0.25', '50000']);

      const row = fixture.rows[0].map((v) => (v === null ? 'NULL' : String(v)));
      const separate = await db.query(
        `SELECT aws_sagemaker.invoke_endpoint('churn-xgb', NULL, ${row.join(', ')})::float8 AS p`,
      );
      const asArray = await db.query(
        `SELECT aws_sagemaker.invoke_endpoint('churn-xgb', NULL, ARRAY[${row.join(', ')}]::float8[])::float8 AS p`,
      );
      expect(asArray.rows[0].p, mode).toBe(separate.rows[0].p);
      expect(separate.rows[0].p).toBeCloseTo(fixture.predictions[0], 5);
    });
  });

  it('treats hostile endpoint names as names: nothing is reached but what is named', async () => {
    for (const name of [
      "churn-xgb'; DROP TABLE sentinel; --",
      'churn-xgb/../churn-xgb',
      '../_pgsage/health',
      'churn-xgb%2F..',
      'arn:aws:sagemaker:us-east-1:000000000000:endpoint/churn-xgb/../other',
    ]) {
      tap.clear();
      const error = await rejection(db.query('SELECT aws_sagemaker.invoke_endpoint($1, NULL, 1)', [name]));
      expect(['42704', '22023', '42501'], `${name}: ${error.message}`).toContain(error.code);
      expect(tap.requests.map((r) => r.operation)).not.toContain('InvokeEndpoint churn-xgb');
    }
    await sentinelIntact();
  });
});

describe('statements the gateway rewrites', () => {
  it('store hostile data byte for byte (what the gateway passes through is not altered)', async () => {
    await db.query('CREATE TABLE notes (id serial PRIMARY KEY, form text, body text)');
    const failures: string[] = [];
    for (const value of HOSTILE) {
      for (const { form, sql } of literals(value)) {
        // invoke_endpoint in the statement makes the gateway rewrite it; the data must survive.
        const inserted = await db
          .query(
            `INSERT INTO notes (form, body) SELECT '${form}', ${sql} WHERE aws_sagemaker.invoke_endpoint('churn-xgb', NULL, 1) IS NULL OR true RETURNING body`,
          )
          .then(
            (r) => r.rows[0]?.body as string,
            (e: Error) => `ERROR ${e.message}`,
          );
        if (inserted !== value)
          failures.push(`${form} ${JSON.stringify(value.slice(0, 70))} → ${JSON.stringify(inserted?.slice(0, 70))}`);
      }
    }
    expect(failures).toEqual([]);
    await sentinelIntact();
  });

  // Only function and DO bodies are rewritten as code; data that mentions invoke_endpoint(…) is not.
  it('store dollar-quoted data that mentions invoke_endpoint unchanged', async () => {
    const value = "see aws_sagemaker.invoke_endpoint('churn-xgb', NULL, a, b) in the docs";
    const { rows } = await db.query(`SELECT $doc$${value}$doc$ AS v`);
    expect(rows[0].v).toBe(value);
  });

  // The same for single-quoted data in CREATE statements other than functions (CREATE TABLE … AS).
  it('store data in CREATE … AS statements unchanged', async () => {
    const value = "see aws_sagemaker.invoke_endpoint('churn-xgb', NULL, a, b) in the docs";
    await db.query(`CREATE TABLE documentation AS SELECT '${value.replace(/'/g, "''")}'::text AS v`);
    const { rows } = await db.query('SELECT v FROM documentation');
    expect(rows[0].v).toBe(value);
  });
});
