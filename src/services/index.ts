import type { Config } from '../config/index.js';
import type { Logger } from '../util/log.js';
import type { ServiceEdge } from './edge.js';

export interface ServiceContext {
  config: Config;
  logger: Logger;
}

/** Handles to the services registered on the edge, for shutdown. */
export interface RunningServices {
  close(): Promise<void>;
}

/** Registers every AWS-compatible service pgsage hosts on the edge. */
export async function registerServices(_edge: ServiceEdge, _context: ServiceContext): Promise<RunningServices> {
  return { close: async () => {} };
}
