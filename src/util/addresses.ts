import { isLoopback } from '../iam/edge-auth.js';

const WILDCARDS = new Set(['0.0.0.0', '::', '[::]', '*']);

/** The address to print for clients: a wildcard bind is not an address one can connect to. */
export function reachableHost(host: string): string {
  return WILDCARDS.has(host) ? '127.0.0.1' : host;
}

export function bindsBeyondLoopback(host: string): boolean {
  return host !== 'localhost' && !isLoopback(host);
}

/** An IPv6 address in a URL goes in brackets. */
export function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
