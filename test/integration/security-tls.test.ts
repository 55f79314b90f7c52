/**
 * TLS on the gateway and the edge, with certificates made by openssl for the
 * test: psql with sslmode=verify-full, node-postgres, the AWS SDK and CLI over
 * HTTPS, the gateway's own (pinned) HTTPS calls to the edge, and a gateway that
 * refuses plain-text sessions.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { sdkConfig } from '../support/edge.js';
import { binaryLogisticFixture, deployEndpoint } from '../support/endpoints.js';
import { psql, waitFor } from '../support/processes.js';
import { startStack, type TestStack } from '../support/stack.js';

const fixture = binaryLogisticFixture();
const features = Array.from({ length: 12 }, (_, i) => `f${i + 1}`);

interface Certificates {
  dir: string;
  ca: string;
  cert: string;
  key: string;
  /** A second CA that signed nothing pgsage presents. */
  otherCa: string;
}

/** A CA and a server certificate for localhost/127.0.0.1 signed by it, made with openssl. */
function makeCertificates(): Certificates {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgsage-tls-'));
  const at = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=pgsage test CA');
  openssl('req', '-x509', ...ec, '-keyout', 'other.key', '-out', 'other.crt', '-days', '2', '-subj', '/CN=other CA');
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(
    at('server.ext'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n',
  );
  openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.crt',
    '-days',
    '2',
    '-extfile',
    'server.ext',
  );
  return { dir, ca: at('ca.crt'), cert: at('server.crt'), key: at('server.key'), otherCa: at('other.crt') };
}

let certs: Certificates;

beforeAll(() => {
  certs = makeCertificates();
});

afterAll(() => {
  if (certs) rmSync(certs.dir, { recursive: true, force: true });
});

function gatewayUrl(stack: TestStack, host: string, params: string): string {
  const server = inject('postgres');
  return `postgresql://${server.user}:${server.password}@${host}:${stack.pgsage.gateway.port}/${stack.database}?${params}`;
}

describe('a gateway and an edge with a certificate', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startStack({ tls: { cert: certs.cert, key: certs.key } });
    // The edge speaks HTTPS: clients trust the test CA.
    await deployEndpoint(
      {
        ...sdkConfig(stack.pgsage.edge),
        requestHandler: new NodeHttpHandler({ httpsAgent: new https.Agent({ ca: readFileSync(certs.ca) }) }),
      },
      'churn-xgb',
      fixture.model,
    );
    expect(stack.pgsage.edge.url).toMatch(/^https:\/\//);
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('serves psql with sslmode=verify-full, by name and by address, and ML calls over it', async () => {
    const sql = [
      '\\conninfo',
      'CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE;',
      `CREATE TABLE events (id int, ${features.map((f) => `${f} float8`).join(', ')});`,
      `INSERT INTO events VALUES ${fixture.rows
        .slice(0, 5)
        .map((row, i) => `(${i + 1}, ${row.map((v) => (v === null ? 'NULL' : v)).join(', ')})`)
        .join(', ')};`,
      `SELECT round(aws_sagemaker.invoke_endpoint('churn-xgb', NULL, ${features.join(', ')})::numeric, 5) FROM events ORDER BY id;`,
      'SET apg_enable_function_migration = false;',
      `SELECT round(aws_sagemaker.invoke_endpoint('churn-xgb', NULL, ${features.join(', ')})::numeric, 5) FROM events WHERE id = 1;`,
    ].join('\n');
    const byName = await psql(gatewayUrl(stack, 'localhost', `sslmode=verify-full&sslrootcert=${certs.ca}`), sql);
    expect(byName.stderr).not.toMatch(/ERROR|FATAL/);
    expect(byName.status).toBe(0);
    expect(byName.stdout).toMatch(/SSL connection \(protocol: TLSv1\.[23]/);
    const values = byName.stdout.trim().split('\n').slice(-6).map(Number);
    const expected = fixture.predictions.slice(0, 5).map((p) => Number(p.toFixed(5)));
    expect(values).toEqual([...expected, expected[0]]);

    const byAddress = await psql(
      gatewayUrl(stack, '127.0.0.1', `sslmode=verify-full&sslrootcert=${certs.ca}`),
      "SELECT 'over tls';",
    );
    expect(byAddress.stdout.trim()).toBe('over tls');
  });

  it('is refused by verify-full clients that do not trust its CA, and still serves plain text without require', async () => {
    const untrusted = await psql(
      gatewayUrl(stack, 'localhost', `sslmode=verify-full&sslrootcert=${certs.otherCa}`),
      'SELECT 1;',
    );
    expect(untrusted.status).not.toBe(0);
    expect(untrusted.stderr).toMatch(/certificate verify failed/);
    const plain = await psql(gatewayUrl(stack, '127.0.0.1', 'sslmode=disable'), '\\conninfo');
    expect(plain.status).toBe(0);
    expect(plain.stdout).not.toMatch(/SSL connection/);
  });

  /** A node-postgres client of the gateway over TLS, verifying its certificate by name. */
  const tlsClient = () => {
    const server = inject('postgres');
    return new pg.Client({
      host: 'localhost',
      port: stack.pgsage.gateway.port,
      user: server.user,
      password: server.password,
      database: stack.database,
      ssl: { ca: readFileSync(certs.ca), servername: 'localhost' },
    });
  };

  it('serves node-postgres over TLS', async () => {
    const client = tlsClient();
    await client.connect();
    try {
      const result = await client.query('SELECT $1::int + 1 AS answer', [41]);
      expect(result.rows).toEqual([{ answer: 42 }]);
    } finally {
      await client.end();
    }
  });

  it('over TLS, ends the session and its statement when the client goes without a Terminate', async () => {
    const client = tlsClient();
    client.on('error', () => {});
    await client.connect();
    const observer = await stack.direct();
    try {
      const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      client.query('SELECT pg_sleep(60)').catch(() => {});
      const backend = async () =>
        (await observer.query('SELECT state FROM pg_stat_activity WHERE pid = $1', [pid])).rows[0]?.state;
      await waitFor('the statement to run', async () => ((await backend()) === 'active' ? true : undefined));
      // The process dies: its socket ends, with no Terminate.
      (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
      await waitFor('the backend to go away', async () => ((await backend()) === undefined ? true : undefined));
    } finally {
      await observer.end();
    }
  });

  it('serves the AWS CLI over HTTPS with --ca-bundle', async () => {
    const scratch = mkdtempSync(path.join(tmpdir(), 'pgsage-tls-aws-'));
    try {
      const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          'aws',
          [
            'sagemaker',
            'list-endpoints',
            '--endpoint-url',
            stack.pgsage.edge.url.replace('127.0.0.1', 'localhost'),
            '--region',
            'us-east-1',
            '--ca-bundle',
            certs.ca,
            '--output',
            'json',
          ],
          {
            env: {
              PATH: process.env.PATH,
              HOME: scratch,
              AWS_ACCESS_KEY_ID: 'test',
              AWS_SECRET_ACCESS_KEY: 'test',
              AWS_CONFIG_FILE: path.join(scratch, 'none'),
              AWS_SHARED_CREDENTIALS_FILE: path.join(scratch, 'none'),
              AWS_PAGER: '',
              AWS_MAX_ATTEMPTS: '1',
            },
            timeout: 60_000,
          },
          (error, stdout, stderr) => resolve({ code: error ? 1 : 0, stdout, stderr }),
        );
      });
      expect(result.stderr).toBe('');
      expect(JSON.parse(result.stdout).Endpoints.map((e: { EndpointName: string }) => e.EndpointName)).toEqual([
        'churn-xgb',
      ]);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('does not answer plain HTTP on the HTTPS port', async () => {
    const plain = stack.pgsage.edge.url.replace('https://', 'http://');
    await expect(fetch(`${plain}/_pgsage/health`)).rejects.toThrow();
  });
});

describe('a gateway that requires TLS', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startStack({ tls: { gateway: { cert: certs.cert, key: certs.key, require: true } } });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('refuses plain-text sessions with a clear message and serves TLS ones; the edge stays HTTP', async () => {
    const plain = await psql(gatewayUrl(stack, '127.0.0.1', 'sslmode=disable'), 'SELECT 1;');
    expect(plain.status).not.toBe(0);
    expect(plain.stderr).toMatch(/pgsage accepts SSL connections only/);
    const secure = await psql(
      gatewayUrl(stack, 'localhost', `sslmode=verify-full&sslrootcert=${certs.ca}`),
      'SELECT 1;',
    );
    expect(secure.stdout.trim()).toBe('1');
    expect(stack.pgsage.edge.url).toMatch(/^http:\/\//);
  });
});

describe('TLS configuration errors', () => {
  it('reports a key that does not belong to its certificate at start-up', async () => {
    await expect(startStack({ tls: { cert: certs.cert, key: path.join(certs.dir, 'other.key') } })).rejects.toThrow(
      /tls: the certificate .* and key .* cannot be used together/,
    );
    await expect(
      startStack({ tls: { edge: { cert: path.join(certs.dir, 'missing.crt'), key: certs.key } } }),
    ).rejects.toThrow(/tls\.edge\.cert: cannot read .*missing\.crt/);
  });
});
