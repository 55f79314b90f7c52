import { describe, expect, it, vi } from 'vitest';
import {
  BoundaryScanner,
  bindMessage,
  bindStatementName,
  commandComplete,
  dataRow,
  type Message,
  MessageFramer,
  parseMessage,
  parseTextLatin1,
  readBind,
  readDataRow,
  readyForQuery,
} from '../../src/gateway/protocol.js';

const stream = Buffer.concat([
  dataRow(['a', null, 'ü']),
  commandComplete('SELECT 1'),
  readyForQuery('T'),
  dataRow(['x'.repeat(300)]),
  readyForQuery('I'),
]);

function splits(buffer: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buffer.length; i += size) out.push(buffer.subarray(i, i + size));
  return out;
}

describe('BoundaryScanner', () => {
  it.each([1, 2, 3, 4, 5, 7, 64, 10_000])('finds every wanted message when chunks are %i bytes', (size) => {
    const scanner = new BoundaryScanner((type) => type === 0x5a);
    const seen: string[] = [];
    for (const chunk of splits(stream, size)) {
      scanner.scan(chunk, (type, buffer, offset, length) => {
        expect(length).toBe(1);
        seen.push(String.fromCharCode(type) + String.fromCharCode(buffer[offset]));
      });
    }
    expect(seen).toEqual(['ZT', 'ZI']);
    expect(scanner.atBoundary).toBe(true);
  });

  it('knows how far the message in progress extends', () => {
    const scanner = new BoundaryScanner(() => false);
    scanner.scan(stream.subarray(0, 3), () => {});
    expect(scanner.atBoundary).toBe(false);
    expect(scanner.bytesToBoundary).toBe(2); // the rest of the 5-byte header
    scanner.scan(stream.subarray(3, 5), () => {});
    const firstLength = stream.readInt32BE(1) + 1;
    expect(scanner.bytesToBoundary).toBe(firstLength - 5);
  });

  it('rejects a negative length', () => {
    const scanner = new BoundaryScanner(() => true);
    expect(() => scanner.scan(Buffer.from([0x44, 0xff, 0xff, 0xff, 0xf0]), () => {})).toThrow(/invalid message length/);
  });
});

describe('message helpers', () => {
  it('frames messages split across chunks without losing bytes', () => {
    const framer = new MessageFramer();
    const out: Message[] = [];
    for (const chunk of splits(stream, 3)) framer.push(chunk, out);
    expect(out.map((m) => String.fromCharCode(m.type))).toEqual(['D', 'C', 'Z', 'D', 'Z']);
    expect(readDataRow(out[0].bytes)).toEqual(['a', null, 'ü']);
    expect(framer.buffered).toBe(0);
  });

  it('joins a message that comes in many reads once, when it is whole', () => {
    // (A 20 MB document sent in 64 KB reads was copied again at each read: the gateway, and every session on it,
    // stalled for seconds to minutes.)
    const big = dataRow(['é'.repeat(500_000)]);
    const framer = new MessageFramer();
    const out: Message[] = [];
    const concat = vi.spyOn(Buffer, 'concat');
    try {
      for (const chunk of splits(Buffer.concat([big, readyForQuery('I')]), 1000)) framer.push(chunk, out);
      expect(concat.mock.calls.length).toBeLessThanOrEqual(2);
    } finally {
      concat.mockRestore();
    }
    expect(out.map((m) => String.fromCharCode(m.type))).toEqual(['D', 'Z']);
    expect(readDataRow(out[0].bytes)).toEqual(['é'.repeat(500_000)]);
    expect(framer.buffered).toBe(0);
    // A length it cannot be is refused once its header is in, however it was split.
    const bad = new MessageFramer();
    bad.push(Buffer.from([0x44, 0xff]), []);
    expect(() => bad.push(Buffer.from([0xff, 0xff, 0xf0, 0]), [])).toThrow(/invalid message length/);
  });

  it('reads a Bind statement name without decoding parameters', () => {
    const bind = bindMessage('portal', 'stmt_1', [Buffer.from('1'), null], [0], [0]);
    expect(bindStatementName(bind)).toBe('stmt_1');
    expect(readBind(bind)).toMatchObject({ portal: 'portal', statement: 'stmt_1', params: [Buffer.from('1'), null] });
  });

  it('reads the SQL of a Parse', () => {
    expect(parseTextLatin1(parseMessage('s', 'SELECT detect_sentiment($1)', [25]))).toBe('SELECT detect_sentiment($1)');
  });
});
