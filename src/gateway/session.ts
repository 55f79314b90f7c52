import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { SqlError, SqlState } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { BackendChannel, BackendError } from './backend.js';
import type { ClientErrors } from './client-errors.js';
import { blockOpening } from './group-order.js';
import {
  BoundaryScanner,
  ClientMessage,
  countsAsReply,
  errorResponse,
  type Message,
  MessageFramer,
  parseFields,
  parseMessage,
  parseTextLatin1,
  queryMessage,
  readParse,
  readyForQuery,
  ServerMessage,
  syncMessage,
  type TransactionStatus,
} from './protocol.js';
import { ReplyLedger } from './reply-ledger.js';

/** What an interceptor may do with a session while it owns it. */
export interface SessionControl {
  readonly database: string;
  readonly user: string;
  readonly backend: BackendChannel;
  /** Aborted when the client cancels (CancelRequest) or disconnects. */
  readonly signal: AbortSignal;
  /** The client or PostgreSQL has closed the session: what fails from then on is no fault. */
  readonly ended: boolean;
  readonly logger: Logger;
  toClient(bytes: Buffer | Buffer[]): void;
  /**
   * Sends client messages to the server and relays every answer to the client
   * until ReadyForQuery; `rewrite` may replace or drop (return null) a server
   * message. The ReadyForQuery itself is not forwarded: the caller decides.
   */
  relay(
    bytes: Buffer | Buffer[],
    rewrite?: (message: Message) => Buffer | null,
  ): Promise<{ status: TransactionStatus; failed: boolean }>;
  /**
   * Hands client messages (possibly rewritten) to the server and goes back to
   * relaying: the answers flow to the client unchanged. `syncPoints` is the
   * number of Query/Sync messages among them. `errors` moves the positions of
   * their errors into the client's text.
   */
  forward(bytes: Buffer | Buffer[], syncPoints: number, errors?: ClientErrors): void;
  /** The session's client_encoding, as the server last reported it. */
  readonly clientEncoding: string;
  /** The session's standard_conforming_strings ('on' or 'off'), as the server last reported it. */
  readonly standardConformingStrings: string;
  /**
   * Runs `task` on the backend once every statement handed over with `forward`
   * has been answered, before any later statement of the client (COPY data for
   * those statements still flows). A failing task is logged, not reported.
   * After a group ended by Flush, that is once a Sync has closed it: the
   * client's messages until then (fetching a portal's rows) go on as usual.
   */
  afterIdle(task: () => Promise<void>): void;
  /**
   * Fails the extended-protocol group being handled, which ended in Flush:
   * the client gets `error` (unless it had it already), and, as PostgreSQL
   * does after an error, its messages up to the next Sync are skipped and
   * that Sync is answered.
   */
  failUntilSync(error?: Buffer): void;
  /**
   * Has PostgreSQL cancel the gateway's statement running on the backend, as
   * a client's CancelRequest would (so `signal` aborts too); for the
   * gateway's own reasons to stop one early.
   */
  cancelBackend(): void;
}

/**
 * Per-session hook for statements that mention ML functions. The relay hands
 * over whole simple-protocol queries and whole extended-protocol groups (up to
 * Sync or Flush); the interceptor must leave the backend idle and, for a Sync
 * or Query, send the client its ReadyForQuery.
 */
export interface SessionInterceptor {
  /** Cheap test on a statement's text (a substring check, no parsing). */
  mentionsMl(sql: string): boolean;
  /**
   * The text of a statement that goes to PostgreSQL without the interceptor
   * (while a group ended by Flush is open): Aurora's names mapped to pgsage's.
   */
  asSent?(sql: string): string;
  /**
   * Whether an extended-protocol message refers to a statement or portal the
   * interceptor is tracking (`ownOperations`: the backend's count so far, see
   * BackendChannel.operations).
   */
  tracks(message: Message, ownOperations: number): boolean;
  /** False while no prepared statement is tracked, so Binds need no look. */
  readonly tracksAny: boolean;
  handleQuery(control: SessionControl, sql: string, message: Message): Promise<void>;
  handleExtended(control: SessionControl, group: Message[]): Promise<void>;
  /** The server reported this message while relaying (used to invalidate caches on DDL, track SETs…). */
  close?(): void;
  /** The server completed function, view or schema DDL (CommandComplete) that the interceptor did not run. */
  noteDdl?(): void;
  /**
   * The server rolled back (a block, or to a savepoint): DDL run in the block may be undone, and settings made
   * before it put back.
   */
  noteRollback?(control: SessionControl): void;
  /** A cancel aborted the client's transaction block during the gateway's follow-ups (see Session.runTasks). */
  noteBlockLost?(): void;
  /** The server is ready for the next statement, in this transaction status. */
  noteStatus?(status: TransactionStatus): void;
  /** The server reported the session's search_path or session user (ParameterStatus, PostgreSQL 18 and later). */
  noteSearchPath?(setting: { searchPath?: string; user?: string }): void;
  /**
   * A statement of this name was prepared again without the interceptor, or
   * (for '') dropped by a simple query: what it tracked under the name is gone.
   * For the unnamed statement prepared again, its Parse and the backend's
   * count of the gateway's own operations when the server got it.
   */
  forget?(statement: string, parse?: { bytes: Buffer; ownOperations: number }): void;
}

export interface SessionOptions {
  client: Socket;
  server: Socket;
  /** The client's startup packet, already forwarded. */
  startupParameters: Map<string, string>;
  interceptor: SessionInterceptor | undefined;
  logger: Logger;
  onBackendKey(pid: number, key: Buffer): void;
  /** The server socket's data is read into a reused buffer by the caller, who calls receiveServerData. */
  externalServerReads?: boolean;
  /** Has PostgreSQL cancel what the backend runs (a CancelRequest for this session, see cancel). */
  cancelBackend(): void;
  onClose(): void;
}

/** First letters of CREATE, DROP and ALTER command tags. */
const DDL_TAG_START = new Set([0x43, 0x44, 0x41, 0x52]);
/**
 * Command tags of DDL after which the ML catalog (wrappers, views, functions
 * that write, operators and casts that run them) is read again; DO may have
 * run some through EXECUTE.
 */
const CATALOG_DDL_TAG =
  /^((CREATE|DROP|ALTER) (FUNCTION|PROCEDURE|ROUTINE|VIEW|MATERIALIZED VIEW|SCHEMA|EXTENSION|RULE|OPERATOR|DOMAIN|CAST|POLICY)\b|DO\0)/;

/** Settings that change how PostgreSQL reads a statement's text (SET NAMES sets client_encoding). */
export const READING_SETTINGS: ReadonlySet<string> = new Set(['client_encoding', 'standard_conforming_strings']);

/** CopyData, CopyDone and CopyFail: the client feeding a COPY FROM STDIN in flight. */
const COPY_FROM_CLIENT: ReadonlySet<number> = new Set([
  ClientMessage.CopyData,
  ClientMessage.CopyDone,
  ClientMessage.CopyFail,
]);

/** Extended-protocol messages that are buffered until their group's Sync or Flush. */
const EXTENDED: ReadonlySet<number> = new Set([
  ClientMessage.Parse,
  ClientMessage.Bind,
  ClientMessage.Describe,
  ClientMessage.Execute,
  ClientMessage.Close,
]);
/** Extended-protocol messages that run nothing: Parse, Describe, Close, Flush. */
const DESCRIBING: ReadonlySet<number> = new Set([
  ClientMessage.Parse,
  ClientMessage.Describe,
  ClientMessage.Close,
  ClientMessage.Flush,
]);

/** How long a client told PostgreSQL's FATAL has to read it before its socket is destroyed. */
const CLIENT_END_GRACE_MS = 5_000;
/** Tries of the follow-ups in a client's block that cancels keep stopping (see runTasks). */
const FOLLOW_UP_TRIES = 10;
/** The gateway's savepoint around its follow-ups: no client's savepoint shares the name (see runTasks). */
const FOLLOW_UP_SAVEPOINT = `aws_ml_follow_up_${randomBytes(6).toString('hex')}`;

/** An ErrorResponse of severity FATAL or PANIC: PostgreSQL closes the connection after it. */
function endsSession(error: Buffer): boolean {
  const severity = parseFields(error).V;
  return severity === 'FATAL' || severity === 'PANIC';
}

/**
 * One client connection relayed to one backend connection (session mode).
 * Bytes flow through untouched unless a statement mentions an ML function, in
 * which case the interceptor takes the backend for as long as it needs.
 */
export class Session implements SessionControl {
  readonly backend: BackendChannel;
  readonly database: string;
  readonly user: string;
  readonly logger: Logger;
  private readonly client: Socket;
  private readonly server: Socket;
  private readonly clientFramer = new MessageFramer();
  private readonly serverFramer = new MessageFramer();
  /**
   * Fast-path view of the server stream: only ReadyForQuery, BackendKeyData,
   * ParameterStatus, CopyInResponse and CommandComplete (DDL) matter there.
   */
  private readonly serverScanner = new BoundaryScanner(
    (type) =>
      type === ServerMessage.ReadyForQuery ||
      type === ServerMessage.BackendKeyData ||
      type === ServerMessage.ParameterStatus ||
      type === ServerMessage.CopyInResponse ||
      type === ServerMessage.CommandComplete ||
      type === ServerMessage.ErrorResponse ||
      countsAsReply(type),
  );
  /** What PostgreSQL owes for the messages passed on, in order (see ReplyLedger). */
  private readonly ledger = new ReplyLedger();
  /** Replies to statements handed over rewritten, until their errors are past (see forward). */
  private clientErrors: ClientErrors | undefined;
  /**
   * The last Sync point forwarded was an extended-protocol Sync (not a Query):
   * if a COPY FROM STDIN starts now, PostgreSQL ignores that Sync (it arrives
   * in copy-in mode) and answers only the Sync the client sends after CopyDone.
   */
  private lastSyncExtended = false;
  /** COPY FROM STDIN begun by extended-protocol groups (see startInterception). */
  private copiesInGroup = 0;
  /** The client's last message was CopyDone or CopyFail. */
  private copyJustEnded = false;
  /** PostgreSQL's FATAL error, received while the gateway ran its own statements, went to the client. */
  private toldWhyEnded = false;
  /** The client's messages are skipped up to its next Sync (see failUntilSync). */
  private skippingUntilSync = false;
  clientEncoding = 'UTF8';
  standardConformingStrings = 'on';
  private readonly interceptor: SessionInterceptor | undefined;
  private cancelController = new AbortController();
  /** Queries and Syncs sent to the server whose ReadyForQuery has not come back. */
  private pendingSyncs = 0;
  /** A forwarded extended group ended in Flush: the server is mid-transaction-group. */
  private openGroup = false;
  /**
   * The open group is extended messages that a Query followed before any Sync or Flush, and they only open a
   * transaction block: that Query's ReadyForQuery ends it, in the block (pgjdbc with autosave sends `BEGIN` so,
   * then `SAVEPOINT` as a Query).
   */
  private openGroupEndsAtQuery = false;
  /**
   * The open group only parsed, described and closed statements (see DESCRIBING): ending it early
   * changes nothing but the timing of its replies.
   */
  private openGroupDescribesOnly = false;
  /** PostgreSQL sent an error since its last ReadyForQuery (in an open group: it skips to the Sync). */
  private errorSinceReady = false;
  /** ReadyForQuery messages to come up to the one answering the last Query sent into an open group (0: none). */
  private readiesToGroupQuery = 0;
  private group: Message[] = [];
  private queue: Message[] = [];
  private busy = false;
  private idleWaiters: (() => void)[] = [];
  private relayHandler: ((message: Message) => void) | undefined;
  private closed = false;
  /** The client's Terminate went to PostgreSQL (see close). */
  private terminated = false;
  /** Work to run on the backend after the statements in flight (see afterIdle); holds the client's next statements. */
  private followUps: (() => Promise<void>)[] = [];
  private runningFollowUps = false;
  /** A cancel that came while follow-ups ran (see cancel), and what settles its request. */
  private cancelAfterFollowUps: { toServer: () => Promise<void>; settle: () => void } | undefined;
  /** Cancels handed to PostgreSQL whose delivery is not confirmed yet. */
  private readonly cancelsOnTheirWay = new Set<Promise<void>>();

  constructor(private readonly options: SessionOptions) {
    this.client = options.client;
    this.server = options.server;
    this.interceptor = options.interceptor;
    this.logger = options.logger;
    this.database = options.startupParameters.get('database') ?? options.startupParameters.get('user') ?? '';
    this.user = options.startupParameters.get('user') ?? '';
    this.backend = new BackendChannel((bytes) => this.writeServer(bytes));
    // Lets a slow consumer of the gateway's own COPY (an export upload) hold PostgreSQL back.
    this.backend.flowControl = { pause: () => this.server.pause(), resume: () => this.server.resume() };

    this.client.on('data', (chunk: Buffer) => this.onClientData(chunk));
    if (!options.externalServerReads) this.server.on('data', (chunk: Buffer) => this.onServerData(chunk));
    this.client.on('drain', () => this.server.resume());
    this.server.on('drain', () => {
      if (!this.busy) this.client.resume();
    });
    const end = (who: string) => (error?: Error) => this.close(who, error);
    this.client.on('close', end('client'));
    this.server.on('close', end('server'));
    this.client.on('error', (error) => this.logger.debug({ err: error.message }, 'client socket error'));
    this.server.on('error', (error) => this.logger.debug({ err: error.message }, 'server socket error'));
  }

  get signal(): AbortSignal {
    return this.cancelController.signal;
  }

  get ended(): boolean {
    return this.closed;
  }

  /**
   * A CancelRequest arrived for this session: stops the gateway's own work
   * and hands the request to PostgreSQL with `toServer`. While only the
   * gateway's follow-ups run, the client's statements are answered (or held):
   * PostgreSQL would ignore the cancel of an idle session, and must not cancel
   * a follow-up, which inside a transaction block would abort it unseen. Such
   * a cancel goes on after the follow-ups if the client sent statements
   * meanwhile; follow-ups wait for cancels already on their way. Settles once
   * PostgreSQL has the request (at once for a held one).
   */
  cancel(toServer: () => Promise<void>): Promise<void> {
    if (this.runningFollowUps) {
      // Settled once decided, as PostgreSQL closes a CancelRequest's connection once it has acted on it: a client
      // that waits for that (libpq does) sends nothing meant to come after the cancel before it.
      return new Promise((settle) => {
        this.cancelAfterFollowUps?.settle();
        this.cancelAfterFollowUps = { toServer, settle };
      });
    }
    this.cancelController.abort(new SqlError(SqlState.queryCanceled, 'canceling statement due to user request'));
    const sent = toServer();
    this.cancelsOnTheirWay.add(sent);
    void sent.finally(() => this.cancelsOnTheirWay.delete(sent));
    return sent;
  }

  // ------------------------------------------------------------ server → client

  /**
   * Data from PostgreSQL read into a buffer the caller wants to reuse. Returns
   * whether the bytes are still referenced (a write the kernel has not taken
   * yet, or a message kept for the gateway's own work): then the caller must
   * read the next chunk into fresh memory.
   */
  receiveServerData(data: Buffer): boolean {
    const fast = this.relaysDirectly();
    this.onServerData(data);
    return !fast || this.client.writableLength > 0;
  }

  /** PostgreSQL's data goes to the client as it comes (no work of the gateway's own reads it). */
  relaysDirectly(): boolean {
    return !this.backend.busy && !this.relayHandler && !this.clientErrors && this.serverFramer.buffered === 0;
  }

  private onServerData(data: Buffer): void {
    let chunk = data;
    // The end of a message that began on the fast path (an asynchronous notice, say)
    // still goes the fast way, so the framer below always starts at a boundary.
    while (!this.serverScanner.atBoundary && chunk.length > 0) {
      const head = chunk.subarray(0, Math.min(this.serverScanner.bytesToBoundary, chunk.length));
      this.serverScanner.scan(head, this.observeRaw);
      this.writeClient(head);
      chunk = chunk.subarray(head.length);
    }
    if (chunk.length === 0) return;
    if (!this.backend.busy && !this.relayHandler && !this.clientErrors && this.serverFramer.buffered === 0) {
      // Fast path: forward the bytes as they came; only sync points and keys are noted.
      try {
        this.serverScanner.scan(chunk, this.observeRaw);
      } catch (error) {
        this.fatal(`invalid data from PostgreSQL: ${(error as Error).message}`);
        return;
      }
      this.writeClient(chunk);
      return;
    }
    const messages: Message[] = [];
    try {
      this.serverFramer.push(chunk, messages);
    } catch (error) {
      this.fatal(`invalid data from PostgreSQL: ${(error as Error).message}`);
      return;
    }
    for (const message of messages) {
      if (message.type === ServerMessage.ParameterStatus && this.backend.busy) {
        // A setting reported while the gateway runs its own statements (a rollback can undo the
        // client's SET client_encoding): the client must hear of it as PostgreSQL meant it to.
        this.noteParameter(message.bytes, 5, message.bytes.length - 5);
        this.writeClient(message.bytes);
      }
      if (message.type === ServerMessage.NotificationResponse && this.backend.busy) {
        // PostgreSQL delivers a LISTENed notification whenever the backend is idle, between the gateway's own
        // statements too: it is the client's, which takes one at any moment (the gateway's statements want none).
        this.writeClient(message.bytes);
        continue;
      }
      if (message.type === ServerMessage.ErrorResponse && this.backend.busy && endsSession(message.bytes)) {
        // PostgreSQL ends the session (pg_terminate_backend, a shutdown) while the gateway runs its own
        // statements: the client must hear why, as drivers and pools tell 57P01 from a network fault.
        this.writeClient(message.bytes);
        this.toldWhyEnded = true;
      }
      if (this.backend.deliver(message)) continue;
      if (this.relayHandler) {
        if (message.type === ServerMessage.ParameterStatus)
          this.noteParameter(message.bytes, 5, message.bytes.length - 5);
        this.relayHandler(message);
        continue;
      }
      this.observeServerMessage(message);
      this.writeClient(this.clientErrors ? this.positioned(message.bytes) : message.bytes);
    }
  }

  private positioned(bytes: Buffer): Buffer {
    const out = this.clientErrors!.reply(bytes);
    if (this.clientErrors!.done) this.clientErrors = undefined;
    return out;
  }

  private readonly observeRaw = (type: number, buffer: Buffer, offset: number, length: number): void => {
    const skipped = this.ledger.received(type);
    if (skipped > 0) this.queriesSkipped(skipped);
    if (type === ServerMessage.ReadyForQuery) {
      this.readyForQuery(String.fromCharCode(buffer[offset]) as TransactionStatus);
    } else if (type === ServerMessage.BackendKeyData && length >= 4) {
      this.options.onBackendKey(buffer.readInt32BE(offset), Buffer.from(buffer.subarray(offset + 4, offset + length)));
    } else if (type === ServerMessage.ParameterStatus) {
      this.noteParameter(buffer, offset, length);
    } else if (type === ServerMessage.ErrorResponse) {
      this.errorSinceReady = true;
    } else if (type === ServerMessage.CopyInResponse) {
      if (this.lastSyncExtended) {
        if (this.pendingSyncs > 0) this.pendingSyncs -= 1;
        // PostgreSQL ignores that Sync: up to the client's next one, what it sends belongs to the group, as after
        // a Flush (a Query after a failed COPY is skipped; after CopyDone it runs in the group's transaction).
        this.setOpenGroup(true);
        this.openGroupDescribesOnly = false;
        this.copiesInGroup += 1;
        // Whoever waits for the server to be idle would wait for the client's copy data, held behind it.
        this.wakeIdleWaiters();
      }
      this.lastSyncExtended = false;
    } else if (type === ServerMessage.CommandComplete && length > 2 && DDL_TAG_START.has(buffer[offset])) {
      const tag = buffer.toString('latin1', offset, offset + Math.min(length, 40));
      if (CATALOG_DDL_TAG.test(tag)) this.interceptor?.noteDdl?.();
      else if (tag.startsWith('ROLLBACK')) this.interceptor?.noteRollback?.(this);
    }
  };

  /**
   * ParameterStatus: the client's encoding and whether backslashes escape in
   * strings decide how the gateway may read its statements' text; the
   * search_path and session user, which view an unqualified name means.
   */
  private noteParameter(buffer: Buffer, offset: number, length: number): void {
    const end = offset + length;
    const nameEnd = buffer.indexOf(0, offset);
    if (nameEnd < 0 || nameEnd >= end) return;
    const name = buffer.toString('latin1', offset, nameEnd);
    const valueEnd = buffer.indexOf(0, nameEnd + 1);
    const read = (encoding: BufferEncoding) =>
      buffer.toString(encoding, nameEnd + 1, valueEnd < 0 || valueEnd > end ? end : valueEnd);
    if (name === 'search_path') this.interceptor?.noteSearchPath?.({ searchPath: read('utf8') });
    else if (name === 'session_authorization') this.interceptor?.noteSearchPath?.({ user: read('utf8') });
    if (!READING_SETTINGS.has(name)) return;
    const value = read('latin1');
    if (name === 'client_encoding') this.clientEncoding = value;
    else this.standardConformingStrings = value;
  }

  private readyForQuery(status: TransactionStatus): void {
    this.backend.status = status;
    this.errorSinceReady = false;
    // A Query sent into an open group ended its transaction: nothing of the group is left open.
    if (
      this.readiesToGroupQuery > 0 &&
      --this.readiesToGroupQuery === 0 &&
      (status === 'I' || this.openGroupEndsAtQuery)
    ) {
      this.setOpenGroup(false);
    }
    this.interceptor?.noteStatus?.(status);
    if (this.pendingSyncs > 0) this.pendingSyncs -= 1;
    if (this.pendingSyncs > 0) return;
    this.wakeIdleWaiters();
    // Follow-ups run before the statements the client sent meanwhile (held in the queue).
    if (this.followUps.length > 0 && !this.busy) this.startInterception(() => Promise.resolve(), []);
  }

  /**
   * PostgreSQL failed an extended message that Queries sent before the next
   * Sync followed: it skips them, and their ReadyForQuery never comes. (The
   * server is not idle even if none is left to come: it waits for the
   * client's Sync, so nobody is woken.)
   */
  private queriesSkipped(count: number): void {
    this.pendingSyncs = Math.max(0, this.pendingSyncs - count);
    if (this.readiesToGroupQuery > 0) {
      // The skipped ones are the first to come; the Query an open group waits on may be one of them.
      this.readiesToGroupQuery = this.readiesToGroupQuery <= count ? 0 : this.readiesToGroupQuery - count;
    }
  }

  private observeServerMessage(message: Message): void {
    this.observeRaw(message.type, message.bytes, 5, message.bytes.length - 5);
  }

  private wakeIdleWaiters(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  private whenServerIdle(): Promise<void> {
    if (this.pendingSyncs === 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  // ------------------------------------------------------------ client → server

  private onClientData(chunk: Buffer): void {
    if (
      !this.busy &&
      !this.skippingUntilSync &&
      this.followUps.length === 0 &&
      this.clientFramer.buffered === 0 &&
      this.group.length === 0 &&
      this.forwardWhole(chunk)
    )
      return;
    const messages: Message[] = [];
    try {
      this.clientFramer.push(chunk, messages);
    } catch (error) {
      this.fatal(`invalid message from client: ${(error as Error).message}`);
      return;
    }
    if (this.busy) {
      this.queue.push(...messages);
      return;
    }
    this.process(messages);
  }

  /**
   * The common case without copies: a chunk of whole messages, extended-protocol
   * groups closed by Sync or Flush inside it, nothing for the interceptor.
   * Returns false (having changed nothing) when the general path must run.
   */
  private forwardWhole(chunk: Buffer): boolean {
    let pos = 0;
    let syncs = 0;
    let inGroup = false;
    let groupEnd: 'sync' | 'flush' | undefined;
    let lastExtended = this.lastSyncExtended;
    let describesOnly = !this.openGroup || this.openGroupDescribesOnly;
    const length = chunk.length;
    while (pos < length) {
      if (length - pos < 5) return false;
      const type = chunk[pos];
      const end = pos + 1 + chunk.readInt32BE(pos + 1);
      if (end > length || end < pos + 5) return false;
      if (type === ClientMessage.Sync) describesOnly = true;
      else if (!DESCRIBING.has(type)) describesOnly = false;
      if (type === ClientMessage.FunctionCall) {
        if (this.openGroup) return false;
        syncs += 1;
        lastExtended = false;
      } else if (type === ClientMessage.Query) {
        if (this.openGroup) return false; // (see process)
        if (this.interceptor?.mentionsMl(chunk.toString('latin1', pos + 5, end - 1))) return false;
        if (this.interceptor?.tracksAny) this.interceptor.forget?.('');
        syncs += 1;
        lastExtended = false;
      } else if (type === ClientMessage.Parse) {
        if (this.interceptor?.mentionsMl(parseTextLatin1(chunk, pos + 5, end))) return false;
        this.parsePassing(chunk.subarray(pos, end));
        inGroup = true;
      } else if (EXTENDED.has(type)) {
        if (
          this.interceptor?.tracksAny &&
          this.interceptor.tracks({ type, bytes: chunk.subarray(pos, end) }, this.backend.operations)
        ) {
          return false;
        }
        inGroup = true;
      } else if (type === ClientMessage.Sync) {
        syncs += 1;
        lastExtended = true;
        inGroup = false;
        groupEnd = 'sync';
      } else if (type === ClientMessage.Flush) {
        // (One with no message before it, after a Sync say, opens no group: psycopg 3 ends a pipeline so.)
        if (inGroup) groupEnd = 'flush';
        inGroup = false;
      } else if (type === ClientMessage.Terminate) {
        return false;
      }
      pos = end;
    }
    if (inGroup) return false;
    this.ledger.sentAll(chunk);
    this.pendingSyncs += syncs;
    this.lastSyncExtended = lastExtended;
    if (groupEnd) this.setOpenGroup(groupEnd === 'flush');
    this.openGroupDescribesOnly = describesOnly;
    this.writeServer(chunk);
    return true;
  }

  /** Forwards what can go straight through; stops at the first message the interceptor must handle. */
  private process(messages: Message[]): void {
    const forward: Buffer[] = [];
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i];
      const type = message.type;
      // The Sync after CopyDone/CopyFail ends the copy's group: its ReadyForQuery is what the follow-ups wait for.
      const endsCopy = type === ClientMessage.Sync && this.copyJustEnded;
      this.copyJustEnded = type === ClientMessage.CopyDone || type === ClientMessage.CopyFail;
      if (this.skippingUntilSync) {
        if (type !== ClientMessage.Sync) continue;
        this.skippingUntilSync = false;
        this.flushForward(forward);
        this.toClient(readyForQuery(this.backend.status));
        if (this.followUps.length > 0) {
          this.startInterception(() => Promise.resolve(), messages.slice(i + 1));
          return;
        }
        continue;
      }
      if (
        this.followUps.length > 0 &&
        !this.openGroup &&
        (this.queue.length > 0 || !(COPY_FROM_CLIENT.has(type) || endsCopy))
      ) {
        // Held until the follow-ups have run (see readyForQuery); COPY data still feeds its statement,
        // unless messages before it are held too (it must not overtake its COPY).
        this.flushForward(forward);
        this.queue.push(...messages.slice(i));
        this.client.pause(); // resumed once the follow-ups have run
        return;
      }
      if (this.group.length > 0 && !EXTENDED.has(type) && type !== ClientMessage.Sync && type !== ClientMessage.Flush) {
        // Extended messages the client has not ended with Sync or Flush: PostgreSQL runs them before this one, and
        // they stay open as a group ended by Flush does.
        this.forwardGroup(this.group, forward);
        // (Only a block the messages open is one: others leave PostgreSQL's implicit transaction open, which the
        // Query's ReadyForQuery shows as a block too. Opened from no transaction, so the BEGIN cannot fail.)
        const opensBlock =
          this.interceptor !== undefined &&
          !this.openGroup &&
          this.backend.status === 'I' &&
          blockOpening(this.group) === this.group.length;
        this.setOpenGroup(true, opensBlock);
        this.group = [];
      }
      // (Not while a group ended by Flush is open: the gateway's own statements would end its transaction. Nor
      // one PostgreSQL will skip, after a failed extended COPY say: the server waits for the client's Sync.)
      if (
        type === ClientMessage.Query &&
        this.interceptor &&
        !this.groupStaysOpen &&
        !this.skipsToSync() &&
        this.needsInterception(message)
      ) {
        this.flushForward(forward);
        this.startInterception(() => this.runQuery(message), messages.slice(i + 1), [message]);
        return;
      }
      if (EXTENDED.has(type)) {
        this.group.push(message);
        continue;
      }
      if (type === ClientMessage.Flush && this.group.length === 0) {
        // Nothing to end (after a Sync, as psycopg 3 ends a pipeline): no group is opened, an open one stays open.
        this.pass(forward, message.bytes);
        continue;
      }
      if (type === ClientMessage.Sync || type === ClientMessage.Flush) {
        this.group.push(message);
        const group = this.group;
        this.group = [];
        const intercepted =
          this.interceptor &&
          (!this.groupStaysOpen || this.openGroupDescribesOnly) &&
          group.some((m) => this.groupMessageNeedsInterception(m));
        if (intercepted) {
          this.flushForward(forward);
          const run = this.groupStaysOpen ? () => this.runAfterDescribing(group) : () => this.runExtended(group);
          this.startInterception(run, messages.slice(i + 1), group);
          return;
        }
        this.forwardGroup(this.openGroup ? group.map((m) => this.asSentInOpenGroup(m)) : group, forward);
        if (type === ClientMessage.Sync) {
          this.pendingSyncs += 1;
          this.lastSyncExtended = true;
          this.setOpenGroup(false);
        } else {
          this.setOpenGroup(true);
        }
        continue;
      }
      if ((type === ClientMessage.Query || type === ClientMessage.FunctionCall) && this.skipsToSync()) {
        // PostgreSQL skips it (no answer, no ReadyForQuery), as it skips everything up to the Sync.
        this.pass(forward, message.bytes);
        continue;
      }
      if (type === ClientMessage.FunctionCall) {
        this.pendingSyncs += 1;
        this.lastSyncExtended = false;
      } else if (type === ClientMessage.Query) {
        this.pendingSyncs += 1;
        this.lastSyncExtended = false;
        if (this.interceptor?.tracksAny) this.interceptor.forget?.('');
        // Its ReadyForQuery says whether the open group's transaction ended with it.
        if (this.openGroup) this.readiesToGroupQuery = this.pendingSyncs;
        if (this.openGroup && this.textReadable && this.interceptor?.asSent && this.needsInterception(message)) {
          const sql = message.bytes.toString('utf8', 5, message.bytes.length - 1);
          this.pass(forward, queryMessage(this.interceptor.asSent(sql)));
          continue;
        }
      }
      this.pass(forward, message.bytes);
      if (type === ClientMessage.Terminate) {
        this.terminated = true;
        this.flushForward(forward);
        this.client.end();
        return;
      }
    }
    this.flushForward(forward);
  }

  private needsInterception(message: Message): boolean {
    // latin1 keeps the check allocation-light; ML names are ASCII.
    return this.interceptor!.mentionsMl(message.bytes.toString('latin1', 5, message.bytes.length - 1));
  }

  /** A Parse goes to the server past the interceptor: what it tracked under that name is replaced. */
  private parsePassing(parse: Buffer): void {
    if (parse[5] === 0) {
      this.interceptor?.forget?.('', { bytes: parse, ownOperations: this.backend.operations });
    } else if (this.interceptor?.tracksAny) {
      this.interceptor.forget?.(parse.toString('utf8', 5, parse.indexOf(0, 5)));
    }
  }

  /** Statement text the interceptor may rewrite here: UTF-8, and backslashes as plain characters. */
  private get textReadable(): boolean {
    return this.clientEncoding === 'UTF8' && this.standardConformingStrings === 'on';
  }

  /**
   * A statement with ML calls parsed while a group ended by Flush stays open goes per row, as a Query there does:
   * in the form the in-database functions take (Aurora's call forms made acceptable to PostgreSQL).
   */
  private asSentInOpenGroup(message: Message): Message {
    if (message.type !== ClientMessage.Parse || !this.textReadable || !this.interceptor?.asSent) return message;
    const parse = readParse(message.bytes);
    if (!this.interceptor.mentionsMl(parse.sql)) return message;
    return { ...message, bytes: parseMessage(parse.name, this.interceptor.asSent(parse.sql), parse.paramTypes) };
  }

  private groupMessageNeedsInterception(message: Message): boolean {
    if (message.type === ClientMessage.Parse) return this.interceptor!.mentionsMl(readParse(message.bytes).sql);
    return this.interceptor!.tracks(message, this.backend.operations);
  }

  /** Adds a client message to what goes to the server, noting what the server will owe for it. */
  private pass(forward: Buffer[], message: Buffer): void {
    this.ledger.sent(message);
    forward.push(message);
  }

  private flushForward(forward: Buffer[]): void {
    if (forward.length === 0) return;
    this.writeServer(forward.length === 1 ? forward[0] : Buffer.concat(forward));
    forward.length = 0;
  }

  /**
   * Runs the interceptor's work for `trigger` (the messages that called for
   * it) once PostgreSQL has answered what was sent before, holding the
   * client's `rest` meanwhile.
   */
  private startInterception(work: () => Promise<void>, rest: Message[], trigger: Message[] = []): void {
    this.busy = true;
    this.client.pause();
    this.queue.unshift(...rest);
    const copiesBefore = this.copiesInGroup;
    void (async () => {
      try {
        await this.whenServerIdle();
        if (this.closed) return;
        if (this.copiesInGroup !== copiesBefore) {
          // An extended COPY FROM STDIN began meanwhile: PostgreSQL reads what the client sent next as the copy's
          // input (and fails the copy), so it goes on as written, after the copy's data it may precede.
          this.queue.unshift(...trigger);
        } else {
          if (this.cancelController.signal.aborted) this.cancelController = new AbortController();
          await work();
        }
        await this.runFollowUps();
        // A cancel of this statement PostgreSQL has not received yet would land on the client's next one.
        await this.cancelsDelivered();
      } catch (error) {
        // (A client that left mid-statement closed the session: its work failing then is no fault.)
        if (this.closed) this.logger.debug({ err: error }, 'statement interception ended with the session');
        else this.logger.error({ err: error }, 'statement interception failed');
        this.fatal(`pgsage gateway: ${(error as Error).message}`);
        return;
      }
      this.busy = false;
      if (this.closed) return;
      const queued = this.queue;
      this.queue = [];
      this.client.resume();
      if (queued.length) this.process(queued);
    })();
  }

  private runQuery(message: Message): Promise<void> {
    return this.interceptor!.handleQuery(this, message.bytes.toString('utf8', 5, message.bytes.length - 1), message);
  }

  /**
   * Adds a group's messages, past the interceptor, to what goes to the server,
   * and notes whether the open group still only describes (read before the
   * caller says whether the group stays open).
   */
  private forwardGroup(group: Message[], forward: Buffer[]): void {
    for (const m of group) {
      if (m.type === ClientMessage.Parse) this.parsePassing(m.bytes);
      this.pass(forward, m.bytes);
    }
    this.openGroupDescribesOnly =
      (!this.openGroup || this.openGroupDescribesOnly) && group.every((m) => DESCRIBING.has(m.type));
  }

  /**
   * An open group is still open when the interceptor would start: not one that a Query already sent ends
   * (the interceptor starts once the server has answered it).
   */
  private get groupStaysOpen(): boolean {
    return this.openGroup && !(this.openGroupEndsAtQuery && this.readiesToGroupQuery > 0);
  }

  private setOpenGroup(open: boolean, endsAtQuery = false): void {
    this.openGroup = open;
    this.openGroupEndsAtQuery = open && endsAtQuery;
  }

  /** PostgreSQL failed a statement of the open group and skips the client's messages up to its Sync. */
  private skipsToSync(): boolean {
    return this.ledger.skipping;
  }

  private async runExtended(group: Message[]): Promise<void> {
    await this.interceptor!.handleExtended(this, group);
    // (A group failed by the gateway never reached PostgreSQL.)
    this.setOpenGroup(group[group.length - 1].type === ClientMessage.Flush && !this.skippingUntilSync);
    this.openGroupDescribesOnly = group.every((m) => DESCRIBING.has(m.type));
  }

  /**
   * A group after groups closed by Flush that only parsed and described
   * statements (postgres.js describes a statement with parameters before it
   * binds it, and reads a cursor in groups closed by Flush): the gateway ends
   * those with a Sync of its own, so that its own work can run first, and then
   * handles the group as any. If they failed, PostgreSQL would have skipped
   * the client's messages up to its Sync: so does the gateway, and answers
   * that Sync.
   */
  private async runAfterDescribing(group: Message[]): Promise<void> {
    const failedBefore = this.errorSinceReady;
    const ended = await this.relay([syncMessage()]);
    this.setOpenGroup(false);
    this.errorSinceReady = false;
    if (ended.failed || failedBefore) {
      // (A group ended by Flush: skipped up to the client's Sync, which is answered then.)
      if (group[group.length - 1].type === ClientMessage.Sync) this.toClient(readyForQuery(ended.status));
      else this.skippingUntilSync = true;
      return;
    }
    await this.runExtended(group);
  }

  // ------------------------------------------------------------ SessionControl

  toClient(bytes: Buffer | Buffer[]): void {
    if (Array.isArray(bytes)) {
      this.client.cork();
      for (const b of bytes) this.writeClient(b);
      this.client.uncork();
    } else {
      this.writeClient(bytes);
    }
  }

  forward(bytes: Buffer | Buffer[], syncPoints: number, errors?: ClientErrors): void {
    const messages = Array.isArray(bytes) ? bytes : [bytes];
    for (const message of messages) this.ledger.sentAll(message);
    // (A COPY FROM STDIN it starts ignores a Sync sent with it: see lastSyncExtended.)
    const last = messages.findLast((m) => m[0] === ClientMessage.Sync || m[0] === ClientMessage.Query);
    if (last) this.lastSyncExtended = last[0] === ClientMessage.Sync;
    this.pendingSyncs += syncPoints;
    this.clientErrors = errors?.needed ? errors : undefined;
    this.writeServer(bytes);
  }

  cancelBackend(): void {
    this.options.cancelBackend();
  }

  afterIdle(task: () => Promise<void>): void {
    this.followUps.push(task);
  }

  failUntilSync(error?: Buffer): void {
    if (error) this.toClient(error);
    this.skippingUntilSync = true;
  }

  /** Waits until PostgreSQL has received the cancels handed to it (see cancel). */
  private async cancelsDelivered(): Promise<void> {
    while (this.cancelsOnTheirWay.size > 0) await Promise.all(this.cancelsOnTheirWay);
  }

  /** Runs the pending follow-up tasks if the backend is idle. */
  private async runFollowUps(): Promise<void> {
    while (this.followUps.length > 0 && this.pendingSyncs === 0 && !this.openGroup && !this.closed) {
      // From here the client has no statement running (cancels wait, see cancel).
      this.runningFollowUps = true;
      try {
        // A cancel PostgreSQL has not received yet would land on a follow-up; once received, the idle backend drops it.
        await this.cancelsDelivered();
        await this.runTasks(this.followUps.splice(0));
      } finally {
        this.runningFollowUps = false;
      }
    }
    const deferred = this.cancelAfterFollowUps;
    this.cancelAfterFollowUps = undefined;
    // The client sent statements meanwhile (held, or still unread while it was paused): the cancel is theirs.
    const sentMeanwhile = this.queue.length > 0 || this.client.readableLength > 0;
    // (PostgreSQL's side only: the statement's interception, still to start, resets the gateway's signal.)
    if (deferred && sentMeanwhile && !this.closed) void this.cancel(deferred.toServer).finally(deferred.settle);
    else deferred?.settle();
  }

  /**
   * Follow-ups inside the client's transaction block run under a savepoint:
   * one that fails, or that a cancel lands on (pg_cancel_backend from another
   * session, which PostgreSQL ignores when it finds the session idle, as the
   * client believes it), would abort the block unseen, and the client's
   * COMMIT answer ROLLBACK. Rolled back to, and tried again after a cancel.
   * Only a cancel that lands on the SAVEPOINT itself still aborts the block.
   */
  private async runTasks(tasks: (() => Promise<void>)[]): Promise<void> {
    const failed = (error: unknown) => {
      if (!this.closed) this.logger.warn({ err: error }, 'follow-up after a statement failed');
    };
    if (this.backend.status !== 'T') {
      for (const task of tasks) await task().catch(failed);
      return;
    }
    let left = tasks;
    for (let attempt = 1; attempt <= FOLLOW_UP_TRIES; attempt++) {
      try {
        await this.backend.query(`SAVEPOINT ${FOLLOW_UP_SAVEPOINT}`);
      } catch (error) {
        return this.blockLost(error);
      }
      let failure: unknown;
      let failedTask: (() => Promise<void>) | undefined;
      try {
        for (const task of left) {
          failedTask = task;
          await task();
        }
        failedTask = undefined;
        await this.backend.query(`RELEASE SAVEPOINT ${FOLLOW_UP_SAVEPOINT}`);
        return;
      } catch (error) {
        failure = error;
      }
      let restored = false;
      for (let tries = 0; tries < FOLLOW_UP_TRIES && !restored && !this.closed; tries++) {
        restored = await this.backend
          .query(`ROLLBACK TO SAVEPOINT ${FOLLOW_UP_SAVEPOINT}; RELEASE SAVEPOINT ${FOLLOW_UP_SAVEPOINT}`)
          .then(
            () => true,
            () => false,
          );
      }
      if (!restored) return this.blockLost(failure);
      const cancelled = failure instanceof BackendError && failure.code === SqlState.queryCanceled;
      if (!cancelled) {
        // (The others, undone with it, are run again.)
        failed(failure);
        left = left.filter((task) => task !== failedTask);
        if (left.length === 0) return;
      }
    }
  }

  /**
   * The gateway's follow-ups left the client's block aborted (a cancel on their SAVEPOINT itself): its next
   * statement meets PostgreSQL's 25P02, and a COMMIT answers ROLLBACK. Telling the client more would take
   * holding the group's ReadyForQuery until the follow-ups have run.
   */
  private blockLost(error: unknown): void {
    if (this.backend.status === 'E') this.interceptor?.noteBlockLost?.();
    if (!this.closed) {
      this.logger.warn(
        { err: error },
        "a cancel aborted the client's transaction block during the gateway's follow-ups",
      );
    }
  }

  relay(
    bytes: Buffer | Buffer[],
    rewrite?: (message: Message) => Buffer | null,
  ): Promise<{ status: TransactionStatus; failed: boolean }> {
    this.clientErrors = undefined;
    return new Promise((resolve, reject) => {
      let failed = false;
      const onAbort = () => {
        this.relayHandler = undefined;
        reject(new Error('server connection closed'));
      };
      this.server.once('close', onAbort);
      this.relayHandler = (message) => {
        if (message.type === ServerMessage.ErrorResponse) failed = true;
        if (message.type === ServerMessage.ReadyForQuery) {
          this.relayHandler = undefined;
          // Everything sent before is answered, some of it read here.
          this.ledger.clear();
          this.server.off('close', onAbort);
          this.backend.status = String.fromCharCode(message.bytes[5]) as TransactionStatus;
          resolve({ status: this.backend.status, failed });
          return;
        }
        if (message.type === ServerMessage.BackendKeyData) this.observeServerMessage(message);
        const out = rewrite ? rewrite(message) : message.bytes;
        if (out) this.writeClient(out);
      };
      this.writeServer(bytes);
    });
  }

  // ------------------------------------------------------------ plumbing

  private writeClient(bytes: Buffer): void {
    if (this.closed) return;
    if (!this.client.write(bytes)) this.server.pause();
  }

  private writeServer(bytes: Buffer | Buffer[]): void {
    if (this.closed) return;
    if (Array.isArray(bytes)) {
      this.server.cork();
      let ok = true;
      for (const b of bytes) ok = this.server.write(b) && ok;
      this.server.uncork();
      if (!ok) this.client.pause();
    } else if (!this.server.write(bytes)) {
      this.client.pause();
    }
  }

  /** Ends the session with a FATAL error the client can read. */
  private fatal(message: string): void {
    if (this.closed) return;
    this.logger.warn({ message }, 'closing session');
    this.client.end(errorResponse({ severity: 'FATAL', code: '08P01', message }));
    this.server.destroy();
  }

  private close(who: string, error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    // Nothing more will be answered: whoever waits for the backend to be idle stops waiting.
    this.wakeIdleWaiters();
    // PostgreSQL only notices a vanished client at its next read or write; a
    // long statement would run on, so cancel it explicitly. (Not one sent before a
    // Terminate PostgreSQL has: it finishes and keeps it, as it would without the gateway.)
    if (who === 'client' && !this.terminated && (this.pendingSyncs > 0 || this.busy)) this.options.cancelBackend();
    this.cancelController.abort(new Error(`${who} connection closed`));
    this.cancelAfterFollowUps?.settle();
    this.backend.fail(new Error(`${who} connection closed`));
    this.logger.debug({ who, err: error?.message }, 'session closed');
    // (After PostgreSQL's FATAL, the client gets what was written before the end.)
    if (this.toldWhyEnded) {
      // (Not held open by a client that keeps its side open or reads nothing more.)
      this.client.end(() => this.client.destroy());
      setTimeout(() => this.client.destroy(), CLIENT_END_GRACE_MS).unref();
    } else {
      this.client.destroy();
    }
    this.server.destroy();
    this.interceptor?.close?.();
    this.options.onClose();
  }
}
