import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FeatureMatrix } from '../models/types.js';
import { listenOn } from '../util/listen.js';
import type { Logger } from '../util/log.js';
import { AwsError, internalFailure } from './errors.js';

/** A request as handlers see it: the whole body is read (and size-checked) first. */
export interface EdgeRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: Buffer;
  /** Set by the authenticator when request signing is enforced. */
  principal?: string;
  /** The request target exactly as received (path?query, still percent-encoded), for signature checks. */
  rawUrl?: string;
  /** The client's address (loopback checks for anonymous access). */
  remoteAddress?: string;
  /** Made by pgsage's own gateway in this process (no socket, no signature). */
  inProcess?: boolean;
  /**
   * In process only: the rows of a text/csv InvokeEndpoint body, already read
   * as numbers by the gateway (the body is then empty).
   */
  featureRows?: FeatureMatrix;
}

export interface EdgeResponse {
  status?: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** A JSON 1.1 operation (`X-Amz-Target: Prefix.Operation`): JSON in, JSON out. */
export type JsonOperation = (input: Record<string, unknown>, request: EdgeRequest) => Promise<unknown> | unknown;

/** A REST route; path parameters come from `:name` segments. */
export type RestHandler = (
  request: EdgeRequest,
  params: Record<string, string>,
) => Promise<EdgeResponse> | EdgeResponse;

interface Route {
  method: string;
  pattern: RegExp;
  names: string[];
  handler: RestHandler;
}

/** Runs before any handler; throw an AwsError to refuse (used for SigV4 verification). */
export type Authenticator = (request: EdgeRequest) => void | Promise<void>;

export interface EdgeOptions {
  host: string;
  port: number;
  maxBodyBytes: number;
  logger: Logger;
  /** Certificate and key (PEM): the edge then serves HTTPS instead of HTTP. */
  tls?: { cert: Buffer | string; key: Buffer | string };
}

const JSON_11 = 'application/x-amz-json-1.1';

/**
 * The one HTTP port the AWS-compatible services share, like LocalStack's edge:
 * JSON 1.1 requests are routed by X-Amz-Target, REST requests by method and path.
 */
export class ServiceEdge {
  private readonly targets = new Map<string, Map<string, JsonOperation>>();
  private readonly routes: Route[] = [];
  private server: Server | undefined;
  authenticator: Authenticator | undefined;

  constructor(private readonly options: EdgeOptions) {
    this.route('GET', '/_pgsage/health', () => ({
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ status: 'ok', services: this.serviceNames() }),
    }));
  }

  /** Registers the operations of a JSON 1.1 service, e.g. prefix `Comprehend_20171127`. */
  jsonService(prefix: string, operations: Record<string, JsonOperation>): void {
    const existing = this.targets.get(prefix) ?? new Map<string, JsonOperation>();
    for (const [name, operation] of Object.entries(operations)) existing.set(name, operation);
    this.targets.set(prefix, existing);
  }

  route(method: string, path: string, handler: RestHandler): void {
    const names: string[] = [];
    const pattern = new RegExp(
      `^${path
        .split('/')
        .map((segment) => {
          if (!segment.startsWith(':')) return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
          names.push(segment.slice(1));
          return '([^/]+)';
        })
        .join('/')}$`,
    );
    this.routes.push({ method, pattern, names, handler });
  }

  serviceNames(): string[] {
    return [...this.targets.keys()].sort();
  }

  async listen(): Promise<number> {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      void this.handle(req, res);
    };
    const tls = this.options.tls;
    const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, handler) : http.createServer(handler);
    // A client that asks before it sends its body (`Expect: 100-continue`, as curl does for large ones) is told
    // at once when the body it declares is too large: let go on, it sent megabytes into a connection that the
    // 413 then closed, and reported the broken upload rather than the answer.
    server.on('checkContinue', (req, res) => {
      if (Number(req.headers['content-length'] ?? 0) <= this.options.maxBodyBytes) res.writeContinue();
      handler(req, res);
    });
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    this.server = server;
    await listenOn(server, this.options.port, this.options.host);
    return this.port;
  }

  get port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  get url(): string {
    return `${this.options.tls ? 'https' : 'http'}://${this.options.host}:${this.port}`;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const url = new URL(req.url ?? '/', 'http://edge');
    const target = header(req, 'x-amz-target');
    let status = 500;
    try {
      const body = await readBody(req, this.options.maxBodyBytes);
      const request: EdgeRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body,
        rawUrl: req.url ?? '/',
        remoteAddress: req.socket.remoteAddress,
      };
      const response = await this.dispatch(request, target);
      status = response.status ?? 200;
      res.writeHead(status, response.headers ?? {});
      res.end(response.body ?? '');
    } catch (error) {
      const awsError = error instanceof AwsError ? error : internalFailure();
      if (!(error instanceof AwsError)) this.options.logger.error({ err: error, target }, 'service handler failed');
      status = awsError.status;
      if (!res.headersSent) {
        const restful = target === undefined;
        res.writeHead(status, {
          'content-type': restful ? 'application/json' : JSON_11,
          'x-amzn-errortype': awsError.type,
          ...(awsError.status === 413 ? { connection: 'close' } : {}),
        });
      }
      res.end(JSON.stringify(awsError.body()));
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const line = { method: req.method, path: url.pathname, target, status, ms: Math.round(ms * 1000) / 1000 };
      if (status >= 500) this.options.logger.warn(line, 'request');
      else this.options.logger.debug(line, 'request');
    }
  }

  /**
   * The same routing, limits and AWS error shapes as over HTTP, without a
   * socket or request signing: how pgsage's own gateway calls the services it
   * hosts in its process (its calls are authorized by IAM policy beforehand).
   */
  async invokeInProcess(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: Buffer,
    featureRows?: FeatureMatrix,
  ): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
    const target = headers['x-amz-target'];
    try {
      if (body.length > this.options.maxBodyBytes) throw tooLarge(this.options.maxBodyBytes);
      const request: EdgeRequest = {
        method,
        path,
        query: new URLSearchParams(),
        headers,
        body,
        rawUrl: path,
        inProcess: true,
        featureRows,
      };
      if (this.authenticator) await this.authenticator(request);
      const response = await this.routeRequest(request, target);
      const payload = response.body ?? '';
      return {
        status: response.status ?? 200,
        headers: response.headers ?? {},
        body: typeof payload === 'string' ? Buffer.from(payload) : payload,
      };
    } catch (error) {
      const awsError = error instanceof AwsError ? error : internalFailure();
      if (!(error instanceof AwsError)) this.options.logger.error({ err: error, target }, 'service handler failed');
      return {
        status: awsError.status,
        headers: { 'content-type': target ? JSON_11 : 'application/json', 'x-amzn-errortype': awsError.type },
        body: Buffer.from(JSON.stringify(awsError.body())),
      };
    }
  }

  /** A JSON 1.1 operation called in process: the input and output stay objects. */
  async invokeJsonInProcess(
    target: string,
    input: Record<string, unknown>,
  ): Promise<{ status: number; headers: Record<string, string>; payload: Record<string, unknown> }> {
    try {
      const operation = this.operation(target);
      let body: Buffer | undefined;
      const request: EdgeRequest = {
        method: 'POST',
        path: '/',
        query: new URLSearchParams(),
        headers: { 'x-amz-target': target },
        // Encoded only if someone reads it (an authenticator or a tap), never on the way to the operation.
        get body() {
          body ??= Buffer.from(JSON.stringify(input));
          return body;
        },
        rawUrl: '/',
        inProcess: true,
      };
      if (this.authenticator) await this.authenticator(request);
      const output = (await operation(input, request)) ?? {};
      return { status: 200, headers: {}, payload: output as Record<string, unknown> };
    } catch (error) {
      const awsError = error instanceof AwsError ? error : internalFailure();
      if (!(error instanceof AwsError)) this.options.logger.error({ err: error, target }, 'service handler failed');
      return { status: awsError.status, headers: { 'x-amzn-errortype': awsError.type }, payload: awsError.body() };
    }
  }

  private operation(target: string): JsonOperation {
    const dot = target.lastIndexOf('.');
    const operations = this.targets.get(target.slice(0, dot));
    const operation = operations?.get(target.slice(dot + 1));
    if (!operation) {
      throw new AwsError(
        operations ? 'InvalidAction' : 'UnknownOperationException',
        `Operation ${target} is not supported by pgsage`,
        400,
      );
    }
    return operation;
  }

  private async dispatch(request: EdgeRequest, target: string | undefined): Promise<EdgeResponse> {
    if (this.authenticator) await this.authenticator(request);
    return this.routeRequest(request, target);
  }

  private async routeRequest(request: EdgeRequest, target: string | undefined): Promise<EdgeResponse> {
    if (target !== undefined) {
      const operation = this.operation(target);
      let input: Record<string, unknown>;
      try {
        input = request.body.length ? (JSON.parse(request.body.toString('utf8')) as Record<string, unknown>) : {};
      } catch {
        throw new AwsError('SerializationException', 'The request body is not valid JSON', 400);
      }
      if (typeof input !== 'object' || input === null || Array.isArray(input)) {
        throw new AwsError('SerializationException', 'The request body must be a JSON object', 400);
      }
      const output = await operation(input, request);
      return { status: 200, headers: { 'content-type': JSON_11 }, body: JSON.stringify(output ?? {}) };
    }
    for (const route of this.routes) {
      if (route.method !== request.method) continue;
      const match = route.pattern.exec(request.path);
      if (!match) continue;
      const params: Record<string, string> = {};
      route.names.forEach((name, i) => {
        params[name] = decodeURIComponent(match[i + 1]);
      });
      return route.handler(request, params);
    }
    throw new AwsError('UnknownOperationException', `No pgsage service handles ${request.method} ${request.path}`, 404);
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) {
    req.resume();
    return Promise.reject(tooLarge(limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function tooLarge(limit: number): AwsError {
  return new AwsError(
    'ValidationError',
    `Request payload is larger than the ${Math.round(limit / 1024 / 1024)} MB this endpoint accepts`,
    413,
  );
}
