import { beforeAll, describe, expect, it } from 'vitest';
import {
  ClientErrors,
  noteWrittenText,
  positionAsWritten,
  withoutOwnContext,
  withPosition,
} from '../../src/gateway/client-errors.js';
import {
  commandComplete,
  errorResponse,
  parseFields,
  queryMessage,
  readyForQuery,
} from '../../src/gateway/protocol.js';
import { loadParser } from '../../src/sql/parser.js';

beforeAll(() => loadParser());

/** The 1-based character position of `needle` in `text` (the n-th occurrence). */
const at = (text: string, needle: string, nth = 1) => {
  let index = -1;
  for (let i = 0; i < nth; i++) index = text.indexOf(needle, index + 1);
  return Array.from(text.slice(0, index)).length + 1;
};

describe('positionAsWritten', () => {
  it('finds a token that appears once in the client text, counting characters, not bytes', () => {
    const written = "SELECT 'naïve ☃', f(x) AS p, nocol FROM t";
    const sent = "SELECT 'naïve ☃', aws_ml.results_for(f, x, 42) AS p, nocol FROM t JOIN r ON true";
    expect(positionAsWritten(at(sent, 'nocol'), sent, written)).toBe(at(written, 'nocol'));
  });

  it('takes the same occurrence when a token appears as often in both texts', () => {
    const written = 'SELECT a + 1, b + c FROM t';
    const sent = 'SELECT a + 1, b + c FROM t JOIN s USING (id)';
    expect(positionAsWritten(at(sent, '+', 2), sent, written)).toBe(at(written, '+', 2));
  });

  it('gives up when it cannot be sure which one is meant', () => {
    const written = 'SELECT a + 1, b + c FROM t';
    const sent = 'SELECT a + 1, b + c, x + y FROM t';
    expect(positionAsWritten(at(sent, '+', 2), sent, written)).toBeUndefined();
    expect(positionAsWritten(at(sent, 'x'), sent, written)).toBeUndefined();
  });

  it('tells occurrences apart by their neighbours in a Query string of several statements', () => {
    const written = "SELECT 1 AS nocol; SELECT count(*) FROM rv WHERE (f(txt, 'en')).sentiment = nocol;";
    const sent = "SELECT count(*) FROM rv WHERE (f(txt, 'en')).sentiment = nocol";
    expect(positionAsWritten(at(sent, 'nocol'), sent, written)).toBe(at(written, 'nocol', 2));
    // (Not when the neighbours are alike too.)
    const twice = 'SELECT x = nocol; SELECT y = nocol; SELECT x = nocol';
    expect(positionAsWritten(at('SELECT x = nocol', 'nocol'), 'SELECT x = nocol', twice)).toBeUndefined();
  });

  it('matches unquoted names whatever their case, quoted ones exactly', () => {
    expect(positionAsWritten(8, 'SELECT nocol FROM t', 'SELECT NoCol FROM t')).toBe(8);
    expect(positionAsWritten(8, 'SELECT "NoCol" FROM t', 'SELECT nocol, "NoCol" FROM t')).toBe(15);
  });
});

describe('withPosition', () => {
  it('moves or drops the position field and keeps the others', () => {
    const plain = errorResponse({ code: '42703', message: 'column "nocol" does not exist' });
    const body = Buffer.concat([plain.subarray(5, plain.length - 1), Buffer.from('P40\0\0', 'latin1')]);
    const header = Buffer.from([0x45, 0, 0, 0, 0]);
    header.writeInt32BE(body.length + 4, 1);
    const error = Buffer.concat([header, body]);
    expect(parseFields(error).P).toBe('40');
    expect(parseFields(withPosition(error, (p) => p - 10))).toMatchObject({ C: '42703', P: '30' });
    const dropped = parseFields(withPosition(error, () => undefined));
    expect(dropped.P).toBeUndefined();
    expect(dropped.M).toBe('column "nocol" does not exist');
  });
});

describe('withoutOwnContext', () => {
  it("leaves out the CONTEXT of the gateway's loading of answers, and only that", () => {
    const cancelled = errorResponse({
      code: '57014',
      message: 'canceling statement due to user request',
      where: 'COPY aws_ml_row_results, line 3',
    });
    const shown = parseFields(withoutOwnContext(cancelled));
    expect(shown).toMatchObject({ C: '57014', M: 'canceling statement due to user request' });
    expect(shown.W).toBeUndefined();
    const clients = errorResponse({
      code: '22012',
      message: 'division by zero',
      where: 'PL/pgSQL function f(integer)',
    });
    expect(withoutOwnContext(clients)).toEqual(clients);
  });
});

describe('ClientErrors', () => {
  it('is done with a rewritten Query once its ReadyForQuery came, a CommandComplete before it', () => {
    const query = noteWrittenText(queryMessage('SET aws_ml.enable_function_migration = true'), 'SET apg_x = true');
    const errors = new ClientErrors([query]);
    expect(errors.needed).toBe(true);
    errors.reply(commandComplete('SET'));
    expect(errors.done).toBe(false);
    errors.reply(readyForQuery('I'));
    expect(errors.done).toBe(true);
  });
});
