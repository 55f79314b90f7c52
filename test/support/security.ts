/**
 * Helpers of the security tests: a tap that records what reaches the ML
 * services on the edge (after authentication), a deterministic stand-in for
 * Comprehend's sentiment operations (so the tests do not depend on the bundled
 * model), and throwaway login roles.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { EdgeRequest, ServiceEdge } from '../../src/services/edge.js';

export interface TappedRequest {
  operation: string;
  principal?: string;
  body: Buffer;
}

export interface EdgeTap {
  requests: TappedRequest[];
  clear(): void;
  /** CSV bodies InvokeEndpoint received for an endpoint. */
  invocations(endpoint: string): string[];
  /** Every text BatchDetectSentiment/DetectSentiment received, in order. */
  sentimentTexts(): string[];
}

function operationOf(request: EdgeRequest): string {
  const target = request.headers['x-amz-target'];
  if (typeof target === 'string') return target.slice(target.lastIndexOf('.') + 1);
  const invocation = /^\/endpoints\/([^/]+)\/invocations$/.exec(request.path);
  return invocation ? `InvokeEndpoint ${decodeURIComponent(invocation[1])}` : `${request.method} ${request.path}`;
}

/** Records every request the edge lets through to a service. */
export function tapEdge(edge: ServiceEdge): EdgeTap {
  const requests: TappedRequest[] = [];
  const authenticate = edge.authenticator;
  edge.authenticator = async (request) => {
    await authenticate?.(request);
    requests.push({ operation: operationOf(request), principal: request.principal, body: request.body });
  };
  return {
    requests,
    clear: () => {
      requests.length = 0;
    },
    invocations: (endpoint) =>
      requests.filter((r) => r.operation === `InvokeEndpoint ${endpoint}`).map((r) => r.body.toString('utf8')),
    sentimentTexts: () =>
      requests.flatMap((r) => {
        if (r.operation !== 'BatchDetectSentiment' && r.operation !== 'DetectSentiment') return [];
        const input = JSON.parse(r.body.toString('utf8')) as { TextList?: string[]; Text?: string };
        return input.TextList ?? [input.Text ?? ''];
      }),
  };
}

/** Sentiment of the stand-in: NEGATIVE when the text contains "bad", else POSITIVE; confidence from the length. */
export function standInSentiment(text: string): { sentiment: string; confidence: number } {
  return {
    sentiment: /bad/i.test(text) ? 'NEGATIVE' : 'POSITIVE',
    confidence: 0.5 + (Buffer.byteLength(text) % 50) / 100,
  };
}

/** Replaces Comprehend's sentiment operations on the edge with the deterministic stand-in. */
export function standInComprehend(edge: ServiceEdge): void {
  const answer = (text: string) => {
    const { sentiment, confidence } = standInSentiment(text);
    const key = sentiment[0] + sentiment.slice(1).toLowerCase();
    const scores: Record<string, number> = { Positive: 0, Negative: 0, Neutral: 0, Mixed: 0 };
    scores[key] = confidence;
    scores.Neutral = 1 - confidence;
    return { Sentiment: sentiment, SentimentScore: scores };
  };
  edge.jsonService('Comprehend_20171127', {
    DetectSentiment: (input) => answer(String(input.Text)),
    BatchDetectSentiment: (input) => ({
      ResultList: (input.TextList as string[]).map((text, Index) => ({ Index, ...answer(text) })),
      ErrorList: [],
    }),
  });
}

export interface LoginRole {
  name: string;
  password: string;
  /** A client through the gateway (or another port) as this role. */
  connect(port: number, database: string): Promise<pg.Client>;
}

const opened = new Set<pg.Client>();

/** A LOGIN role with a unique name (roles are shared by every database of the test run's server). */
export async function createLoginRole(admin: pg.Client, prefix: string, database: string): Promise<LoginRole> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  await admin.query(`CREATE ROLE ${name} LOGIN PASSWORD '${password}'`);
  await admin.query(`GRANT CONNECT ON DATABASE ${database} TO ${name}`);
  return {
    name,
    password,
    connect: async (port, db) => {
      const client = new pg.Client({ host: '127.0.0.1', port, user: name, password, database: db });
      client.on('error', () => {});
      await client.connect();
      opened.add(client);
      return client;
    },
  };
}

/** Closes the clients of createLoginRole and drops the roles (after the stack's database is gone). */
export async function dropLoginRoles(admin: pg.Client, roles: LoginRole[]): Promise<void> {
  for (const client of opened) await client.end().catch(() => {});
  opened.clear();
  for (const role of roles) await admin.query(`DROP ROLE IF EXISTS ${role.name}`).catch(() => {});
}

export { rejection } from './rejection.js';
