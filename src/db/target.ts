import type pg from 'pg';

/** The PostgreSQL server the gateway relays to: embedded or an existing one. */
export interface PostgresTarget {
  readonly host: string;
  readonly port: number;
  /**
   * The same server's Unix-domain socket, when the gateway may relay sessions
   * through it (cheaper per message than loopback TCP): only where the server
   * asks a client connecting there for a password, as it does over TCP.
   */
  readonly relaySocket?: string;
  /** Connection settings for pgsage's own administrative work (catalog reads, extension installs). */
  adminConnection(database?: string): pg.ClientConfig;
  stop(): Promise<void>;
}
