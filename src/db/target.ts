import type pg from 'pg';

/** The PostgreSQL server the gateway relays to: embedded or an existing one. */
export interface PostgresTarget {
  readonly host: string;
  readonly port: number;
  /** A Unix-domain socket of the same server, for the gateway's connections (embedded only). */
  readonly socketPath?: string;
  /** Connection settings for pgsage's own administrative work (catalog reads, extension installs). */
  adminConnection(database?: string): pg.ClientConfig;
  stop(): Promise<void>;
}
