import type pg from 'pg';
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
  MessageFramer,
  parseFields,
  parseMessage,
  queryMessage,
  readDataRow,
  readRowDescription,
  syncMessage,
} from '../../src/gateway/protocol.js';

/** What the server answered to one round of messages, as the client saw it. */
export interface RawAnswer {
  /** Data rows, per Execute (or Query) in order, until its CommandComplete. */
  results: (string | null)[][][];
  errors: { code: string; message: string; routine?: string }[];
  /** ParameterStatus messages (name=value). */
  parameters: string[];
  statuses: string[];
  /** Every message's type, in order (e.g. `12DCZ`). */
  types: string;
  /** RowDescriptions' columns, in order. */
  descriptions: ColumnDescription[][];
}

/**
 * A node-postgres connection (authenticated) taken over to send protocol
 * messages as written: several Binds in one Sync group, Flush-ended groups,
 * statements prepared in one group and bound in a later one.
 */
export class RawSession {
  private readonly framer = new MessageFramer();
  private pending: Message[] = [];
  private wake: (() => void) | undefined;
  private readonly stream: NodeJS.ReadWriteStream;

  constructor(client: pg.Client) {
    this.stream = (client as unknown as { connection: { stream: NodeJS.ReadWriteStream } }).connection.stream;
    this.stream.removeAllListeners('data');
    this.stream.on('data', (chunk: Buffer) => {
      this.framer.push(chunk, this.pending);
      this.wake?.();
    });
  }

  /**
   * Sends the messages and collects the answers up to the `syncs`-th
   * ReadyForQuery, or, for messages ended by Flush, until `done` holds.
   */
  async round(messages: Buffer[], syncs = 1, done?: (answer: RawAnswer) => boolean): Promise<RawAnswer> {
    this.stream.write(Buffer.concat(messages));
    const answer: RawAnswer = { results: [], errors: [], parameters: [], statuses: [], types: '', descriptions: [] };
    let rows: (string | null)[][] = [];
    while (done ? !done(answer) : answer.statuses.length < syncs) {
      if (this.pending.length === 0) await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
      for (const message of this.pending.splice(0)) {
        const type = String.fromCharCode(message.type);
        answer.types += type;
        if (type === 'D') rows.push(readDataRow(message.bytes));
        else if (type === 'T') answer.descriptions.push(readRowDescription(message.bytes));
        else if (type === 'C' || type === 's') {
          answer.results.push(rows);
          rows = [];
        } else if (type === 'E') {
          const fields = parseFields(message.bytes);
          answer.errors.push({ code: fields.C, message: fields.M, routine: fields.R });
        } else if (type === 'S') {
          const [name, value] = message.bytes.toString('utf8', 5, message.bytes.length - 1).split('\0');
          answer.parameters.push(`${name}=${value}`);
        } else if (type === 'Z') answer.statuses.push(String.fromCharCode(message.bytes[5]));
      }
    }
    return answer;
  }

  query(sql: string): Promise<RawAnswer> {
    return this.round([queryMessage(sql)]);
  }
}

/** Message builders for RawSession.round, with text parameters. */
export const raw = {
  parse: (name: string, sql: string, types: number[] = []) => parseMessage(name, sql, types),
  bind: (statement: string, values: (string | null)[], portal = '') =>
    bindMessage(
      portal,
      statement,
      values.map((v) => (v === null ? null : Buffer.from(v))),
    ),
  execute: (portal = '', maxRows = 0) => executeMessage(portal, maxRows),
  /** Parse, Bind and Execute of `sql` as the unnamed statement and portal (no Sync). */
  statement: (sql: string, values: (string | null)[] = []) => [raw.parse('', sql), raw.bind('', values), raw.execute()],
  describePortal: (portal = '') => describeMessage('P', portal),
  describeStatement: (statement = '') => describeMessage('S', statement),
  closePortal: (portal = '') => closeMessage('P', portal),
  flush: () => Buffer.from([0x48, 0, 0, 0, 4]),
  sync: () => syncMessage(),
  query: (sql: string) => queryMessage(sql),
  copyData: (text: string) => copyDataMessage(Buffer.from(text)),
  copyDone: () => copyDoneMessage(),
  copyFail: (reason: string) => copyFailMessage(reason),
  /** FunctionCall (the fast-path interface libpq's large objects use), text arguments, text result. */
  functionCall: (oid: number, args: string[]) => {
    const values = args.map((a) => Buffer.from(a));
    const body = Buffer.alloc(4 + 2 + 2 + 2 + values.reduce((n, v) => n + 4 + v.length, 0) + 2);
    let pos = body.writeInt32BE(oid, 0);
    pos = body.writeInt16BE(1, pos);
    pos = body.writeInt16BE(0, pos);
    pos = body.writeInt16BE(values.length, pos);
    for (const v of values) {
      pos = body.writeInt32BE(v.length, pos);
      pos += v.copy(body, pos);
    }
    body.writeInt16BE(0, pos);
    const header = Buffer.from([0x46, 0, 0, 0, 0]);
    header.writeInt32BE(4 + body.length, 1);
    return Buffer.concat([header, body]);
  },
};
