import type pg from 'pg';

/** The PostgreSQL server the gateway relays to: embedded or an existing one. */
export interface PostgresTarget {
  readonly host: string;
  readonly port: number;
  /** Connection settings for pgsage's own administrative work (catalog reads, extension installs). */
  adminConnection(database?: string): pg.ClientConfig;
  stop(): Promise<void>;
}
