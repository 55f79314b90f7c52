import net, { type Server, type Socket } from 'node:net';
import tls from 'node:tls';
import { closeServer, listenOn } from '../util/listen.js';
import type { Logger } from '../util/log.js';
import { booleanShown } from '../util/pg-boolean.js';
import {
  CANCEL_REQUEST_CODE,
  errorResponse,
  GSSENC_REQUEST_CODE,
  MAX_STARTUP_PACKET,
  readStartupParameters,
  SSL_REQUEST_CODE,
  startupPacketWith,
} from './protocol.js';
import { Session, type SessionInterceptor } from './session.js';

/** How long a session's follow-up statements wait, at most, for a cancel to reach PostgreSQL. */
const CANCEL_SETTLE_MS = 2000;
/** How long a cancel's connection, ended, waits for its client's side to close too. */
const CANCEL_CLOSE_GRACE_MS = 1000;

export interface GatewayOptions {
  host: string;
  port: number;
  /** The PostgreSQL server every session is relayed to. */
  upstream: { host: string; port: number };
  /** Creates the ML interceptor for a new session; omitted → pure relay. */
  interceptorFor?: (startup: Map<string, string>, logger: Logger) => SessionInterceptor | undefined;
  logger: Logger;
  /** Clients that have not finished the startup packet by then are dropped. */
  startupTimeoutMs?: number;
  /** TLS: SSLRequest is answered 'S' and the session runs over TLS; `require` refuses plain-text sessions. */
  tls?: { context: tls.SecureContext; require: boolean };
}

const READ_BUFFER_BYTES = 64 * 1024;

/**
 * How long the gateway reads PostgreSQL's sockets in one turn of the event
 * loop. libuv reads a readable socket up to 32 times in a row (2 MB of 64 KB
 * reads) before it looks at anything else, and each read of a batch
 * statement's argument rows is parsed, deduplicated and batched then and
 * there: a turn would hold the loop (other sessions, cancels, timers) for
 * 50–250 ms. Past this budget a socket stops reading until the loop has gone
 * round once (setImmediate); the kernel keeps the data meanwhile.
 */
const READ_TURN_BUDGET_MS = 10;

/** When the current turn's first read began (-1: no read yet this turn), and the sockets it paused. */
let readTurnStart = -1;
const pausedForTurn: Socket[] = [];

function startReadTurn(): void {
  if (readTurnStart >= 0) return;
  readTurnStart = performance.now();
  setImmediate(endReadTurn);
}

function endReadTurn(): void {
  readTurnStart = -1;
  for (const socket of pausedForTurn.splice(0)) {
    // (Not one the session paused meanwhile, for backpressure: it resumes that one itself.)
    if (!socket.destroyed && !socket.isPaused()) socket.resume();
  }
}

/** The turn's read budget is spent: the socket stops reading until the next turn. */
function readTurnSpent(socket: Socket): boolean {
  if (performance.now() - readTurnStart < READ_TURN_BUDGET_MS) return false;
  pausedForTurn.push(socket);
  return true;
}

/**
 * Reads that came past the turn's budget for sessions doing the gateway's own work (a batch statement's argument
 * rows): each busy socket would still get its one read a turn, and 16 of them hold the loop for 16 reads' work (a
 * point read of another session waited 100–300 ms). Such a read is handled in a later turn instead, oldest first,
 * within the same budget; its socket reads no more until then (its reads keep their order). Plain relays are not
 * held back.
 */
const heldReads: { socket: Socket; deliver: () => void }[] = [];
const heldPerSocket = new WeakMap<Socket, number>();
let heldReadsScheduled = false;

function holdRead(socket: Socket, deliver: () => void): void {
  heldReads.push({ socket, deliver });
  heldPerSocket.set(socket, (heldPerSocket.get(socket) ?? 0) + 1);
  scheduleHeldReads();
}

function scheduleHeldReads(): void {
  if (heldReadsScheduled) return;
  heldReadsScheduled = true;
  setImmediate(deliverHeldReads);
}

function deliverHeldReads(): void {
  heldReadsScheduled = false;
  const started = performance.now();
  while (heldReads.length > 0 && performance.now() - started < READ_TURN_BUDGET_MS) {
    const { socket, deliver } = heldReads.shift()!;
    const left = (heldPerSocket.get(socket) ?? 1) - 1;
    heldPerSocket.set(socket, left);
    if (socket.destroyed) continue;
    deliver();
    // (Not one the session paused meanwhile, for backpressure: it resumes that one itself.)
    if (left === 0 && !socket.isPaused()) socket.resume();
  }
  if (heldReads.length > 0) scheduleHeldReads();
}

function keyOf(pid: number, key: Buffer): string {
  return `${pid}:${key.toString('hex')}`;
}

/**
 * The PostgreSQL wire-protocol front door: answers SSLRequest with 'S' and
 * upgrades the connection when it has a certificate (else 'N'; GSSENCRequest
 * always 'N'), forwards CancelRequest to the backend that owns the key, and
 * relays every other connection to the upstream server.
 */
export class GatewayServer {
  private server: Server | undefined;
  private readonly sessions = new Map<string, Session>();
  private readonly sockets = new Set<Socket>();
  /** Connections that carried a CancelRequest: closed once it is forwarded, not when their client half-closes. */
  private readonly cancelRequests = new WeakSet<Socket>();

  constructor(private readonly options: GatewayOptions) {}

  async listen(): Promise<number> {
    // Half-open: a client may half-close its CancelRequest connection as it sends the request, and must still
    // see it closed only once PostgreSQL has acted on the request (see accept).
    const server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    server.on('error', (error) => this.options.logger.error({ err: error }, 'gateway listener error'));
    this.server = server;
    await listenOn(server, this.options.port, this.options.host);
    return (server.address() as net.AddressInfo).port;
  }

  get port(): number {
    return (this.server!.address() as net.AddressInfo).port;
  }

  get sessionCount(): number {
    return this.sockets.size;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    await closeServer(server, this.sockets);
  }

  private accept(client: Socket): void {
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    this.endWithClient(client, client);
    client.setNoDelay(true);
    const timer = setTimeout(() => client.destroy(), this.options.startupTimeoutMs ?? 60_000);
    // (A connection that closes before its startup packet must not keep the process up until the timeout.)
    client.on('close', () => clearTimeout(timer));
    this.readStartup(client, timer, false, client);
  }

  /**
   * Ends `socket` when its client ends its side, as without allowHalfOpen,
   * unless it carried a CancelRequest (`raw`, the connection under it, is
   * the one noted).
   */
  private endWithClient(socket: Socket, raw: Socket): void {
    socket.on('end', () => {
      if (!this.cancelRequests.has(raw)) socket.end();
    });
  }

  /** Reads the startup packet (after any SSLRequest/GSSENCRequest) from a plain or TLS socket (over `raw`). */
  private readStartup(client: Socket, timer: NodeJS.Timeout, encrypted: boolean, raw: Socket): void {
    const { logger } = this.options;
    client.on('error', (error) => logger.debug({ err: error.message }, 'client error before startup'));
    let pending: Buffer = Buffer.alloc(0);

    const onData = (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= 8) {
        const length = pending.readInt32BE(0);
        if (length < 8 || length > MAX_STARTUP_PACKET) {
          this.reject(client, '08P01', 'invalid startup packet length');
          return;
        }
        if (pending.length < length) return;
        const packet = pending.subarray(0, length);
        const rest = pending.subarray(length);
        pending = Buffer.alloc(0);
        const code = packet.readInt32BE(4);
        if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
          // Nothing may follow the request before the answer (a client cannot have meant it: CVE-2021-23214).
          if (rest.length > 0 || encrypted) {
            this.reject(client, '08P01', 'unexpected data after encryption request');
            return;
          }
          if (code === SSL_REQUEST_CODE && this.options.tls) {
            client.off('data', onData);
            client.write('S');
            const secure = new tls.TLSSocket(client, { isServer: true, secureContext: this.options.tls.context });
            secure.setNoDelay(true);
            // (It takes over the raw socket, half-open too.)
            this.endWithClient(secure, raw);
            this.readStartup(secure, timer, true, raw);
            return;
          }
          // 'N' lets the client continue in plain text (or give up if it requires encryption).
          client.write('N');
          continue;
        }
        client.off('data', onData);
        clearTimeout(timer);
        if (code === CANCEL_REQUEST_CODE) {
          // Closed once PostgreSQL has the request, as PostgreSQL closes it: a client (libpq, postgres.js) that
          // waits for that before its next statement must not have this cancel land on it.
          this.cancelRequests.add(raw);
          // (Ended, not destroyed: over TLS the client expects the close_notify.)
          void this.forwardCancel(packet).finally(() => {
            client.end();
            setTimeout(() => client.destroy(), CANCEL_CLOSE_GRACE_MS).unref();
          });
          return;
        }
        if (code >> 16 !== 3) {
          this.reject(client, '0A000', `unsupported frontend protocol ${code >> 16}.${code & 0xffff}`);
          return;
        }
        if (this.options.tls?.require && !encrypted) {
          this.reject(
            client,
            '28000',
            'pgsage accepts SSL connections only (tls.gateway.require); connect with sslmode=require',
          );
          return;
        }
        this.connectUpstream(client, Buffer.from(packet), rest);
        return;
      }
    };
    client.on('data', onData);
  }

  private reject(client: Socket, code: string, message: string): void {
    client.end(errorResponse({ severity: 'FATAL', code, message }));
  }

  private forwardCancel(packet: Buffer): Promise<void> {
    if (packet.length < 16) return Promise.resolve();
    const pid = packet.readInt32BE(8);
    const key = packet.subarray(12);
    const session = this.sessions.get(keyOf(pid, key));
    const toServer = () => this.sendCancel(Buffer.from(packet));
    return session ? session.cancel(toServer) : toServer();
  }

  /**
   * Hands a CancelRequest to PostgreSQL; settles once the server has acted on
   * it (it closes the connection then), or after CANCEL_SETTLE_MS at most, so
   * that a server slow to answer cannot hold the session's follow-ups.
   */
  private sendCancel(packet: Buffer): Promise<void> {
    return new Promise((resolve) => {
      const upstream = net.connect(this.options.upstream.port, this.options.upstream.host, () => {
        upstream.end(packet);
      });
      const settle = setTimeout(() => {
        upstream.destroy();
        resolve();
      }, CANCEL_SETTLE_MS).unref();
      const done = () => {
        clearTimeout(settle);
        resolve();
      };
      upstream.on('error', (error) => {
        this.options.logger.warn({ err: error.message }, 'cancel forwarding failed');
        done();
      });
      upstream.on('close', done);
    });
  }

  private connectUpstream(client: Socket, startupPacket: Buffer, rest: Buffer): void {
    const { logger } = this.options;
    let parameters: Map<string, string>;
    try {
      parameters = readStartupParameters(startupPacket);
    } catch {
      this.reject(client, '08P01', 'malformed startup packet');
      return;
    }
    client.pause();
    // Reads from PostgreSQL land in a reused buffer (no allocation per read); when
    // the session still holds the last chunk (a queued write), the next read gets new memory.
    let readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
    let session: Session | undefined;
    const server: Socket = net.connect({
      port: this.options.upstream.port,
      host: this.options.upstream.host,
      onread: {
        buffer: () => readBuffer,
        callback: (bytes: number, buffer: Uint8Array): boolean => {
          startReadTurn();
          const chunk = Buffer.from(buffer.buffer, buffer.byteOffset, bytes);
          const held = (heldPerSocket.get(server) ?? 0) > 0;
          if (
            session &&
            (held || (performance.now() - readTurnStart >= READ_TURN_BUDGET_MS && !session.relaysDirectly()))
          ) {
            const receiver = session;
            holdRead(server, () => receiver.receiveServerData(chunk));
            readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
            return false;
          }
          const retained = session?.receiveServerData(chunk) ?? true;
          if (retained) readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
          // false: reading stops (readStop) until endReadTurn resumes it.
          return !readTurnSpent(server);
        },
      },
    });
    server.setNoDelay(true);
    const sessionLogger = logger.child({ user: parameters.get('user'), database: parameters.get('database') });
    server.once('error', (error) => {
      sessionLogger.warn({ err: error.message }, 'cannot reach PostgreSQL');
      this.reject(client, '08006', `pgsage gateway cannot reach PostgreSQL: ${error.message}`);
    });
    server.once('connect', () => {
      server.removeAllListeners('error');
      let backendKey: string | undefined;
      let cancelPacket: Buffer | undefined;
      session = new Session({
        externalServerReads: true,
        client,
        server,
        startupParameters: parameters,
        interceptor: this.options.interceptorFor?.(parameters, sessionLogger),
        logger: sessionLogger,
        onBackendKey: (pid, key) => {
          backendKey = keyOf(pid, key);
          if (session) this.sessions.set(backendKey, session);
          cancelPacket = Buffer.alloc(12 + key.length);
          cancelPacket.writeInt32BE(cancelPacket.length, 0);
          cancelPacket.writeInt32BE(CANCEL_REQUEST_CODE, 4);
          cancelPacket.writeInt32BE(pid, 8);
          key.copy(cancelPacket, 12);
        },
        cancelBackend: () => {
          if (cancelPacket) this.forwardCancel(cancelPacket);
        },
        onClose: () => {
          if (backendKey) this.sessions.delete(backendKey);
        },
      });
      server.write(withPgsageNames(startupPacket, parameters));
      if (rest.length) client.unshift(rest);
      client.resume();
    });
  }
}

/** Aurora's setting, set when the session starts, is pgsage's (PostgreSQL refuses a name it does not know). */
const AURORA_OPTION = /(^|\s)(-c\s*|--)apg_enable_function_migration=/;

/** The startup packet with Aurora's name for batch mode's setting, as a parameter or in `options`, made pgsage's. */
function withPgsageNames(packet: Buffer, parameters: Map<string, string>): Buffer {
  const options = parameters.get('options');
  if (!parameters.has('apg_enable_function_migration') && !(options && AURORA_OPTION.test(options))) return packet;
  const renamed = new Map<string, string>();
  // (A boolean value written as PostgreSQL shows one, on or off, as SET's is: see rewriteStatementText.)
  const shown = (value: string) => booleanShown(value) ?? value;
  for (const [name, value] of parameters) {
    if (name === 'apg_enable_function_migration') renamed.set('aws_ml.enable_function_migration', shown(value));
    else if (name === 'options') {
      renamed.set(
        name,
        value.replace(
          new RegExp(`${AURORA_OPTION.source}(\\S*)`, 'g'),
          (_all, start: string, flag: string, setting: string) =>
            `${start}${flag}aws_ml.enable_function_migration=${shown(setting)}`,
        ),
      );
    } else renamed.set(name, value);
  }
  return startupPacketWith(packet, renamed);
}
