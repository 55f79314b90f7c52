/**
 * PostgreSQL frontend/backend protocol (v3.0 and 3.2): message framing,
 * builders for the messages the gateway writes itself, and parsers for the
 * ones it reads. See https://www.postgresql.org/docs/current/protocol-message-formats.html
 */

export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;
export const PROTOCOL_3_0 = 196608;
export const PROTOCOL_3_2 = 196610;

/** Largest message the gateway buffers whole; PostgreSQL itself caps most messages at 1 GB. */
export const MAX_MESSAGE_BYTES = 1024 * 1024 * 1024;

export interface Message {
  type: number;
  /** The whole message including the type byte and length. */
  bytes: Buffer;
}

/**
 * Splits a byte stream into messages. Complete messages inside one chunk are
 * returned as views of that chunk (no copy); a message split across chunks is
 * kept as its chunks and copied into one buffer once it is whole. (Joined at
 * each read, a message of many megabytes was copied again for every 64 KB
 * that came: quadratic time, on the event loop every session shares.)
 */
export class MessageFramer {
  private carry: Buffer[] = [];
  private carried = 0;

  push(chunk: Buffer, out: Message[]): void {
    let buf = chunk;
    if (this.carried > 0) {
      this.carry.push(chunk);
      this.carried += chunk.length;
      const needed = this.carriedMessageBytes();
      if (needed === undefined || this.carried < needed) return;
      buf = Buffer.concat(this.carry, this.carried);
      this.carry = [];
      this.carried = 0;
    }
    let offset = 0;
    while (buf.length - offset >= 5) {
      const length = buf.readInt32BE(offset + 1);
      if (length < 4 || length > MAX_MESSAGE_BYTES) throw new ProtocolViolation(`invalid message length ${length}`);
      const end = offset + 1 + length;
      if (end > buf.length) break;
      out.push({ type: buf[offset], bytes: buf.subarray(offset, end) });
      offset = end;
    }
    if (offset < buf.length) {
      this.carry = [Buffer.from(buf.subarray(offset))];
      this.carried = buf.length - offset;
    }
  }

  /** The length of the message the carried bytes begin, once its header is in (its own check is push's). */
  private carriedMessageBytes(): number | undefined {
    if (this.carried < 5) return undefined;
    if (this.carry[0].length < 5) this.carry = [Buffer.concat(this.carry, this.carried)];
    const length = this.carry[0].readInt32BE(1);
    // (An invalid length is reported by push's loop, at once.)
    return length < 4 || length > MAX_MESSAGE_BYTES ? 0 : 1 + length;
  }

  get buffered(): number {
    return this.carried;
  }
}

export class ProtocolViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolViolation';
  }
}

// ---------------------------------------------------------------- builders

/** Growable writer that produces one message without intermediate arrays. */
export class MessageWriter {
  private buf: Buffer;
  private pos = 0;
  private start = 0;

  constructor(capacity = 256) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  begin(type: string | number): this {
    this.ensure(5);
    this.start = this.pos;
    this.buf[this.pos] = typeof type === 'string' ? type.charCodeAt(0) : type;
    this.pos += 5;
    return this;
  }

  int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  byte(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  cstring(s: string): this {
    const n = Buffer.byteLength(s);
    this.ensure(n + 1);
    this.buf.write(s, this.pos);
    this.pos += n;
    this.buf[this.pos++] = 0;
    return this;
  }

  bytes(b: Buffer | Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** Writes an Int32 length followed by the bytes, or -1 for NULL. */
  lengthPrefixed(b: Buffer | null): this {
    if (b === null) return this.int32(-1);
    this.int32(b.length);
    return this.bytes(b);
  }

  end(): this {
    this.buf.writeInt32BE(this.pos - this.start - 1, this.start + 1);
    return this;
  }

  toBuffer(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

function single(build: (w: MessageWriter) => void): Buffer {
  const w = new MessageWriter();
  build(w);
  return w.toBuffer();
}

export type TransactionStatus = 'I' | 'T' | 'E';

export const readyForQuery = (status: TransactionStatus): Buffer =>
  single((w) => w.begin('Z').byte(status.charCodeAt(0)).end());

export const commandComplete = (tag: string): Buffer => single((w) => w.begin('C').cstring(tag).end());

export interface ErrorFields {
  severity?: 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'INFO' | 'LOG' | 'DEBUG';
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  where?: string;
  /** PostgreSQL's source file and function that raised it (clients such as asyncpg tell errors apart by them). */
  file?: string;
  routine?: string;
}

function fieldsMessage(type: 'E' | 'N', fields: ErrorFields): Buffer {
  const severity = fields.severity ?? (type === 'E' ? 'ERROR' : 'NOTICE');
  return single((w) => {
    w.begin(type);
    w.byte(0x53).cstring(severity); // S
    w.byte(0x56).cstring(severity); // V (non-localized)
    w.byte(0x43).cstring(fields.code); // C
    w.byte(0x4d).cstring(fields.message); // M
    if (fields.detail) w.byte(0x44).cstring(fields.detail);
    if (fields.hint) w.byte(0x48).cstring(fields.hint);
    if (fields.where) w.byte(0x57).cstring(fields.where);
    if (fields.file) w.byte(0x46).cstring(fields.file);
    if (fields.routine) w.byte(0x52).cstring(fields.routine);
    w.byte(0).end();
  });
}

export const errorResponse = (fields: ErrorFields): Buffer => fieldsMessage('E', fields);
export const noticeResponse = (fields: ErrorFields): Buffer => fieldsMessage('N', fields);

export const authenticationOk = (): Buffer => single((w) => w.begin('R').int32(0).end());

export const parameterStatus = (name: string, value: string): Buffer =>
  single((w) => w.begin('S').cstring(name).cstring(value).end());

export const backendKeyData = (pid: number, key: Buffer): Buffer =>
  single((w) => w.begin('K').int32(pid).bytes(key).end());

export const TEXT_OID = 25;

export const rowDescription = (columns: { name: string; typeOid?: number }[]): Buffer =>
  single((w) => {
    w.begin('T').int16(columns.length);
    for (const column of columns) {
      w.cstring(column.name)
        .int32(0)
        .int16(0)
        .int32(column.typeOid ?? TEXT_OID)
        .int16(-1)
        .int32(-1)
        .int16(0);
    }
    w.end();
  });

export const dataRow = (values: (string | null)[]): Buffer =>
  single((w) => {
    w.begin('D').int16(values.length);
    for (const value of values) w.lengthPrefixed(value === null ? null : Buffer.from(value, 'utf8'));
    w.end();
  });

// Frontend messages the gateway sends to PostgreSQL on a session's behalf.
export const queryMessage = (sql: string): Buffer => single((w) => w.begin('Q').cstring(sql).end());
export const syncMessage = (): Buffer => single((w) => w.begin('S').end());
export const copyDataMessage = (data: Buffer): Buffer => single((w) => w.begin('d').bytes(data).end());
export const copyDoneMessage = (): Buffer => single((w) => w.begin('c').end());
export const copyFailMessage = (reason: string): Buffer => single((w) => w.begin('f').cstring(reason).end());

export const parseMessage = (name: string, sql: string, paramTypes: number[] = []): Buffer =>
  single((w) => {
    w.begin('P').cstring(name).cstring(sql).int16(paramTypes.length);
    for (const oid of paramTypes) w.int32(oid);
    w.end();
  });

/** Bind with every parameter and result in text format unless formats are given. */
export const bindMessage = (
  portal: string,
  statement: string,
  params: (Buffer | null)[],
  paramFormats: number[] = [],
  resultFormats: number[] = [],
): Buffer =>
  single((w) => {
    w.begin('B').cstring(portal).cstring(statement).int16(paramFormats.length);
    for (const f of paramFormats) w.int16(f);
    w.int16(params.length);
    for (const p of params) w.lengthPrefixed(p);
    w.int16(resultFormats.length);
    for (const f of resultFormats) w.int16(f);
    w.end();
  });

export const describeMessage = (kind: 'S' | 'P', name: string): Buffer =>
  single((w) => w.begin('D').byte(kind.charCodeAt(0)).cstring(name).end());

export const executeMessage = (portal: string, maxRows = 0): Buffer =>
  single((w) => w.begin('E').cstring(portal).int32(maxRows).end());

export const closeMessage = (kind: 'S' | 'P', name: string): Buffer =>
  single((w) => w.begin('C').byte(kind.charCodeAt(0)).cstring(name).end());

// ---------------------------------------------------------------- parsers

/** Reads NUL-terminated strings and integers from a message body. */
export class MessageReader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start = 5,
  ) {
    this.pos = start;
  }

  int16(): number {
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  byte(): number {
    return this.buf[this.pos++];
  }

  cstring(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw new ProtocolViolation('unterminated string in message');
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }

  bytes(n: number): Buffer {
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  rest(): Buffer {
    return this.buf.subarray(this.pos);
  }
}

export function parseFields(message: Buffer): Record<string, string> {
  const reader = new MessageReader(message);
  const out: Record<string, string> = {};
  while (reader.pos < message.length) {
    const code = reader.byte();
    if (code === 0) break;
    out[String.fromCharCode(code)] = reader.cstring();
  }
  return out;
}

/** The SQL text of a Query ('Q') message. */
export function queryText(message: Buffer): string {
  return message.toString('utf8', 5, message.length - 1);
}

export interface ParseFields {
  name: string;
  sql: string;
  paramTypes: number[];
}

export function readParse(message: Buffer): ParseFields {
  const r = new MessageReader(message);
  const name = r.cstring();
  const sql = r.cstring();
  const n = r.int16();
  const paramTypes: number[] = [];
  for (let i = 0; i < n; i++) paramTypes.push(r.int32());
  return { name, sql, paramTypes };
}

/** The portal an Execute message runs. */
export function executePortalName(message: Buffer): string {
  return message.toString('utf8', 5, message.indexOf(0, 5));
}

/** The prepared statement a Bind refers to, without decoding its parameters. */
export function bindStatementName(message: Buffer): string {
  const portalEnd = message.indexOf(0, 5);
  const statementEnd = message.indexOf(0, portalEnd + 1);
  return message.toString('utf8', portalEnd + 1, statementEnd);
}

/** The SQL text of a Parse, latin1-decoded: enough for an ASCII name check, cheaper than UTF-8. */
export function parseTextLatin1(message: Buffer, start = 5, end = message.length): string {
  const nameEnd = message.indexOf(0, start);
  const sqlEnd = message.indexOf(0, nameEnd + 1);
  return message.toString('latin1', nameEnd + 1, Math.min(sqlEnd, end));
}

/**
 * Follows message boundaries in a byte stream without copying or allocating,
 * reporting only the messages of the given types (with their body's offset
 * in the buffer it passes). Bodies split across chunks are reassembled.
 */
export class BoundaryScanner {
  private remaining = 0;
  private readonly header = Buffer.alloc(5);
  private headerFill = 0;
  private capture: Buffer | undefined;
  private captureFill = 0;
  private captureType = 0;

  constructor(private readonly wanted: (type: number) => boolean) {}

  get atBoundary(): boolean {
    return this.remaining === 0 && this.headerFill === 0;
  }

  /** Bytes still needed to finish the message in progress (for a split header: to finish the header). */
  get bytesToBoundary(): number {
    return this.headerFill > 0 ? 5 - this.headerFill : this.remaining;
  }

  scan(chunk: Buffer, visit: (type: number, buffer: Buffer, offset: number, length: number) => void): void {
    let pos = 0;
    const length = chunk.length;
    while (pos < length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, length - pos);
        if (this.capture) {
          chunk.copy(this.capture, this.captureFill, pos, pos + n);
          this.captureFill += n;
        }
        pos += n;
        this.remaining -= n;
        if (this.remaining === 0 && this.capture) {
          const body = this.capture;
          this.capture = undefined;
          visit(this.captureType, body, 0, body.length);
        }
        continue;
      }
      if (this.headerFill > 0 || length - pos < 5) {
        const n = Math.min(5 - this.headerFill, length - pos);
        chunk.copy(this.header, this.headerFill, pos, pos + n);
        this.headerFill += n;
        pos += n;
        if (this.headerFill < 5) return;
        this.headerFill = 0;
        this.begin(this.header[0], this.header.readInt32BE(1) - 4, visit);
        continue;
      }
      const type = chunk[pos];
      const bodyLength = chunk.readInt32BE(pos + 1) - 4;
      pos += 5;
      if (bodyLength < 0) throw new ProtocolViolation(`invalid message length ${bodyLength + 4}`);
      if (pos + bodyLength <= length) {
        if (this.wanted(type)) visit(type, chunk, pos, bodyLength);
        pos += bodyLength;
        continue;
      }
      this.begin(type, bodyLength, visit);
    }
  }

  private begin(
    type: number,
    bodyLength: number,
    visit: (type: number, buffer: Buffer, offset: number, length: number) => void,
  ): void {
    if (bodyLength < 0) throw new ProtocolViolation(`invalid message length ${bodyLength + 4}`);
    this.remaining = bodyLength;
    if (!this.wanted(type)) return;
    if (bodyLength === 0) {
      visit(type, Buffer.alloc(0), 0, 0);
      return;
    }
    this.capture = Buffer.allocUnsafe(bodyLength);
    this.captureFill = 0;
    this.captureType = type;
  }
}

export interface BindFields {
  portal: string;
  statement: string;
  paramFormats: number[];
  params: (Buffer | null)[];
  resultFormats: number[];
}

export function readBind(message: Buffer): BindFields {
  const r = new MessageReader(message);
  const portal = r.cstring();
  const statement = r.cstring();
  const paramFormats: number[] = [];
  for (let i = r.int16(); i > 0; i--) paramFormats.push(r.int16());
  const params: (Buffer | null)[] = [];
  for (let i = r.int16(); i > 0; i--) {
    const len = r.int32();
    params.push(len < 0 ? null : Buffer.from(r.bytes(len)));
  }
  const resultFormats: number[] = [];
  for (let i = r.int16(); i > 0; i--) resultFormats.push(r.int16());
  return { portal, statement, paramFormats, params, resultFormats };
}

export interface ColumnDescription {
  name: string;
  tableOid: number;
  column: number;
  typeOid: number;
  typeSize: number;
  typeModifier: number;
  format: number;
}

/**
 * Type bytes of the messages a client sends (PostgreSQL's "Message Formats").
 * Some share a byte with a server message of another meaning (Execute and
 * ErrorResponse are both E): which table applies depends on the direction.
 */
export const ClientMessage = {
  Bind: 0x42,
  Close: 0x43,
  CopyData: 0x64,
  CopyDone: 0x63,
  CopyFail: 0x66,
  Describe: 0x44,
  Execute: 0x45,
  Flush: 0x48,
  FunctionCall: 0x46,
  Parse: 0x50,
  PasswordMessage: 0x70,
  Query: 0x51,
  Sync: 0x53,
  Terminate: 0x58,
} as const;

/** Type bytes of the messages PostgreSQL sends. */
export const ServerMessage = {
  BackendKeyData: 0x4b,
  CommandComplete: 0x43,
  CopyData: 0x64,
  CopyInResponse: 0x47,
  DataRow: 0x44,
  ErrorResponse: 0x45,
  NotificationResponse: 0x41,
  ParameterDescription: 0x74,
  ParameterStatus: 0x53,
  ParseComplete: 0x31,
  ReadyForQuery: 0x5a,
  RowDescription: 0x54,
} as const;

/** Replies that end PostgreSQL's answer to one extended-protocol message (DataRow, notices and the like do not). */
const ENDS_A_REPLY: ReadonlySet<number> = new Set([...'123CIstTn'].map((c) => c.charCodeAt(0)));

export const countsAsReply = (type: number): boolean => ENDS_A_REPLY.has(type);

/**
 * How many replies (see countsAsReply) PostgreSQL gives one extended-protocol
 * step (Parse, Bind, Describe, Execute, Close; none for Flush), or undefined
 * for another message (a Sync, a Query…).
 */
export function repliesTo(message: Buffer): number | undefined {
  switch (message[0]) {
    case ClientMessage.Parse:
    case ClientMessage.Bind:
    case ClientMessage.Execute:
    case ClientMessage.Close:
      return 1;
    case ClientMessage.Describe:
      return message[5] === 0x53 /* S */ ? 2 : 1; // a statement: its parameters too
    case ClientMessage.Flush:
      return 0;
    default:
      return undefined;
  }
}

export function readRowDescription(message: Buffer): ColumnDescription[] {
  const r = new MessageReader(message);
  const n = r.int16();
  const columns: ColumnDescription[] = [];
  for (let i = 0; i < n; i++) {
    columns.push({
      name: r.cstring(),
      tableOid: r.int32(),
      column: r.int16(),
      typeOid: r.int32(),
      typeSize: r.int16(),
      typeModifier: r.int32(),
      format: r.int16(),
    });
  }
  return columns;
}

/**
 * A RowDescription with each column's table OID and column number taken from
 * `origins` (PostgreSQL's description of another form of the statement), the
 * rest as it is. Left as it is when the column counts differ.
 */
export function withOrigins(message: Buffer, origins: readonly ColumnDescription[]): Buffer {
  const out = Buffer.from(message);
  const r = new MessageReader(out);
  if (r.int16() !== origins.length) return message;
  for (const origin of origins) {
    r.cstring();
    out.writeInt32BE(origin.tableOid, r.pos);
    out.writeInt16BE(origin.column, r.pos + 4);
    // (Table OID, column number, type OID, type size, type modifier, format.)
    r.pos += 18;
  }
  return out;
}

/** Text values of a DataRow (NULL → null). */
export function readDataRow(message: Buffer): (string | null)[] {
  const r = new MessageReader(message);
  const n = r.int16();
  const values: (string | null)[] = [];
  for (let i = 0; i < n; i++) {
    const len = r.int32();
    if (len < 0) {
      values.push(null);
    } else {
      values.push(r.buf.toString('utf8', r.pos, r.pos + len));
      r.pos += len;
    }
  }
  return values;
}

export function readParameterDescription(message: Buffer): number[] {
  const r = new MessageReader(message);
  const n = r.int16();
  const oids: number[] = [];
  for (let i = 0; i < n; i++) oids.push(r.int32());
  return oids;
}

/** A startup-phase packet: Int32 length, Int32 code, payload. */
export interface StartupPacket {
  code: number;
  bytes: Buffer;
}

/** Startup parameters (user, database, options…) of a StartupMessage. */
export function readStartupParameters(packet: Buffer): Map<string, string> {
  const params = new Map<string, string>();
  let pos = 8;
  while (pos < packet.length) {
    const keyEnd = packet.indexOf(0, pos);
    if (keyEnd <= pos) break;
    const valueEnd = packet.indexOf(0, keyEnd + 1);
    if (valueEnd < 0) throw new ProtocolViolation('malformed startup packet');
    params.set(packet.toString('utf8', pos, keyEnd), packet.toString('utf8', keyEnd + 1, valueEnd));
    pos = valueEnd + 1;
  }
  return params;
}

export const MAX_STARTUP_PACKET = 10_000;

/** A StartupMessage with the protocol version of `packet` and these parameters. */
export function startupPacketWith(packet: Buffer, parameters: Map<string, string>): Buffer {
  const pairs = [...parameters].flatMap(([name, value]) => [Buffer.from(`${name}\0${value}\0`, 'utf8')]);
  const body = Buffer.concat([packet.subarray(4, 8), ...pairs, Buffer.from([0])]);
  const length = Buffer.alloc(4);
  length.writeInt32BE(body.length + 4);
  return Buffer.concat([length, body]);
}
