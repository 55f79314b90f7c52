import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import S3rver from '@20minutes/s3rver';
import { freePort } from './ports.js';

/** s3rver's fixed credentials; a new object each time, as the AWS SDK annotates the one it is given. */
export const s3rverCredentials = () => ({ accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });

export interface S3Server {
  endpoint: string;
  port: number;
  /** Every request received, as "METHOD /path?query". */
  requests: string[];
  /** Resolves with the first request (already received or still to come) that matches. */
  waitForRequest(pattern: RegExp): Promise<string>;
  /** Stops answering (connections refused) but keeps the stored objects. */
  stop(): Promise<void>;
  /** Starts again on the same port over the same objects. */
  start(): Promise<void>;
  /** Stops and removes everything. */
  dispose(): Promise<void>;
}

/** A real S3-compatible HTTP server (s3rver) on a loopback port, storing in a temporary directory. */
export async function startS3Server(): Promise<S3Server> {
  const directory = mkdtempSync(path.join(tmpdir(), 'pgsage-s3rver-'));
  const port = await freePort();
  let server: S3rver | undefined;
  const requests: string[] = [];
  const events = new EventEmitter();
  const start = async () => {
    // The SDK signs bucket-level paths with a trailing slash that s3rver's own signature check does not
    // expect; signatures are the SDK's business, so s3rver does not check them here.
    server = new S3rver({
      address: '127.0.0.1',
      port,
      directory,
      silent: true,
      vhostBuckets: false,
      allowMismatchedSignatures: true,
    });
    await server.run();
    server.httpServer?.on('request', (request: IncomingMessage) => {
      const line = `${request.method} ${request.url}`;
      requests.push(line);
      events.emit('request', line);
    });
  };
  const stop = async () => {
    const running = server;
    server = undefined;
    if (!running) return;
    running.httpServer?.closeAllConnections();
    await running.close();
  };
  await start();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    requests,
    waitForRequest(pattern) {
      const seen = requests.find((r) => pattern.test(r));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => {
        const listener = (line: string) => {
          if (!pattern.test(line)) return;
          events.off('request', listener);
          resolve(line);
        };
        events.on('request', listener);
      });
    },
    start,
    stop,
    async dispose() {
      await stop();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
