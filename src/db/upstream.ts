import pg from 'pg';
import type { PostgresTarget } from './target.js';

/** An existing PostgreSQL server given by connection string (`--upstream`). */
export class UpstreamPostgres implements PostgresTarget {
  readonly host: string;
  readonly port: number;
  private readonly base: pg.ClientConfig;

  constructor(connectionString: string) {
    let url: URL;
    try {
      url = new URL(connectionString);
    } catch {
      throw new Error('the upstream must be a URL such as postgres://user:password@host:5432/postgres');
    }
    if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
      throw new Error(`the upstream must use postgres://, not ${url.protocol}//`);
    }
    this.host = url.hostname || '127.0.0.1';
    this.port = Number(url.port || 5432);
    this.base = {
      host: this.host,
      port: this.port,
      user: decodeURIComponent(url.username || 'postgres'),
      password: decodeURIComponent(url.password),
      database: decodeURIComponent(url.pathname.replace(/^\//, '') || 'postgres'),
    };
  }

  adminConnection(database?: string): pg.ClientConfig {
    return { ...this.base, database: database ?? this.base.database };
  }

  /** Checks the server is reachable and new enough. */
  async verify(): Promise<number> {
    const client = new pg.Client(this.adminConnection());
    client.on('error', () => {}); // (reported by the statement that meets it)
    await client.connect();
    try {
      const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
      const version = Number(rows[0].v);
      if (version < 140000) throw new Error(`the upstream runs PostgreSQL ${version}; pgsage needs 14 or newer`);
      return version;
    } finally {
      await client.end();
    }
  }

  async stop(): Promise<void> {}
}
