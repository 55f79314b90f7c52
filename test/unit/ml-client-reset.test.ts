import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpMlServices } from '../../src/ml/client.js';

let server: http.Server | undefined;
let services: HttpMlServices | undefined;

afterEach(async () => {
  services?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

/**
 * An endpoint that answers `1` per input line, and closes a kept-alive
 * connection (a reset) when a second request comes on it, as a service does
 * whose idle timeout ends the connection as the request goes out.
 */
async function endpointClosingKeptAlive(): Promise<{ url: string; resets: () => number }> {
  const served = new WeakSet<Socket>();
  let resets = 0;
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (served.has(req.socket)) {
        resets += 1;
        req.socket.resetAndDestroy();
        return;
      }
      served.add(req.socket);
      const lines = Buffer.concat(chunks).toString().trim().split('\n');
      res.writeHead(200, { 'content-type': 'text/csv' });
      res.end(`${lines.map(() => '1').join('\n')}\n`);
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, resets: () => resets };
}

describe('HttpMlServices', () => {
  it('sends a request once more on a new connection when a kept-alive one turns out closed', async () => {
    const endpoint = await endpointClosingKeptAlive();
    services = new HttpMlServices({ endpoint: endpoint.url });
    expect(await services.invokeEndpoint('any', '1,2\n3,4')).toBe('1\n1\n');
    expect(await services.invokeEndpoint('any', '5,6')).toBe('1\n');
    expect(endpoint.resets()).toBe(1);
  });
});
