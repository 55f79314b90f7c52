import type { BoundValues } from '../sql/inline-parameters.js';
import { SqlError, SqlState } from '../util/errors.js';
import {
  bindMessage,
  type ColumnDescription,
  closeMessage,
  copyDataMessage,
  copyDoneMessage,
  copyFailMessage,
  describeMessage,
  executeMessage,
  type Message,
  parseFields,
  parseMessage,
  queryMessage,
  readDataRow,
  readParameterDescription,
  readRowDescription,
  ServerMessage,
  syncMessage,
  type TransactionStatus,
} from './protocol.js';

/** An error PostgreSQL reported for one of the gateway's own statements. */
export class BackendError extends Error {
  constructor(
    readonly fields: Record<string, string>,
    readonly raw: Buffer,
  ) {
    super(fields.M ?? 'error');
    this.name = 'BackendError';
  }

  get code(): string {
    return this.fields.C ?? 'XX000';
  }
}

/** The gateway's own failure while handling the answer (no server message: `raw` is empty). */
function gatewayFailure(failure: unknown): BackendError {
  if (failure instanceof SqlError) {
    const fields: Record<string, string> = { C: failure.sqlstate, M: failure.message };
    if (failure.detail) fields.D = failure.detail;
    if (failure.hint) fields.H = failure.hint;
    return new BackendError(fields, Buffer.alloc(0));
  }
  return new BackendError({ C: 'XX000', M: (failure as Error).message }, Buffer.alloc(0));
}

export interface QueryResult {
  columns: ColumnDescription[];
  rows: (string | null)[][];
  tags: string[];
}

/**
 * Receives the server's messages while the gateway, not the client, owns the
 * backend connection. Exactly one operation runs at a time; each ends at the
 * server's ReadyForQuery.
 */
export interface MessageSink {
  onMessage(message: Message): void;
}

type Writer = (bytes: Buffer | Buffer[]) => void;

/**
 * A `COPY … FROM STDIN` sent right after one of the gateway's queries, which keeps PostgreSQL in a statement while
 * the gateway still reads that query's rows. PostgreSQL may finish sending them long before the gateway has read
 * them (megabytes wait in the sockets), and a cancel it gets while idle (`pg_cancel_backend` from another session)
 * it drops: in the COPY it takes the cancel as the next heartbeat row comes. Ended with CopyDone once the query's
 * rows are read; its rows must go nowhere (`… WHERE false`).
 */
export interface Hold {
  sql: string;
  /** One row of the COPY's table, written every `everyMs`. */
  heartbeat: Buffer;
  everyMs: number;
}

/**
 * The gateway's own use of a client's backend session: statements run inside
 * the client's transaction and see its uncommitted rows and temp tables.
 */
export class BackendChannel {
  private sink: MessageSink | undefined;
  private serverGone: Error | undefined;
  status: TransactionStatus = 'I';
  /**
   * Stops and restarts reading the server connection, when the session
   * provides it: a slow consumer of `copyOut` data pauses here and PostgreSQL
   * waits, instead of the gateway buffering the output without bound.
   */
  flowControl: { pause(): void; resume(): void } | undefined;
  /**
   * How many of the gateway's own operations the session has run. Each one
   * drops or replaces the client's unnamed prepared statement.
   */
  operations = 0;

  constructor(private readonly write: Writer) {}

  /** Routes a server message; returns false when nobody inside the gateway is waiting for it. */
  deliver(message: Message): boolean {
    if (!this.sink) return false;
    this.sink.onMessage(message);
    return true;
  }

  get busy(): boolean {
    return this.sink !== undefined;
  }

  /** Called when the server connection closes: pending operations fail. */
  fail(error: Error): void {
    this.serverGone = error;
    const sink = this.sink as (MessageSink & { abort?: (e: Error) => void }) | undefined;
    sink?.abort?.(error);
  }

  /**
   * Sends bytes and hands every server message to `handle` until ReadyForQuery.
   * Resolves with the transaction status; the first ErrorResponse is returned too.
   */
  run(
    bytes: Buffer | Buffer[],
    handle: (message: Message) => void = () => {},
    hold?: Hold,
  ): Promise<{ status: TransactionStatus; error?: BackendError }> {
    if (this.serverGone) return Promise.reject(this.serverGone);
    if (this.sink) return Promise.reject(new Error('backend channel is busy'));
    return new Promise((resolve, reject) => {
      let error: BackendError | undefined;
      let handlerFailed = false;
      /** The hold's part of the answer has begun (the query's ReadyForQuery came), and its failure. */
      let holding = false;
      let holdError: BackendError | undefined;
      const heartbeats = hold && setInterval(() => this.write(copyDataMessage(hold.heartbeat)), hold.everyMs);
      /** The last ReadyForQuery: the channel is free, in the transaction status it gives. */
      const finish = (ready: Message, outcome: BackendError | undefined) => {
        this.sink = undefined;
        this.status = String.fromCharCode(ready.bytes[5]) as TransactionStatus;
        resolve({ status: this.status, error: outcome });
      };
      const sink: MessageSink & { abort: (e: Error) => void } = {
        onMessage: (message) => {
          const type = message.type;
          if (holding) {
            if (type === ServerMessage.ErrorResponse)
              holdError ??= new BackendError(parseFields(message.bytes), message.bytes);
            if (type !== ServerMessage.ReadyForQuery) return;
            // (After the query's failure the hold fails too, in a block, or never mattered: but a cancel it took
            // is the statement's, which must not go on as after a failed query.)
            const cancelled = holdError?.code === SqlState.queryCanceled;
            finish(message, cancelled ? holdError : (error ?? holdError));
            return;
          }
          if (type === ServerMessage.ErrorResponse && !error)
            error = new BackendError(parseFields(message.bytes), message.bytes);
          if (type === ServerMessage.ReadyForQuery && hold) {
            // Every row is read: the hold ends, after a last heartbeat, where PostgreSQL takes a cancel that came
            // since the one before (at CopyDone it would drop it). (PostgreSQL ignores both outside a COPY, as
            // after a failure in a block.)
            clearInterval(heartbeats);
            holding = true;
            this.write([copyDataMessage(hold.heartbeat), copyDoneMessage()]);
            return;
          }
          if (type === ServerMessage.ReadyForQuery) {
            finish(message, error);
            return;
          }
          // Once the gateway's handler failed, the rest of the answer is only drained.
          if (handlerFailed) return;
          try {
            handle(message);
          } catch (failure) {
            handlerFailed = true;
            error ??= gatewayFailure(failure);
          }
        },
        abort: (e) => {
          clearInterval(heartbeats);
          this.sink = undefined;
          reject(e);
        },
      };
      this.sink = sink;
      this.operations += 1;
      this.write(hold ? [...(Array.isArray(bytes) ? bytes : [bytes]), queryMessage(hold.sql)] : bytes);
    });
  }

  /** Runs one or more statements with the simple protocol and collects text results. Throws on error. */
  async query(sql: string): Promise<QueryResult> {
    const result: QueryResult = { columns: [], rows: [], tags: [] };
    const outcome = await this.run(queryMessage(sql), (message) => {
      switch (message.type) {
        case ServerMessage.RowDescription:
          result.columns = readRowDescription(message.bytes);
          break;
        case ServerMessage.DataRow:
          result.rows.push(readDataRow(message.bytes));
          break;
        case ServerMessage.CommandComplete:
          result.tags.push(message.bytes.toString('utf8', 5, message.bytes.length - 1));
          break;
      }
    });
    if (outcome.error) throw outcome.error;
    return result;
  }

  /**
   * Runs one statement with the extended protocol, parameters given as raw
   * bytes with their format codes (as a client's Bind carried them), and
   * streams each result row (text format) to `onRow`.
   */
  async streamRows(
    sql: string,
    paramTypes: number[],
    params: (Buffer | null)[],
    paramFormats: number[],
    onRow: (values: (string | null)[]) => void,
    hold?: Hold,
  ): Promise<void> {
    const outcome = await this.run(
      [parseMessage('', sql, paramTypes), bindMessage('', '', params, paramFormats), executeMessage(''), syncMessage()],
      (message) => {
        if (message.type === ServerMessage.DataRow) onRow(readDataRow(message.bytes));
      },
      hold,
    );
    if (outcome.error) throw outcome.error;
  }

  /** The parameter types PostgreSQL infers for a statement (Parse + Describe of a private statement). */
  async parameterTypes(sql: string, declared: number[]): Promise<number[]> {
    let types: number[] = [];
    const outcome = await this.run(
      [
        parseMessage('aws_ml_describe', sql, declared),
        describeMessage('S', 'aws_ml_describe'),
        closeMessage('S', 'aws_ml_describe'),
        syncMessage(),
      ],
      (message) => {
        if (message.type === ServerMessage.ParameterDescription) types = readParameterDescription(message.bytes);
      },
    );
    if (outcome.error) throw outcome.error;
    return types;
  }

  /**
   * Has PostgreSQL analyze a statement without running it (Parse of a
   * private statement, then Close): names, types and operators are checked.
   * `privileges` (a statement without parameters) has PostgreSQL start its
   * executor without running it, so that the privileges on every table,
   * column and function it reads or writes are checked too: `bind` binds a
   * SELECT to a portal, `explain` EXPLAINs any statement (binding an INSERT
   * or UPDATE starts nothing). A statement with parameters is bound with
   * `values`, the client's own. `prelude` runs first, in the same round trip
   * and transaction.
   * Throws its error as a BackendError.
   */
  async analyze(
    sql: string,
    paramTypes: number[] = [],
    privileges?: 'bind' | 'explain',
    values: Pick<BoundValues, 'values' | 'formats'> = { values: [], formats: [] },
    prelude: string[] = [],
  ): Promise<void> {
    const bind = (name: string) => bindMessage(name, name, values.values, values.formats);
    const outcome = await this.run(
      [
        ...prelude.flatMap((statement) => [
          parseMessage('aws_ml_prelude', statement),
          bindMessage('aws_ml_prelude', 'aws_ml_prelude', []),
          executeMessage('aws_ml_prelude'),
          closeMessage('P', 'aws_ml_prelude'),
          closeMessage('S', 'aws_ml_prelude'),
        ]),
        parseMessage('aws_ml_analyze', sql, paramTypes),
        ...(privileges === 'bind' ? [bind('aws_ml_analyze'), closeMessage('P', 'aws_ml_analyze')] : []),
        closeMessage('S', 'aws_ml_analyze'),
        ...(privileges === 'explain'
          ? [
              parseMessage('aws_ml_explain', `EXPLAIN (COSTS OFF) ${sql}`, paramTypes),
              bind('aws_ml_explain'),
              executeMessage('aws_ml_explain'),
              closeMessage('P', 'aws_ml_explain'),
              closeMessage('S', 'aws_ml_explain'),
            ]
          : []),
        syncMessage(),
      ],
      () => undefined,
    );
    if (outcome.error) {
      // (A failed Bind or Execute skipped the Closes after it: the statements stay until closed.)
      if (privileges || prelude.length > 0) {
        const names = ['aws_ml_analyze', 'aws_ml_explain', 'aws_ml_prelude'];
        await this.run([...names.map((name) => closeMessage('S', name)), syncMessage()], () => undefined);
      }
      throw outcome.error;
    }
  }

  /** The type OIDs of a statement's result columns (Parse + Describe of a private statement, nothing runs). */
  async columnTypes(sql: string): Promise<number[]> {
    return (await this.columns(sql)).map((c) => c.typeOid);
  }

  /** A statement's result columns as PostgreSQL describes them (Parse + Describe of a private statement). */
  async columns(sql: string, paramTypes: number[] = []): Promise<ColumnDescription[]> {
    let columns: ColumnDescription[] = [];
    const outcome = await this.run(
      [
        parseMessage('aws_ml_describe', sql, paramTypes),
        describeMessage('S', 'aws_ml_describe'),
        closeMessage('S', 'aws_ml_describe'),
        syncMessage(),
      ],
      (message) => {
        if (message.type === ServerMessage.RowDescription) columns = readRowDescription(message.bytes);
      },
    );
    if (outcome.error) throw outcome.error;
    return columns;
  }

  /**
   * One statement with parameters (extended protocol), e.g. to keep values out
   * of SQL text. Strings go in text format; Buffers as `paramFormats` say (a
   * client's Bind passed on). Results come in text.
   */
  async queryParams(
    sql: string,
    params: (string | Buffer | null)[],
    paramTypes: number[] = [],
    paramFormats: number[] = [],
  ): Promise<QueryResult> {
    const result: QueryResult = { columns: [], rows: [], tags: [] };
    const encoded = params.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p));
    const outcome = await this.run(
      [
        parseMessage('', sql, paramTypes),
        bindMessage('', '', encoded, paramFormats),
        executeMessage(''),
        syncMessage(),
      ],
      (message) => {
        if (message.type === ServerMessage.DataRow) result.rows.push(readDataRow(message.bytes));
        else if (message.type === ServerMessage.CommandComplete)
          result.tags.push(message.bytes.toString('utf8', 5, message.bytes.length - 1));
      },
    );
    if (outcome.error) throw outcome.error;
    return result;
  }

  /**
   * `COPY … TO STDOUT`: streams each CopyData payload to `onData`.
   * Returns the number of rows from the command tag.
   */
  async copyOut(sql: string, onData: (payload: Buffer) => void, hold?: Hold): Promise<number> {
    let tag = '';
    const outcome = await this.run(
      queryMessage(sql),
      (message) => {
        if (message.type === ServerMessage.CopyData) onData(message.bytes.subarray(5));
        else if (message.type === ServerMessage.CommandComplete)
          tag = message.bytes.toString('utf8', 5, message.bytes.length - 1);
      },
      hold,
    );
    if (outcome.error) throw outcome.error;
    return Number(tag.split(' ').pop() ?? 0);
  }

  /**
   * `COPY … FROM STDIN` fed while it runs: `produce` writes rows as they become
   * available and resolves when done; if it rejects, the COPY is abandoned with
   * CopyFail and the producer's error is thrown.
   */
  async copyInStreaming(
    sql: string,
    produce: (write: (data: Buffer) => void) => Promise<void>,
    onRow?: (row: (string | null)[]) => void,
  ): Promise<number> {
    let tag = '';
    let producerError: unknown;
    const outcome = await this.run(queryMessage(sql), (message) => {
      if (message.type === ServerMessage.CopyInResponse) {
        produce((data) => this.write(copyDataMessage(data))).then(
          () => this.write(copyDoneMessage()),
          (error) => {
            producerError = error;
            this.write(copyFailMessage(error instanceof Error ? error.message : String(error)));
          },
        );
      } else if (message.type === ServerMessage.CommandComplete) {
        tag = message.bytes.toString('utf8', 5, message.bytes.length - 1);
      } else if (message.type === ServerMessage.DataRow && onRow) {
        onRow(readDataRow(message.bytes));
      }
    });
    if (producerError) throw producerError;
    if (outcome.error) throw outcome.error;
    return Number(tag.split(' ').pop() ?? 0);
  }
}
