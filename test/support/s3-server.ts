import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
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
  /** Answers each PUT and POST (object writes, multipart steps) this much later: a slow store. */
  writeLatencyMs: number;
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
    const http = server.httpServer;
    if (!http) return;
    const handlers = http.listeners('request') as ((request: IncomingMessage, response: ServerResponse) => void)[];
    http.removeAllListeners('request');
    http.on('request', (request: IncomingMessage, response: ServerResponse) => {
      const line = `${request.method} ${request.url}`;
      requests.push(line);
      events.emit('request', line);
      const handle = () => {
        for (const handler of handlers) handler(request, response);
      };
      if (result.writeLatencyMs > 0 && (request.method === 'PUT' || request.method === 'POST')) {
        setTimeout(handle, result.writeLatencyMs);
      } else {
        handle();
      }
    });
  };
  const stop = async () => {
    const running = server;
    server = undefined;
    if (!running) return;
    running.httpServer?.closeAllConnections();
    await running.close();
  };
  const result: S3Server = {
    writeLatencyMs: 0,
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
  await start();
  return result;
}
