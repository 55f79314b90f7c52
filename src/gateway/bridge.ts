import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import net, { type Server, type Socket } from 'node:net';
import { asSqlError, SqlError, SqlState } from '../util/errors.js';
import { closeServer, listenOn } from '../util/listen.js';
import type { Logger } from '../util/log.js';
import {
  authenticationOk,
  backendKeyData,
  CANCEL_REQUEST_CODE,
  ClientMessage,
  commandComplete,
  dataRow,
  errorResponse,
  GSSENC_REQUEST_CODE,
  MAX_STARTUP_PACKET,
  type Message,
  MessageFramer,
  MessageReader,
  MessageWriter,
  parameterStatus,
  readStartupParameters,
  readyForQuery,
  rowDescription,
  SSL_REQUEST_CODE,
} from './protocol.js';
import { makeVerifier, ScramError, ScramExchange, type ScramVerifier } from './scram.js';

export const BRIDGE_USER = 'aws_ml_bridge';

/**
 * The application_name of connections whose requests are signed (aws_ml 1.4's bridge_call). A role that may
 * use dblink can name a connection `aws_ml_bridge` and so point the functions at a bridge of its own, or send
 * requests over the one a SECURITY DEFINER function opened. Under the bridge secret, the request carries a
 * nonce and a MAC, and the answer a MAC of the nonce and itself, which bridge_call checks. Both bodies are
 * base64 of their UTF-8 (dblink sends text in the database's encoding, which the bridge does not convert).
 */
export const SIGNED_APPLICATION = 'aws_ml_signed';

/** The MAC of a signed request or answer (`direction`), as bridge_call computes it. */
export function bridgeMac(secret: string, direction: 'request' | 'reply', nonce: string, body: string): string {
  return createHash('sha256').update(`${secret}:${direction}:${nonce}:${body}`).digest('hex');
}

/** Answers one per-row request from an in-database function. Throw SqlError for a SQL-facing failure. */
export type BridgeHandler = (request: Record<string, unknown>, signal: AbortSignal) => Promise<unknown>;

export interface BridgeOptions {
  host: string;
  port: number;
  secret: string;
  handle: BridgeHandler;
  logger: Logger;
}

const keyOf = (pid: number, secret: Buffer) => `${pid}:${secret.toString('hex')}`;

const authRequest = (code: number, payload?: Buffer) => {
  const w = new MessageWriter().begin('R').int32(code);
  if (payload) w.bytes(payload);
  return w.end().toBuffer();
};

/**
 * The endpoint the in-database functions reach through dblink for the per-row
 * path. It speaks just enough of the PostgreSQL protocol for libpq: SCRAM
 * authentication with a secret only the database server knows, then each
 * simple Query is one JSON request answered by a one-row, one-column result.
 */
export class BridgeServer {
  private server: Server | undefined;
  private readonly verifier: ScramVerifier;
  private readonly sockets = new Set<Socket>();
  /**
   * Per connection, by the cancel key it was given (BackendKeyData): stops its
   * call in flight. dblink sends a CancelRequest when the statement that made
   * the call is cancelled or times out, and then waits for the call's answer.
   */
  private readonly cancels = new Map<string, () => void>();
  /** Calls answered since start, for monitoring. */
  calls = 0;

  constructor(private readonly options: BridgeOptions) {
    this.verifier = makeVerifier(options.secret);
  }

  /** Listens; listening again after close() keeps the port the database was told about. */
  async listen(): Promise<number> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    await listenOn(server, this.boundPort ?? this.options.port, this.options.host);
    this.boundPort = this.port;
    return this.port;
  }

  private boundPort: number | undefined;

  get port(): number {
    return (this.server!.address() as net.AddressInfo).port;
  }

  /** libpq connection string the database uses to reach this bridge (contains the secret). */
  conninfo(): string {
    const host = this.options.host === '0.0.0.0' || this.options.host === '::' ? '127.0.0.1' : this.options.host;
    return `host=${host} port=${this.port} user=${BRIDGE_USER} dbname=${BRIDGE_USER} password=${this.options.secret} sslmode=disable connect_timeout=10 application_name=aws_ml`;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    await closeServer(server, this.sockets);
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => {});
    const controller = new AbortController();
    /** The call being answered, stopped by a CancelRequest with this connection's key. */
    let call: AbortController | undefined;
    let cancelKey: string | undefined;
    socket.on('close', () => {
      this.sockets.delete(socket);
      if (cancelKey) this.cancels.delete(cancelKey);
      controller.abort(new Error('bridge client disconnected'));
    });
    const logger = this.options.logger;
    const fail = (code: string, message: string) => {
      socket.end(errorResponse({ severity: 'FATAL', code, message }));
    };

    let phase: 'startup' | 'sasl-initial' | 'sasl-final' | 'ready' = 'startup';
    let signed = false;
    let exchange: ScramExchange | undefined;
    let pending: Buffer = Buffer.alloc(0);
    const framer = new MessageFramer();
    let chain = Promise.resolve();

    const onStartupPacket = (packet: Buffer) => {
      const code = packet.readInt32BE(4);
      if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
        socket.write('N');
        return;
      }
      if (code === CANCEL_REQUEST_CODE) {
        // (pid, then the secret key: the rest of the packet.)
        this.cancels.get(keyOf(packet.readInt32BE(8), packet.subarray(12)))?.();
        socket.destroy();
        return;
      }
      const params = readStartupParameters(packet);
      if (params.get('user') !== BRIDGE_USER) {
        fail('28000', 'this port only serves the aws_ml extension');
        return;
      }
      signed = params.get('application_name') === SIGNED_APPLICATION;
      exchange = new ScramExchange(this.verifier);
      socket.write(authRequest(10, Buffer.from('SCRAM-SHA-256\0\0', 'latin1')));
      phase = 'sasl-initial';
    };

    const onMessage = (message: Message) => {
      try {
        if (phase === 'sasl-initial' || phase === 'sasl-final') {
          if (message.type !== ClientMessage.PasswordMessage) throw new ScramError('expected a SASL response');
          const reader = new MessageReader(message.bytes);
          if (phase === 'sasl-initial') {
            const mechanism = reader.cstring();
            if (mechanism !== 'SCRAM-SHA-256') throw new ScramError(`unsupported SASL mechanism ${mechanism}`);
            const length = reader.int32();
            const first = exchange!.start(reader.bytes(length).toString('utf8'));
            socket.write(authRequest(11, Buffer.from(first)));
            phase = 'sasl-final';
          } else {
            const final = exchange!.finish(reader.rest().toString('utf8'));
            const pid = randomBytes(4).readInt32BE(0) & 0x7fffffff;
            const secret = randomBytes(4);
            cancelKey = keyOf(pid, secret);
            this.cancels.set(cancelKey, () =>
              call?.abort(new SqlError(SqlState.queryCanceled, 'canceling statement due to user request')),
            );
            socket.write(
              Buffer.concat([
                authRequest(12, Buffer.from(final)),
                authenticationOk(),
                parameterStatus('server_version', '18.0'),
                parameterStatus('client_encoding', 'UTF8'),
                parameterStatus('server_encoding', 'UTF8'),
                parameterStatus('standard_conforming_strings', 'on'),
                parameterStatus('DateStyle', 'ISO, MDY'),
                parameterStatus('integer_datetimes', 'on'),
                backendKeyData(pid, secret),
                readyForQuery('I'),
              ]),
            );
            phase = 'ready';
          }
          return;
        }
        if (message.type === ClientMessage.Terminate) {
          socket.end();
          return;
        }
        if (message.type !== ClientMessage.Query) {
          socket.write(
            Buffer.concat([
              errorResponse({ code: '0A000', message: 'the aws_ml bridge only accepts simple queries' }),
              readyForQuery('I'),
            ]),
          );
          return;
        }
        const text = message.bytes.toString('utf8', 5, message.bytes.length - 1);
        // (Whatever goes wrong with one answer, the bridge serves on: the connection ends, not the process.)
        chain = chain
          .then(() => {
            call = new AbortController();
            return this.answer(socket, text, signed, AbortSignal.any([controller.signal, call.signal]));
          })
          .catch((error) => {
            logger.error({ err: error }, 'bridge answer failed');
            socket.destroy();
          });
      } catch (error) {
        if (error instanceof ScramError) {
          logger.warn({ remote: socket.remoteAddress }, 'bridge authentication failed');
          fail('28P01', `password authentication failed for user "${BRIDGE_USER}"`);
        } else {
          fail('08P01', (error as Error).message);
        }
      }
    };

    socket.on('data', (chunk: Buffer) => {
      try {
        if (phase === 'startup') {
          pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
          while (phase === 'startup' && pending.length >= 8) {
            const length = pending.readInt32BE(0);
            if (length < 8 || length > MAX_STARTUP_PACKET) {
              fail('08P01', 'invalid startup packet');
              return;
            }
            if (pending.length < length) return;
            const packet = pending.subarray(0, length);
            pending = pending.subarray(length);
            onStartupPacket(packet);
          }
          if (phase === 'startup' || pending.length === 0) return;
          chunk = pending;
          pending = Buffer.alloc(0);
        }
        const messages: Message[] = [];
        framer.push(chunk, messages);
        for (const message of messages) onMessage(message);
      } catch (error) {
        fail('08P01', (error as Error).message);
      }
    });
  }

  private async answer(socket: Socket, text: string, signed: boolean, signal: AbortSignal): Promise<void> {
    if (!text.trimStart().startsWith('{')) {
      // libpq/dblink housekeeping such as "set client_encoding to 'UTF8'".
      socket.write(Buffer.concat([commandComplete('SET'), readyForQuery('I')]));
      return;
    }
    let reply: unknown;
    let nonce: string | undefined;
    try {
      let request: Record<string, unknown>;
      if (signed) {
        const envelope = JSON.parse(text) as Record<string, unknown>;
        const { body, mac } = envelope;
        if (typeof envelope.nonce !== 'string' || typeof body !== 'string' || typeof mac !== 'string') {
          throw new SqlError(SqlState.invalidAuthorization, 'the pgsage bridge takes only requests aws_ml signed');
        }
        const expected = Buffer.from(bridgeMac(this.options.secret, 'request', envelope.nonce, body));
        const given = Buffer.from(mac);
        if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
          throw new SqlError(SqlState.invalidAuthorization, 'the pgsage bridge takes only requests aws_ml signed');
        }
        nonce = envelope.nonce;
        request = JSON.parse(Buffer.from(body, 'base64').toString('utf8')) as Record<string, unknown>;
      } else {
        request = JSON.parse(text) as Record<string, unknown>;
      }
      this.calls += 1;
      reply = await this.options.handle(request, signal);
      if (reply === undefined) throw new SqlError(SqlState.internalError, 'the ML service gave no answer');
    } catch (error) {
      const sqlError = asSqlError(error);
      if (sqlError.sqlstate === 'XX000') this.options.logger.error({ err: error }, 'bridge request failed');
      reply = {
        error: { code: sqlError.sqlstate, message: sqlError.message, detail: sqlError.detail, hint: sqlError.hint },
      };
    }
    let answer = JSON.stringify(reply);
    if (nonce !== undefined) {
      const body = Buffer.from(answer, 'utf8').toString('base64');
      answer = JSON.stringify({ body, mac: bridgeMac(this.options.secret, 'reply', nonce, body) });
    }
    socket.write(
      Buffer.concat([
        rowDescription([{ name: 'r' }]),
        dataRow([answer]),
        commandComplete('SELECT 1'),
        readyForQuery('I'),
      ]),
    );
  }
}
