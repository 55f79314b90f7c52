import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import type { RunningPgsage } from '../../src/app.js';
import type { ConfigInput } from '../../src/config/index.js';
import { type EphemeralPgsage, startEphemeralPgsage } from './ephemeral.js';

export interface TestStack {
  pgsage: RunningPgsage;
  database: string;
  /** A node-postgres client through the gateway. */
  connect(database?: string): Promise<pg.Client>;
  /** A node-postgres client straight to PostgreSQL, bypassing the gateway. */
  direct(database?: string): Promise<pg.Client>;
  gatewayUrl(database?: string): string;
  directUrl(database?: string): string;
  stop(): Promise<void>;
}

const clients = new Set<pg.Client>();

async function open(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  client.on('error', () => {});
  await client.connect();
  clients.add(client);
  return client;
}

/**
 * A whole pgsage (gateway, bridge, services) on ephemeral ports, in front of the
 * run's shared PostgreSQL, working in a fresh database of its own (upstream mode).
 */
export async function startStack(overrides: ConfigInput = {}): Promise<TestStack> {
  const server = inject('postgres');
  const database = `t_${randomBytes(5).toString('hex')}`;
  const admin = await open({ ...server, database: 'postgres' });
  await admin.query(`CREATE DATABASE ${database}`);
  const upstream = `postgres://${server.user}:${server.password}@${server.host}:${server.port}/${database}`;
  let started: EphemeralPgsage;
  try {
    started = await startEphemeralPgsage('pgsage-stack-', {
      ...overrides,
      postgres: { upstream, ...(overrides.postgres ?? {}) },
    });
  } catch (error) {
    await admin.query(`DROP DATABASE ${database}`);
    clients.delete(admin);
    await admin.end();
    throw error;
  }
  const { pgsage, stop } = started;
  const directConfig = (db = database) => ({ ...server, database: db });
  const gatewayConfig = (db = database) => ({ ...server, port: pgsage.gateway.port, database: db });
  return {
    pgsage,
    database,
    connect: (db) => open(gatewayConfig(db)),
    direct: (db) => open(directConfig(db)),
    gatewayUrl: (db = database) =>
      `postgres://${server.user}:${server.password}@127.0.0.1:${pgsage.gateway.port}/${db}`,
    directUrl: (db = database) => `postgres://${server.user}:${server.password}@127.0.0.1:${server.port}/${db}`,
    async stop() {
      for (const client of clients) await client.end().catch(() => {});
      clients.clear();
      await stop();
      const cleanup = await open({ ...server, database: 'postgres' });
      await cleanup.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await cleanup.end();
      await admin.end();
    },
  };
}
