import { describe, expect, it } from 'vitest';
import { ReplyLedger } from '../../src/gateway/reply-ledger.js';

/** Client messages by their type letters ('PBEQS'; a Describe is of a statement), server replies likewise ('12EZ'). */
function send(ledger: ReplyLedger, types: string): void {
  for (const type of types) {
    const describe = type === 'D';
    ledger.sent(Buffer.from([type.charCodeAt(0), 0, 0, 0, describe ? 6 : 4, ...(describe ? [0x53, 0] : [])]));
  }
}

/** Feeds the replies; returns the Queries skipped after each, joined ('0010'). */
function receive(ledger: ReplyLedger, types: string): string {
  return [...types].map((type) => ledger.received(type.charCodeAt(0))).join('');
}

describe('ReplyLedger', () => {
  it('counts a Query skipped after a failing extended message sent before it without Sync', () => {
    const ledger = new ReplyLedger();
    send(ledger, 'PBEQ');
    expect(receive(ledger, '1E')).toBe('01');
    expect(ledger.skipping).toBe(true);
    send(ledger, 'QS');
    expect(ledger.skipping).toBe(false);
    expect(receive(ledger, 'Z')).toBe('0');
    // Nothing is left owed: the next Query is answered as usual.
    send(ledger, 'Q');
    expect(receive(ledger, 'TDCZ')).toBe('0000');
  });

  it("takes a Query's own error for the Query's, not for the messages before it", () => {
    const ledger = new ReplyLedger();
    send(ledger, 'PBEQS');
    expect(receive(ledger, '12DCEZZ')).toBe('0000000');
    expect(ledger.skipping).toBe(false);
  });

  it('skips only up to the Sync: Queries after it are answered', () => {
    const ledger = new ReplyLedger();
    send(ledger, 'PBEQSQ');
    expect(receive(ledger, '1E')).toBe('01');
    expect(ledger.skipping).toBe(false);
    expect(receive(ledger, 'ZTDCZ')).toBe('00000');
  });

  it('counts every Query in the skipped stretch, and describes and portal reads as replies', () => {
    const ledger = new ReplyLedger();
    send(ledger, 'PDBEQPBEQQS');
    expect(receive(ledger, '1tT2sTDCZ')).toBe('000000000');
    expect(receive(ledger, '12E')).toBe('002');
    expect(receive(ledger, 'Z')).toBe('0');
  });

  it('forgets the Sync PostgreSQL ignores during COPY FROM STDIN', () => {
    const ledger = new ReplyLedger();
    send(ledger, 'PBES');
    expect(receive(ledger, '12G')).toBe('000');
    send(ledger, 'SPBEQS'); // after the copy data: the statement's Sync, then a pipeline that fails
    expect(receive(ledger, 'CZ')).toBe('00');
    expect(receive(ledger, '1E')).toBe('01');
  });

  it('reads several whole messages from one buffer', () => {
    const ledger = new ReplyLedger();
    const message = (type: string, body = '') =>
      Buffer.concat([Buffer.from(type), Buffer.from([0, 0, 0, 4 + body.length]), Buffer.from(body)]);
    ledger.sentAll(Buffer.concat([message('P', 'x\0SELECT 1\0\0\0'), message('E', '\0\0\0\0\0'), message('Q', 'x\0')]));
    expect(receive(ledger, 'E')).toBe('1');
  });
});
