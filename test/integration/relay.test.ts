import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { psql, run, waitFor } from '../support/processes.js';
import { RawSession, raw } from '../support/raw-protocol.js';
import { startStack, type TestStack } from '../support/stack.js';

let stack: TestStack;

beforeAll(async () => {
  stack = await startStack();
});

afterAll(async () => {
  await stack?.stop();
});

describe('gateway relay', () => {
  it('serves psql: meta-commands, extension install, COPY both ways', async () => {
    const url = stack.gatewayUrl();
    const result = await psql(
      url,
      [
        'CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE;',
        '\\dx',
        '\\dn',
        '\\df aws_comprehend.*',
        'CREATE TABLE items (id int, name text);',
        'COPY items FROM STDIN;',
        '1\talpha',
        '2\tbeta',
        '\\.',
        "SELECT count(*), string_agg(name, ',' ORDER BY id) FROM items;",
        'COPY (SELECT id, name FROM items ORDER BY id) TO STDOUT WITH (FORMAT csv);',
      ].join('\n'),
    );
    expect(result.stderr).not.toMatch(/ERROR/);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^aws_ml\|1\.4\|/m);
    expect(result.stdout).toMatch(/^dblink\|/m);
    expect(result.stdout).toMatch(/^aws_comprehend\|postgres$/m);
    expect(result.stdout).toMatch(/^aws_sagemaker\|postgres$/m);
    expect(result.stdout).toMatch(/^aws_comprehend\|detect_sentiment\|record\|input_text character varying/m);
    expect(result.stdout).toContain('2|alpha,beta');
    expect(result.stdout).toContain('1,alpha\n2,beta');
  });

  it('serves node-postgres with the extended protocol and parameters', async () => {
    const client = await stack.connect();
    const sum = await client.query('SELECT $1::int + $2::int AS sum', [20, 22]);
    expect(sum.rows[0].sum).toBe(42);
    const named = { name: 'lookup', text: 'SELECT $1::text || $2::text AS joined', values: ['a', 'b'] };
    expect((await client.query(named)).rows[0].joined).toBe('ab');
    expect((await client.query({ ...named, values: ['c', 'd'] })).rows[0].joined).toBe('cd');
    await expect(client.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
    expect((await client.query('SELECT 1 AS ok')).rows[0].ok).toBe(1);
  });

  it('serves postgres.js, including pipelined queries', async () => {
    const sql = postgres(stack.gatewayUrl(), { max: 1, onnotice: () => {} });
    try {
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => sql`SELECT ${i}::int AS n`));
      expect(results.map((r) => r[0].n)).toEqual(Array.from({ length: 20 }, (_, i) => i));
      const [row] = await sql`SELECT ${'x'}::text || ${'y'}::text AS v`;
      expect(row.v).toBe('xy');
    } finally {
      await sql.end();
    }
  });

  it('relays notices and errors unchanged', async () => {
    const client = await stack.connect();
    const notices: string[] = [];
    client.on('notice', (notice) => notices.push(notice.message ?? ''));
    await client.query("DO $$ BEGIN RAISE NOTICE 'hello from %', 'plpgsql'; END $$");
    expect(notices).toContain('hello from plpgsql');
    await expect(client.query('SELECT * FROM no_such_table')).rejects.toMatchObject({
      code: '42P01',
      message: 'relation "no_such_table" does not exist',
    });
  });

  it('forwards CancelRequest to the backend running the statement', async () => {
    const sql = postgres(stack.gatewayUrl(), { max: 1 });
    const observer = await stack.direct();
    try {
      const sleeping = sql`SELECT pg_sleep(30)`.execute();
      await waitFor('the sleep to start', async () => {
        const { rowCount } = await observer.query(
          "SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'",
        );
        return rowCount ? true : undefined;
      });
      const started = Date.now();
      sleeping.cancel();
      await expect(sleeping).rejects.toMatchObject({ code: '57014' });
      expect(Date.now() - started).toBeLessThan(5000);
      const [after] = await sql`SELECT 'usable' AS state`;
      expect(after.state).toBe('usable');
    } finally {
      await sql.end();
    }
  });

  it('closes a CancelRequest connection only once PostgreSQL has it, as PostgreSQL does (libpq waits for that)', async () => {
    const client = await stack.connect();
    const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
    /**
     * Sends a CancelRequest for the client's session and resolves when the gateway closes that connection;
     * `halfClose` ends the client's side with the request (shutdown after send), as some clients do.
     */
    const cancelAndWait = (halfClose: boolean) =>
      new Promise<void>((resolve, reject) => {
        const packet = Buffer.alloc(16);
        packet.writeInt32BE(16, 0);
        packet.writeInt32BE(80877102, 4);
        packet.writeInt32BE(processID, 8);
        packet.writeInt32BE(secretKey, 12);
        const socket = net.connect(stack.pgsage.gateway.port, '127.0.0.1', () =>
          halfClose ? socket.end(packet) : socket.write(packet),
        );
        socket.on('close', () => resolve());
        socket.on('error', reject);
      });
    try {
      // A statement that has finished: the cancel comes too late for it, and must not land on the next one.
      for (let i = 0; i < 20; i++) {
        await client.query('SELECT 1');
        await cancelAndWait(i % 2 === 1);
        expect((await client.query('SELECT pg_sleep(0.05), 2 AS two')).rows[0].two).toBe(2);
      }
    } finally {
      await client.end();
    }
  });

  it('lets clients that ask for protocol 3.2 connect', async () => {
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const socket = net.connect(stack.pgsage.gateway.port, '127.0.0.1');
      const params = Buffer.from(`user\0postgres\0database\0${stack.database}\0\0`);
      const packet = Buffer.alloc(8 + params.length);
      packet.writeInt32BE(packet.length, 0);
      packet.writeInt32BE(196610, 4);
      params.copy(packet, 8);
      socket.on('connect', () => socket.write(packet));
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data);
      });
      socket.on('error', reject);
    });
    expect(String.fromCharCode(reply[0])).toBe('R'); // an authentication request, not an error
  });

  it('keeps the bytes of a non-UTF8 client: its ML statements are never re-encoded', async () => {
    const folder = mkdtempSync(path.join(tmpdir(), 'pgsage-latin1-'));
    try {
      const file = path.join(folder, 'latin1.sql');
      const latin1 = (text: string) => Buffer.from(text, 'latin1');
      writeFileSync(
        file,
        latin1(
          [
            'CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE;',
            // Needs no rewrite: goes to PostgreSQL as it came, é and all (per-row path).
            "SELECT 'caf\u00e9' = U&'caf\\00E9' AS exact, (aws_comprehend.detect_sentiment('tr\u00e8s bien, I loved it', 'en')).sentiment;",
            // Would need a rewrite the gateway cannot make faithfully: refused, not corrupted.
            "SELECT 'caf\u00e9' AS x, aws_sagemaker.invoke_endpoint('no-such-endpoint', NULL, 1);",
            // ASCII reads the same in any encoding: rewritten as usual (the endpoint is unknown).
            "SELECT aws_sagemaker.invoke_endpoint('no-such-endpoint', NULL, 1);",
          ].join('\n'),
        ),
      );
      const result = await run('psql', [stack.gatewayUrl(), '-X', '-q', '-At', '-f', file], {
        env: { PGCLIENTENCODING: 'LATIN1' },
      });
      expect(result.stdout.trim()).toBe('t|POSITIVE');
      expect(result.stderr).toMatch(
        /pgsage cannot rewrite a statement with non-ASCII text while client_encoding is LATIN1/,
      );
      expect(result.stderr).toMatch(/HINT:\s+SET client_encoding = 'UTF8'/);
      expect(result.stderr).toMatch(/no-such-endpoint/);
      expect(result.stderr).not.toMatch(/function aws_sagemaker.invoke_endpoint\(unknown/);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('tells the client of settings its statement changed back, and reads ASCII Parse text in any encoding', async () => {
    const session = new RawSession(await stack.connect());
    await session.query('CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE');
    await session.query("SET client_encoding = 'LATIN1'");
    // The batch statement fails, so the gateway rolls the string back, SET included.
    const failed = await session.query(
      "SET DateStyle = 'German'; SELECT aws_sagemaker.invoke_endpoint('no-such-endpoint', NULL, 1)",
    );
    expect(failed.errors.map((e) => e.code)).toEqual(['42704']);
    expect(failed.parameters).toEqual(['DateStyle=German, DMY', 'DateStyle=ISO, MDY']);
    // A string that changes client_encoding goes to PostgreSQL whole (it reads the string under the encoding
    // it had before), which reports nothing of a SET the failure rolled back.
    const whole = await session.query(
      "SET client_encoding = 'UTF8'; SELECT aws_sagemaker.invoke_endpoint('no-such-endpoint', NULL, 1)",
    );
    expect(whole.errors.map((e) => e.code)).toEqual(['42704']);
    expect(whole.parameters).toEqual([]);
    // Parameter types whose OIDs have bytes above 0x7f (701 is float8) are not text: the call is rewritten.
    const typed = await session.round([
      raw.parse('', "SELECT aws_sagemaker.invoke_endpoint('no-such-endpoint', NULL, $1, $2)", [701, 701]),
      raw.bind('', ['1.5', '2']),
      raw.execute(),
      raw.sync(),
    ]);
    expect(typed.errors.map((e) => e.code)).toEqual(['42704']);
  });

  it('feeds COPY FROM STDIN sent after an ML statement, in the same string or pipelined behind it', async () => {
    const session = new RawSession(await stack.connect());
    await session.query('CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE');
    await session.query(
      "CREATE TABLE copy_docs AS SELECT g AS id, 'doc ' || g AS txt FROM generate_series(1, 10) g; CREATE TABLE copy_sink (v int)",
    );
    const copyData = raw.copyData('1\n');
    const copyDone = raw.copyDone();
    const mood = "SELECT (aws_comprehend.detect_sentiment(txt, 'en')).sentiment FROM copy_docs";
    const oneString = await session.round([
      raw.query(`CREATE TABLE copy_a AS ${mood}; COPY copy_sink FROM STDIN`),
      copyData,
      copyDone,
    ]);
    expect(oneString.errors).toEqual([]);
    // A CREATE TABLE AS leaves work for after it (putting parallel planning back): COPY data still flows.
    const pipelined = await session.round(
      [raw.query(`CREATE TABLE copy_b AS ${mood}`), raw.query('COPY copy_sink FROM STDIN'), copyData, copyDone],
      2,
    );
    expect(pipelined.errors).toEqual([]);
    const rows = await session.query('SELECT count(*) FROM copy_sink');
    expect(rows.results[0]).toEqual([['2']]);
  });

  it('keeps count of ReadyForQuery through a COPY FROM STDIN sent with the extended protocol', async () => {
    const session = new RawSession(await stack.connect());
    await session.query('CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE');
    await session.query('CREATE TABLE IF NOT EXISTS copy_sink (v int)');
    // As libpq sends it: the group's Sync arrives during the copy (PostgreSQL ignores it), another follows CopyDone.
    const copied = await session.round([
      raw.parse('', 'COPY copy_sink FROM STDIN'),
      raw.bind('', []),
      raw.execute(),
      raw.sync(),
      raw.copyData('7\n'),
      raw.copyDone(),
      raw.sync(),
    ]);
    expect(copied.errors).toEqual([]);
    // The gateway waits for the backend to be idle before an ML statement: it must know it is.
    const scored = await session.query("SELECT (aws_comprehend.detect_sentiment('I loved it', 'en')).sentiment");
    expect(scored.results[0]).toEqual([['POSITIVE']]);
    // The same copy in a group with an ML statement, whose work after the group waits for that ReadyForQuery.
    const mixed = await session.round([
      raw.parse('', "SELECT (aws_comprehend.detect_sentiment($1, 'en')).sentiment"),
      raw.bind('', ['I loved it']),
      raw.execute(),
      raw.parse('', 'COPY copy_sink FROM STDIN'),
      raw.bind('', []),
      raw.execute(),
      raw.sync(),
      raw.copyData('8\n'),
      raw.copyDone(),
      raw.sync(),
    ]);
    expect(mixed.errors).toEqual([]);
    expect(mixed.results[0]).toEqual([['POSITIVE']]);
    expect((await session.query('SELECT count(*) FROM copy_sink WHERE v IN (7, 8)')).results[0]).toEqual([['2']]);
  });

  it('answers a Query with ML calls pipelined into an extended COPY FROM STDIN as PostgreSQL does', async () => {
    // Sent in one write, before CopyInResponse: PostgreSQL reads the Query as bad COPY input and ends the session.
    const pipelined = [
      raw.parse('', 'COPY copy_pipe FROM STDIN'),
      raw.bind('', []),
      raw.execute(),
      raw.sync(),
      raw.query("SELECT (aws_comprehend.detect_sentiment('I loved it', 'en')).sentiment"),
      raw.copyData('9\n'),
      raw.copyDone(),
      raw.sync(),
    ];
    const answers = [];
    for (const client of [await stack.direct(), await stack.connect()]) {
      client.on('error', () => {});
      const session = new RawSession(client);
      await session.query(
        'CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE; CREATE TABLE IF NOT EXISTS copy_pipe (v int)',
      );
      answers.push(await session.round(pipelined, 0, (answer) => answer.errors.length === 2));
    }
    expect(answers[0].errors.map((e) => e.message)).toEqual([
      'unexpected message type 0x51 during COPY from stdin',
      'terminating connection because protocol synchronization was lost',
    ]);
    expect(answers[1]).toEqual(answers[0]);
    const client = await stack.connect();
    expect((await client.query('SELECT count(*)::int AS n FROM copy_pipe')).rows[0].n).toBe(0);
  });

  it('answers SSLRequest with N so sslmode=require fails clearly and sslmode=prefer works', async () => {
    const prefer = await psql(`${stack.gatewayUrl()}?sslmode=prefer`, 'SELECT 1;');
    expect(prefer.stdout.trim()).toBe('1');
    const require = await psql(`${stack.gatewayUrl()}?sslmode=require`, 'SELECT 1;');
    expect(require.status).not.toBe(0);
    expect(require.stderr).toMatch(/server does not support SSL/);
  });

  it('passes pgbench in simple, extended and prepared modes without failed transactions', async () => {
    const url = new URL(stack.gatewayUrl());
    const base = ['-h', '127.0.0.1', '-p', url.port, '-U', 'postgres', stack.database];
    const env = { PGPASSWORD: 'postgres' };
    const init = await run('pgbench', ['-i', '-s', '1', '-q', ...base], { env });
    expect(init.status).toBe(0);
    for (const mode of ['simple', 'extended', 'prepared']) {
      const bench = await run('pgbench', ['-M', mode, '-c', '4', '-j', '2', '-t', '200', ...base], { env });
      expect(bench.status, bench.stderr).toBe(0);
      expect(bench.stdout).toMatch(/number of failed transactions: 0 /);
      expect(bench.stdout).toMatch(/number of transactions actually processed: 800\/800/);
    }
  });
});

describe('gateway under bad input and faults', () => {
  it('closes a connection that sends garbage and keeps serving others', async () => {
    const answer = await new Promise<string>((resolve) => {
      const socket = net.connect(stack.pgsage.gateway.port, '127.0.0.1', () => {
        socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      });
      let data = '';
      socket.on('data', (chunk) => {
        data += chunk.toString('latin1');
      });
      socket.on('close', () => resolve(data));
      socket.on('error', () => {});
    });
    expect(answer).toContain('invalid startup packet length');
    const client = await stack.connect();
    expect((await client.query('SELECT 2 AS n')).rows[0].n).toBe(2);
  });

  it('ends a session whose client sends a malformed message after startup', async () => {
    const client = await stack.connect();
    const socket = (client as unknown as { connection: { stream: net.Socket } }).connection.stream;
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(Buffer.from([0x51, 0xff, 0xff, 0xff, 0xff])); // Query with a negative length
    await closed;
    const other = await stack.connect();
    expect((await other.query('SELECT 3 AS n')).rows[0].n).toBe(3);
  });

  it('terminates the backend of a client that disconnects mid-statement', async () => {
    const observer = await stack.direct();
    const client = await stack.connect();
    const socket = (client as unknown as { connection: { stream: net.Socket } }).connection.stream;
    const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    client.query('SELECT pg_sleep(60)').catch(() => {});
    await waitFor('the statement to run', async () => {
      const { rows } = await observer.query('SELECT state FROM pg_stat_activity WHERE pid = $1', [pid]);
      return rows[0]?.state === 'active' ? true : undefined;
    });
    socket.destroy();
    await waitFor('the backend to go away', async () => {
      const { rowCount } = await observer.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]);
      return rowCount === 0 ? true : undefined;
    });
  });

  it('lets PostgreSQL finish and keep a statement its client sent before Terminate', async () => {
    const observer = await stack.direct();
    await observer.query(
      'CREATE TABLE left_behind (id int, done bool DEFAULT false); INSERT INTO left_behind VALUES (1)',
    );
    const client = await stack.connect();
    const socket = (client as unknown as { connection: { stream: net.Socket } }).connection.stream;
    // libpq's PQsendQuery, then PQfinish: the statement, Terminate, and the end of the connection. PostgreSQL runs
    // what came before the Terminate and commits it; the gateway cancelled it as it saw the client go.
    socket.write(
      Buffer.concat([
        raw.query('UPDATE left_behind SET done = true FROM (SELECT pg_sleep(0.5)) s'),
        Buffer.from([0x58, 0, 0, 0, 4]),
      ]),
    );
    socket.end();
    await waitFor('the UPDATE to commit', async () => {
      const { rows } = await observer.query('SELECT done FROM left_behind');
      return rows[0].done ? true : undefined;
    });
  });

  it('reports a backend that goes away to its client and keeps serving others', async () => {
    const victim = await stack.connect();
    victim.on('error', () => {});
    const pid = (await victim.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    const admin = await stack.direct();
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    await expect(victim.query('SELECT 1')).rejects.toThrow();
    const other = await stack.connect();
    expect((await other.query('SELECT 4 AS n')).rows[0].n).toBe(4);
  });
});
