import net from 'node:net';

/**
 * Whether `port` can be bound on `host` now. Only EADDRINUSE counts as taken:
 * other bind errors (an address not on this machine, a privileged port) are
 * left for the real listen to report.
 */
export function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => resolve(error.code !== 'EADDRINUSE'));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}
