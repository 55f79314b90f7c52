import pg from 'pg';
import type { Logger } from 'pino';

/** The channel aws_ml's event trigger notifies after function, view, operator, cast, domain or policy DDL. */
export const DDL_CHANNEL = 'aws_ml_ddl';

const FIRST_RETRY_MS = 1000;
const LAST_RETRY_MS = 30_000;
/**
 * How long the connection stays after the last session left. Shorter than
 * the 5 s DROP DATABASE waits for other sessions to end, so it never fails
 * one that would succeed without pgsage.
 */
const LINGER_MS = 2000;

interface Watch {
  sessions: number;
  client?: pg.Client;
  retry?: NodeJS.Timeout;
  retryMs: number;
  /** Its LISTEN took effect (and the connection has not been lost since). */
  listening?: boolean;
  /** Its connection was lost: notifications may have been missed until it listens again. */
  lost?: boolean;
  /** The last session left: the connection closes when this fires, unless another joins first. */
  linger?: NodeJS.Timeout;
}

export interface DdlListenerOptions {
  /** Where to listen in a database (pgsage's administrative connection). */
  connection(database: string): pg.ClientConfig;
  /** The database's functions or views may have changed: its catalog is to be read again. */
  onChange(database: string): void;
  /** Figures for metrics: notifications heard, databases listened to. */
  figures?: { ddlHeard: number; ddlListening: number };
  logger: Logger;
}

/**
 * Hears DDL that did not pass through this gateway (a direct connection,
 * another gateway): LISTENs on the extension's channel in each database that
 * gateway sessions use, while they use it. The connection goes soon after the
 * last session (see LINGER_MS).
 */
export class DdlListener {
  private readonly watches = new Map<string, Watch>();
  private closed = false;

  constructor(private readonly options: DdlListenerOptions) {}

  /** A session uses the database's catalog; call the returned function when it ends. */
  join(database: string): () => void {
    let watch = this.watches.get(database);
    if (watch?.linger) {
      clearTimeout(watch.linger);
      watch.linger = undefined;
    }
    if (!watch) {
      watch = { sessions: 0, retryMs: FIRST_RETRY_MS };
      this.watches.set(database, watch);
      void this.listen(database, watch);
    }
    watch.sessions += 1;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      watch.sessions -= 1;
      if (watch.sessions > 0) return;
      // (Sessions that connect for one statement each would otherwise open a connection each.)
      watch.linger = setTimeout(() => {
        watch.linger = undefined;
        if (watch.sessions === 0) void this.stop(database, watch);
      }, LINGER_MS);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.watches].map(([database, watch]) => this.stop(database, watch)));
  }

  private async listen(database: string, watch: Watch): Promise<void> {
    const client = new pg.Client({
      ...this.options.connection(database),
      // It only ever waits: settings of the database or role that end idle or slow sessions must not end it.
      options: '-c idle_session_timeout=0 -c idle_in_transaction_session_timeout=0 -c statement_timeout=0',
      keepAlive: true,
    });
    const reconnect = watch.lost === true;
    watch.client = client;
    const lost = (error?: Error) => {
      if (watch.client !== client) return;
      this.stopListening(watch);
      watch.lost = true;
      client.end().catch(() => undefined);
      if (this.closed || this.watches.get(database) !== watch) return;
      this.options.logger.warn(
        { database, err: error?.message, retryInMs: watch.retryMs },
        'lost the connection that hears DDL; listening again shortly',
      );
      // Until it listens again, changes are caught when the catalog grows old (or the gateway runs them).
      watch.retry = setTimeout(() => {
        watch.retry = undefined;
        if (this.watches.get(database) === watch) void this.listen(database, watch);
      }, watch.retryMs);
      watch.retryMs = Math.min(watch.retryMs * 2, LAST_RETRY_MS);
    };
    client.on('error', lost);
    client.on('end', () => lost(new Error('connection ended')));
    client.on('notification', (message) => {
      if (message.channel !== DDL_CHANNEL) return;
      if (this.options.figures) this.options.figures.ddlHeard += 1;
      this.options.onChange(database);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${DDL_CHANNEL}`);
      if (watch.client !== client) return;
      watch.retryMs = FIRST_RETRY_MS;
      watch.listening = true;
      watch.lost = false;
      if (this.options.figures) this.options.figures.ddlListening += 1;
      // DDL committed while nobody listened was not heard: what was read before may be stale. (Before the
      // first LISTEN, the catalog's age bounds that, as it does without a listener: read it again only then.)
      if (reconnect) this.options.onChange(database);
    } catch (error) {
      lost(error as Error);
    }
  }

  private stopListening(watch: Watch): void {
    watch.client = undefined;
    if (watch.listening && this.options.figures) this.options.figures.ddlListening -= 1;
    watch.listening = false;
  }

  private async stop(database: string, watch: Watch): Promise<void> {
    if (this.watches.get(database) === watch) this.watches.delete(database);
    clearTimeout(watch.retry);
    clearTimeout(watch.linger);
    const client = watch.client;
    this.stopListening(watch);
    // DDL made while nobody listens would go unseen while the catalog is younger than its 30 s: the next
    // session reads it again (the linger keeps sessions of one statement each from doing so every time).
    this.options.onChange(database);
    await client?.end().catch(() => undefined);
  }
}
