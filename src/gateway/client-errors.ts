/**
 * Errors as the client would have had them from PostgreSQL alone, for
 * statements the gateway sends in another form. PostgreSQL counts an
 * ErrorResponse's position (P, in characters from 1) in the text it got: for
 * a statement the gateway rewrote that is not the client's text, and a caret
 * at the wrong place misleads more than none. And a statement the gateway
 * keeps prepared in its own form may fail for that form's sake where the
 * client's would have failed otherwise (see noteErrorInstead). Its
 * RowDescriptions, too, must name the columns' origins as the client's text
 * does (see noteOrigins).
 */
import { type ScanToken, scan } from '../sql/parser.js';
import {
  bindStatementName,
  ClientMessage,
  type ColumnDescription,
  countsAsReply,
  executePortalName,
  parseFields,
  readParse,
  repliesTo,
  ServerMessage,
  withOrigins,
} from './protocol.js';

/** Rewrites an ErrorResponse's position field: `map` gives the new one, or undefined to leave the field out. */
export function withPosition(error: Buffer, map: (position: number) => number | undefined): Buffer {
  return withField(error, 0x50 /* P */, (text) => {
    const position = Number(text);
    const mapped = map(position);
    return mapped === undefined ? undefined : String(mapped);
  });
}

/**
 * Leaves out an error's CONTEXT when it is the gateway's loading of a statement's answers (a cancel that stops it
 * says `COPY aws_ml_row_results, line 3`): the client never wrote that statement.
 */
export function withoutOwnContext(error: Buffer): Buffer {
  return withField(error, 0x57 /* W */, (text) => (text.startsWith('COPY aws_ml_') ? undefined : text));
}

/** Rewrites one field of an ErrorResponse: `map` gives its new text, or undefined to leave it out. */
function withField(error: Buffer, code: number, map: (text: string) => string | undefined): Buffer {
  const fields: Buffer[] = [];
  let changed = false;
  let pos = 5;
  while (pos < error.length && error[pos] !== 0) {
    const end = error.indexOf(0, pos + 1);
    if (end < 0) return error;
    if (error[pos] === code) {
      const text = error.toString('utf8', pos + 1, end);
      const mapped = map(text);
      if (mapped !== text) {
        if (mapped !== undefined) fields.push(Buffer.from(`${String.fromCharCode(code)}${mapped}\0`, 'utf8'));
        changed = true;
        pos = end + 1;
        continue;
      }
    }
    fields.push(error.subarray(pos, end + 1));
    pos = end + 1;
  }
  if (!changed) return error;
  const body = Buffer.concat([...fields, Buffer.from([0])]);
  const header = Buffer.alloc(5);
  header[0] = error[0];
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/** Tokens that are the same word, name, literal or operator wherever they stand. */
function tokenKey(token: ScanToken): string {
  const text = token.text;
  if (token.tokenName === 'IDENT') return text.startsWith('"') ? text : `ident:${text.toLowerCase()}`;
  return token.keywordKind > 0 ? `keyword:${text.toUpperCase()}` : `${token.tokenName}:${text}`;
}

const characters = (text: string) => Array.from(text).length;

/**
 * Where the token at `position` of `sent` is in `written` (both positions in
 * characters from 1), or undefined when that is not certain: the token must
 * appear once in `written`, or as often as in `sent` (then the same one in
 * order: rewriting keeps the client's expressions in their order), or else
 * once with the same neighbours (see amongSame).
 */
export function positionAsWritten(position: number, sent: string, written: string): number | undefined {
  const sentTokens = scan(sent);
  const writtenTokens = scan(written);
  if (!sentTokens || !writtenTokens || position < 1) return undefined;
  const offset = Buffer.byteLength(
    Array.from(sent)
      .slice(0, position - 1)
      .join(''),
  );
  const token = sentTokens.find((t) => t.start <= offset && offset < t.end);
  if (!token) return undefined;
  const key = tokenKey(token);
  const sentSame = sentTokens.filter((t) => tokenKey(t) === key);
  const writtenSame = writtenTokens.filter((t) => tokenKey(t) === key);
  const match =
    writtenSame.length === 1
      ? writtenSame[0]
      : writtenSame.length === sentSame.length
        ? writtenSame[sentSame.indexOf(token)]
        : amongSame(sentTokens, sentTokens.indexOf(token), writtenTokens, writtenSame);
  if (!match) return undefined;
  const before = Buffer.from(written).subarray(0, match.start).toString('utf8');
  const within = Buffer.from(sent).subarray(token.start, offset).toString('utf8');
  return characters(before) + characters(within) + 1;
}

/** Tokens on each side of a token that must be the same for its occurrences to be told apart (see amongSame). */
const CONTEXT_TOKENS = 3;

/**
 * The one occurrence in `written` whose neighbours, up to CONTEXT_TOKENS on each side, are those of the
 * token at `index` of `sent`, as when `sent` is one statement of a Query string `written` that uses the
 * same name in another statement. Undefined unless exactly one occurrence matches, on at least two neighbours.
 */
function amongSame(
  sent: ScanToken[],
  index: number,
  written: ScanToken[],
  candidates: ScanToken[],
): ScanToken | undefined {
  const offsets = Array.from({ length: 2 * CONTEXT_TOKENS + 1 }, (_, i) => i - CONTEXT_TOKENS).filter(
    (offset) => offset !== 0 && sent[index + offset] !== undefined,
  );
  if (offsets.length < 2) return undefined;
  const matching = candidates.filter((candidate) => {
    const at = written.indexOf(candidate);
    return offsets.every((offset) => {
      const theirs = written[at + offset];
      return theirs !== undefined && tokenKey(theirs) === tokenKey(sent[index + offset]);
    });
  });
  return matching.length === 1 ? matching[0] : undefined;
}

/** An ErrorResponse about `sent` with its position moved to the same word of `written` (see positionAsWritten). */
export function errorAsWritten(error: Buffer, sent: string, written: string): Buffer {
  return withPosition(error, (position) => positionAsWritten(position, sent, written));
}

/** The client's own text of statements the gateway sends rewritten, by the message that carries them. */
const writtenTexts = new WeakMap<Buffer, string>();

/** `message` (a Parse or Query) carries a rewritten form of the client's `written` text. */
export function noteWrittenText(message: Buffer, written: string): Buffer {
  writtenTexts.set(message, written);
  return message;
}

/** Messages (a Query) whose error, a schema of pgsage's extensions that does not exist, gets a hint (see withExtensionHint). */
const extensionHinted = new WeakSet<Buffer>();

/** The statement of `message` names a schema of pgsage's extensions: see withExtensionHint. */
export function noteExtensionHint(message: Buffer): Buffer {
  extensionHinted.add(message);
  return message;
}

/** Which extension makes each schema. */
const EXTENSION_OF_SCHEMA: Record<string, string> = {
  aws_comprehend: 'aws_ml',
  aws_sagemaker: 'aws_ml',
  aws_ml: 'aws_ml',
  aws_s3: 'aws_s3',
  aws_commons: 'aws_s3',
};

/** Statement text that names one of those schemas (worth a ClientErrors to hint at the extension). */
export const NAMES_EXTENSION_SCHEMA = /\baws_(comprehend|sagemaker|ml|s3|commons)\b/i;

/**
 * PostgreSQL's `schema "aws_comprehend" does not exist` (3F000) with a hint to create the extension that makes it,
 * which a user new to pgsage has not done yet in this database; any other error as it is. (Not `relation
 * "aws_ml.x" does not exist`, which PostgreSQL says too where the schema is there, of a mistyped name; and not
 * PostgreSQL's messages in another language than English.)
 */
export function withExtensionHint(error: Buffer): Buffer {
  if (error[0] !== ServerMessage.ErrorResponse) return error;
  const fields = parseFields(error);
  if (fields.C !== '3F000' || fields.H !== undefined) return error;
  const schema = /^schema "(\w+)" does not exist$/.exec(fields.M ?? '')?.[1];
  const extension = schema === undefined ? undefined : EXTENSION_OF_SCHEMA[schema];
  if (!extension) return error;
  const hint = Buffer.from(`H${`Run CREATE EXTENSION ${extension} CASCADE in this database.`}\0`);
  // (The field goes before the message's closing zero byte; the length is written again.)
  const out = Buffer.concat([error.subarray(0, error.length - 1), hint, Buffer.from([0])]);
  out.writeInt32BE(out.length - 1, 1);
  return out;
}

/** The error to answer instead of PostgreSQL's, by the message it fails. */
const errorsInstead = new WeakMap<Buffer, Buffer>();

/** If PostgreSQL fails `message` (a Bind), the client gets `error` instead. */
export function noteErrorInstead(message: Buffer, error: Buffer): void {
  errorsInstead.set(message, error);
}

/** `to` replaces `from`, a message that carries the same client text (see noteWrittenText). */
export function carryWrittenText(from: Buffer, to: Buffer): Buffer {
  const written = writtenTexts.get(from);
  if (written !== undefined) writtenTexts.set(to, written);
  return to;
}

/** The column origins to describe a statement's columns with, by the Parse that prepares it (see noteOrigins). */
const originsOf = new WeakMap<Buffer, readonly ColumnDescription[]>();

/**
 * `parse` prepares a rewritten form of a statement whose columns PostgreSQL
 * describes with `origins` (table OIDs and column numbers) as written: its
 * RowDescriptions, for the statement or a portal of it, get them.
 */
export function noteOrigins(parse: Buffer, origins: readonly ColumnDescription[]): void {
  originsOf.set(parse, origins);
}

/**
 * The origins each Describe among `messages` answers with (see noteOrigins), by its index;
 * `prepared`, those of statements prepared before them, by name.
 */
function describedOrigins(
  messages: readonly Buffer[],
  prepared: ReadonlyMap<string, readonly ColumnDescription[]> = new Map(),
): Map<number, readonly ColumnDescription[]> {
  const described = new Map<number, readonly ColumnDescription[]>();
  const statements = new Map<string, readonly ColumnDescription[] | undefined>(prepared);
  const portals = new Map<string, readonly ColumnDescription[] | undefined>();
  messages.forEach((message, index) => {
    if (message[0] === ClientMessage.Parse) statements.set(readParse(message).name, originsOf.get(message));
    else if (message[0] === ClientMessage.Bind) {
      portals.set(executePortalName(message), statements.get(bindStatementName(message)));
    } else if (message[0] === ClientMessage.Describe) {
      const name = message.toString('utf8', 6, message.indexOf(0, 6));
      const origins = (message[5] === 0x53 /* S */ ? statements : portals).get(name);
      if (origins) described.set(index, origins);
    }
  });
  return described;
}

/** A Query's replies go on to its ReadyForQuery. */
const UNTIL_READY = -1;

function repliesOf(message: Buffer | undefined): number {
  if (!message) return 0;
  return message[0] === ClientMessage.Query ? UNTIL_READY : (repliesTo(message) ?? 0); // (a Sync: none)
}

/**
 * Follows the replies to messages sent to PostgreSQL (as the client sees
 * them, in order): moves the position of an error that a rewritten Parse or
 * Query got into the client's text, and answers the error noted for a
 * message instead of PostgreSQL's. `done` once no such message is left to
 * answer: later replies need not pass through it.
 */
export class ClientErrors {
  private index = -1;
  private owed = 0;
  private readonly last: number;

  private readonly origins: Map<number, readonly ColumnDescription[]>;

  /** `prepared`: the origins of statements prepared in earlier groups that these messages may bind (see noteOrigins). */
  constructor(
    private readonly messages: readonly Buffer[],
    prepared?: ReadonlyMap<string, readonly ColumnDescription[]>,
  ) {
    this.origins = describedOrigins(messages, prepared);
    this.last = Math.max(
      messages.findLastIndex((m) => writtenTexts.has(m) || errorsInstead.has(m) || extensionHinted.has(m)),
      ...this.origins.keys(),
    );
  }

  /** Whether any message has a position to move. */
  get needed(): boolean {
    return this.last >= 0;
  }

  get done(): boolean {
    return this.index > this.last || (this.index === this.last && this.owed === 0);
  }

  reply(bytes: Buffer): Buffer {
    const type = bytes[0];
    if (type === ServerMessage.ErrorResponse) {
      const at = this.current();
      const message = this.messages[at];
      const written = message && writtenTexts.get(message);
      // PostgreSQL skips the rest up to the Sync (a Query's error ends the Query).
      if (message?.[0] !== ClientMessage.Query) this.skipToSync(at);
      const instead = message && errorsInstead.get(message);
      if (instead) return instead;
      const hinted = message && extensionHinted.has(message) ? withExtensionHint(bytes) : bytes;
      if (written === undefined) return hinted;
      const sent =
        message[0] === ClientMessage.Query ? message.toString('utf8', 5, message.length - 1) : readParse(message).sql;
      return errorAsWritten(hinted, sent, written);
    }
    if (type === ServerMessage.ReadyForQuery) {
      this.current();
      if (this.owed === UNTIL_READY) this.owed = 0;
    } else if (countsAsReply(type)) {
      // (A Query's replies, a CommandComplete among them, end only at its ReadyForQuery.)
      const at = this.current();
      if (this.owed !== UNTIL_READY) this.owed -= 1;
      const origins = type === ServerMessage.RowDescription ? this.origins.get(at) : undefined;
      if (origins) return withOrigins(bytes, origins);
    }
    return bytes;
  }

  /** The message being answered. */
  private current(): number {
    while (this.owed === 0 && this.index < this.messages.length) {
      this.index += 1;
      this.owed = repliesOf(this.messages[this.index]);
    }
    return this.index;
  }

  private skipToSync(at: number): void {
    let sync = at;
    while (sync < this.messages.length && this.messages[sync][0] !== ClientMessage.Sync) sync += 1;
    this.index = sync;
    this.owed = 0;
  }
}
