import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Config, loadConfig } from '../../src/config/index.js';
import { runExport } from '../../src/export/query-export.js';
import { BackendChannel } from '../../src/gateway/backend.js';
import {
  commandComplete,
  copyDataMessage,
  type Message,
  MessageFramer,
  queryText,
  readyForQuery,
} from '../../src/gateway/protocol.js';
import type { SessionControl } from '../../src/gateway/session.js';
import { loadParser } from '../../src/sql/parser.js';
import { LocalObjectStore, type ObjectStore } from '../../src/storage/index.js';
import { silentLogger } from '../../src/util/log.js';
import { GatedStore } from '../support/gated-store.js';

/**
 * runExport on a BackendChannel whose "server" is this test: it answers the
 * COPY with `rows` CopyData messages and, like a paused socket, delivers
 * nothing while the channel's flow control is paused.
 */
class FakeServer {
  readonly backend: BackendChannel;
  readonly framer = new MessageFramer();
  paused = false;
  pauses = 0;
  resumes = 0;
  /** Most messages delivered during one pause: the rest of the read that was under way, no more. */
  mostWhilePaused = 0;
  private whilePaused = 0;
  copies: string[] = [];
  private pending: Buffer[] = [];
  private next = 0;

  constructor(
    private readonly rows: number,
    private readonly onPause: () => void = () => {},
    /** Everything was delivered. */
    private readonly onDone: () => void = () => {},
  ) {
    this.backend = new BackendChannel((bytes) => this.receive(Array.isArray(bytes) ? Buffer.concat(bytes) : bytes));
    this.backend.flowControl = {
      pause: () => {
        this.paused = true;
        this.pauses += 1;
        this.whilePaused = 0;
        this.onPause();
      },
      resume: () => {
        this.paused = false;
        this.resumes += 1;
        setImmediate(() => this.pump());
      },
    };
  }

  static row(i: number): Buffer {
    return Buffer.from(`${String(i).padStart(7, '0')}\t${'v'.repeat(91)}\n`);
  }

  private receive(bytes: Buffer): void {
    const messages: Message[] = [];
    this.framer.push(bytes, messages);
    for (const message of messages) {
      const sql = queryText(message.bytes);
      this.copies.push(sql);
      const out: Buffer[] = [Buffer.from([0x48, 0, 0, 0, 7, 0, 0, 0])]; // CopyOutResponse, text, 0 columns
      for (let i = 0; i < this.rows; i++) out.push(copyDataMessage(FakeServer.row(i)));
      out.push(Buffer.from([0x63, 0, 0, 0, 4])); // CopyDone
      out.push(commandComplete(`COPY ${this.rows}`), readyForQuery('I'));
      this.pending = out;
      this.next = 0;
      setImmediate(() => this.pump());
    }
  }

  /** Delivers messages in 64 KiB "socket reads" until paused or done. */
  private pump(): void {
    let bytes = 0;
    while (this.next < this.pending.length && bytes < 64 * 1024) {
      const message = this.pending[this.next++];
      bytes += message.length;
      if (this.paused) this.mostWhilePaused = Math.max(this.mostWhilePaused, ++this.whilePaused);
      this.backend.deliver({ type: message[0], bytes: message });
    }
    if (this.next === this.pending.length) this.onDone();
    else if (!this.paused) setImmediate(() => this.pump());
  }
}

let root: string;
let config: Config;

beforeAll(async () => {
  await loadParser();
});

beforeEach(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'pgsage-export-flow-'));
  config = loadConfig({ env: {}, cwd: root, overrides: { dataDir: root } });
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

function control(server: FakeServer): SessionControl {
  return {
    database: 'db',
    user: 'u',
    backend: server.backend,
    signal: new AbortController().signal,
    ended: false,
    logger: silentLogger,
    toClient: () => {},
    relay: () => Promise.reject(new Error('not used')),
    forward: () => {},
    clientEncoding: 'UTF8',
    standardConformingStrings: 'on',
    afterIdle: () => {},
    failUntilSync: () => {},
    cancelBackend: () => {},
  };
}

const args = {
  query: 'SELECT * FROM t',
  bucket: 'data',
  filePath: 'out.txt',
  region: null,
  options: null,
  kmsKey: null,
};

describe('runExport and the COPY stream', () => {
  it('pauses the server connection while the store is behind and resumes it when the store catches up', async () => {
    const local = new LocalObjectStore(path.join(root, 's3'), false);
    await local.createBucket('data');
    const gated = new GatedStore(local);
    // The store opens once the export has asked PostgreSQL to wait (or, failing that, once all was sent).
    const open = () => setImmediate(() => gated.open());
    const server = new FakeServer(50_000, open, open);
    const result = await runExport(control(server), args, config, gated as ObjectStore, silentLogger);
    expect(server.copies).toEqual(['COPY (\nSELECT * FROM t\n) TO STDOUT']);
    expect(server.pauses).toBeGreaterThanOrEqual(1);
    expect(server.resumes).toBe(server.pauses);
    expect(server.mostWhilePaused).toBeLessThanOrEqual(Math.ceil((64 * 1024) / 100)); // the rest of one 64 KiB read
    expect(result).toEqual({ rows: 50_000, files: 1, bytes: 5_000_000 });
    const content = await local.get('data', 'out.txt');
    expect(content.length).toBe(5_000_000);
    expect(content.subarray(0, 100).equals(FakeServer.row(0))).toBe(true);
    expect(content.subarray(4_999_900).equals(FakeServer.row(49_999))).toBe(true);
  });

  it('reads and drops the rest of the COPY when the store fails, leaving nothing', async () => {
    const local = new LocalObjectStore(path.join(root, 's3'), false);
    await local.createBucket('data');
    const failing: ObjectStore = Object.assign(Object.create(local) as ObjectStore, {
      bucketExists: async () => true,
      put: async () => {
        throw Object.assign(new Error('disk full'), { code: 'ENOSPC' });
      },
    });
    const server = new FakeServer(5_000);
    await expect(runExport(control(server), args, config, failing, silentLogger)).rejects.toThrow('disk full');
    expect(server.paused).toBe(false);
    expect(server.backend.busy).toBe(false);
    expect(readdirSync(path.join(root, 's3', 'data'))).toEqual([]);
  });
});
