/**
 * AWS Signature Version 4 on the edge: AWS's published signing examples, and
 * the real AWS SDK (Comprehend, SageMaker Runtime) and @smithy/signature-v4
 * presigned URLs against a ServiceEdge with pgsage's authenticator.
 */

import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { BatchDetectSentimentCommand, ComprehendClient, DetectSentimentCommand } from '@aws-sdk/client-comprehend';
import { InvokeEndpointCommand, SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConfigInput, configSchema } from '../../src/config/index.js';
import { edgeAuthenticator, gatewaySigner, makeInternalKey } from '../../src/iam/edge-auth.js';
import { resolveIam } from '../../src/iam/roles.js';
import { signRequest, verifyRequest } from '../../src/iam/sigv4.js';
import { HttpMlServices } from '../../src/ml/client.js';
import { ServiceEdge } from '../../src/services/edge.js';
import { silentLogger } from '../../src/util/log.js';

function bytes(data: string | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/** The hash constructor @smithy/signature-v4 wants (SHA-256, or HMAC-SHA-256 with a key), from node:crypto. */
class Sha256 {
  private hash: Hash | Hmac;
  private readonly secret: Buffer | undefined;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.secret = secret === undefined ? undefined : bytes(secret);
    this.hash = this.make();
  }
  private make() {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', this.secret);
  }
  update(data: string | ArrayBuffer | ArrayBufferView) {
    this.hash.update(bytes(data));
  }
  async digest() {
    return new Uint8Array(this.hash.digest());
  }
  reset() {
    this.hash = this.make();
  }
}

const EXAMPLE = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

describe('signing (AWS Signature Version 4 examples)', () => {
  it('reproduces the get-vanilla example of the AWS SigV4 test suite', () => {
    const headers: Record<string, string> = { host: 'example.amazonaws.com' };
    signRequest(
      { method: 'GET', path: '/', headers, body: '' },
      { credentials: EXAMPLE, region: 'us-east-1', service: 'service', now: new Date('2015-08-30T12:36:00Z') },
    );
    expect(headers.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    );
  });

  it("reproduces the IAM ListUsers example of AWS's signing documentation", () => {
    const headers: Record<string, string> = {
      host: 'iam.amazonaws.com',
      'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
    };
    signRequest(
      { method: 'GET', path: '/?Action=ListUsers&Version=2010-05-08', headers, body: '' },
      { credentials: EXAMPLE, region: 'us-east-1', service: 'iam', now: new Date('2015-08-30T12:36:00Z') },
    );
    expect(headers.authorization).toContain(
      'Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7',
    );
  });

  it('verifies what it signs, and nothing altered', () => {
    const now = new Date('2024-03-01T10:00:00Z');
    const headers: Record<string, string> = {
      host: '127.0.0.1:4566',
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': 'Comprehend_20171127.DetectSentiment',
    };
    const body = Buffer.from('{"Text":"I like it","LanguageCode":"en"}');
    signRequest(
      { method: 'POST', path: '/', headers, body },
      { credentials: EXAMPLE, region: 'us-east-1', service: 'comprehend', now },
    );
    const options = { secretFor: () => EXAMPLE.secretAccessKey, region: 'us-east-1', service: 'comprehend', now };
    expect(verifyRequest({ method: 'POST', url: '/', headers, body }, options).accessKeyId).toBe('AKIDEXAMPLE');
    const tampered = Buffer.from('{"Text":"I hate it","LanguageCode":"en"}');
    expect(() => verifyRequest({ method: 'POST', url: '/', headers, body: tampered }, options)).toThrow(
      expect.objectContaining({ type: 'SignatureDoesNotMatch', status: 403 }),
    );
    const otherTarget = { ...headers, 'x-amz-target': 'Comprehend_20171127.BatchDetectSentiment' };
    expect(() => verifyRequest({ method: 'POST', url: '/', headers: otherTarget, body }, options)).toThrow(
      expect.objectContaining({ type: 'SignatureDoesNotMatch' }),
    );
    // The other endpoint path, or an added query parameter, is another request.
    expect(() => verifyRequest({ method: 'POST', url: '/?x=1', headers, body }, options)).toThrow(
      expect.objectContaining({ type: 'SignatureDoesNotMatch' }),
    );
  });

  it('refuses requests that leave x-amz-target unsigned', () => {
    const now = new Date();
    const headers: Record<string, string> = { host: 'h', 'content-type': 'application/x-amz-json-1.1' };
    signRequest(
      { method: 'POST', path: '/', headers, body: '{}' },
      { credentials: EXAMPLE, region: 'us-east-1', service: 'comprehend', now },
    );
    headers['x-amz-target'] = 'Comprehend_20171127.DetectSentiment';
    expect(() =>
      verifyRequest(
        { method: 'POST', url: '/', headers, body: Buffer.from('{}') },
        { secretFor: () => EXAMPLE.secretAccessKey, region: 'us-east-1', now },
      ),
    ).toThrow(expect.objectContaining({ type: 'IncompleteSignature' }));
  });
});

// ---------------------------------------------------------------- the edge with the real SDK

const REGION = 'us-east-1';
const ACCOUNT = '123456789012';
const ADMIN = { accessKeyId: 'AKPGADMINTEST0001', secretAccessKey: 'admin-secret-0123456789abcdef' };
const LIMITED = { accessKeyId: 'AKPGLIMITEDTEST01', secretAccessKey: 'limited-secret-0123456789abcd' };
const LIMITED_ROLE = `arn:aws:iam::${ACCOUNT}:role/ChurnInvokers`;

interface EdgeFixture {
  edge: ServiceEdge;
  url: string;
  received: { operation: string; principal?: string }[];
  close(): Promise<void>;
}

/** An edge with stand-in Comprehend and SageMaker Runtime operations, behind pgsage's authenticator. */
async function startEdge(iam: ConfigInput['iam'], tls?: { cert: string; key: string }): Promise<EdgeFixture> {
  const config = configSchema.parse({ region: REGION, accountId: ACCOUNT, iam });
  const edge = new ServiceEdge({ host: '127.0.0.1', port: 0, maxBodyBytes: 1 << 20, logger: silentLogger, tls });
  const received: EdgeFixture['received'] = [];
  const scope = { region: REGION, accountId: ACCOUNT };
  const internal = makeInternalKey(scope);
  edge.authenticator = edgeAuthenticator({ iam: resolveIam(config), scope, internal });
  edge.jsonService('Comprehend_20171127', {
    DetectSentiment: (_input, request) => {
      received.push({ operation: 'DetectSentiment', principal: request.principal });
      return { Sentiment: 'POSITIVE', SentimentScore: { Positive: 0.9, Negative: 0.05, Neutral: 0.05, Mixed: 0 } };
    },
    BatchDetectSentiment: (input, request) => {
      received.push({ operation: 'BatchDetectSentiment', principal: request.principal });
      const texts = input.TextList as string[];
      return {
        ResultList: texts.map((_, Index) => ({
          Index,
          Sentiment: 'NEUTRAL',
          SentimentScore: { Positive: 0.1, Negative: 0.1, Neutral: 0.8, Mixed: 0 },
        })),
        ErrorList: [],
      };
    },
  });
  edge.route('POST', '/endpoints/:name/invocations', (request, params) => {
    received.push({ operation: `InvokeEndpoint ${params.name}`, principal: request.principal });
    return { status: 200, headers: { 'content-type': 'text/csv' }, body: `${request.body.toString().trim().length}\n` };
  });
  edge.route('GET', '/metrics', () => ({ status: 200, body: 'pgsage_batch_rows_total 0\n' }));
  await edge.listen();
  return {
    edge,
    url: edge.url,
    received,
    close: () => edge.close(),
  };
}

const iamWithKeys: ConfigInput['iam'] = {
  roles: [
    {
      arn: LIMITED_ROLE,
      policy: {
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'InvokeChurn',
            Effect: 'Allow',
            Action: 'sagemaker:InvokeEndpoint',
            Resource: `arn:aws:sagemaker:${REGION}:${ACCOUNT}:endpoint/churn-*`,
          },
        ],
      },
    },
  ],
  defaultRoles: {},
  credentials: [
    { ...ADMIN, principal: `arn:aws:iam::${ACCOUNT}:user/admin` },
    { ...LIMITED, principal: `arn:aws:iam::${ACCOUNT}:user/scorer`, role: LIMITED_ROLE },
  ],
};

function comprehend(url: string, credentials: { accessKeyId: string; secretAccessKey: string }, extra = {}) {
  return new ComprehendClient({ endpoint: url, region: REGION, credentials, maxAttempts: 1, ...extra });
}

function runtime(url: string, credentials: { accessKeyId: string; secretAccessKey: string }, extra = {}) {
  return new SageMakerRuntimeClient({ endpoint: url, region: REGION, credentials, maxAttempts: 1, ...extra });
}

async function failure(promise: Promise<unknown>) {
  try {
    await promise;
  } catch (error) {
    return error as Error & { name: string; $metadata?: { httpStatusCode?: number } };
  }
  throw new Error('the call succeeded');
}

const detect = (client: ComprehendClient) =>
  client.send(new DetectSentimentCommand({ Text: 'I like it', LanguageCode: 'en' }));

describe('the edge with access keys configured', () => {
  let fixture: EdgeFixture;
  beforeAll(async () => {
    fixture = await startEdge(iamWithKeys);
  });
  afterAll(async () => {
    await fixture?.close();
  });

  it('accepts requests the AWS SDK signs with a configured key, and knows who sent them', async () => {
    const client = comprehend(fixture.url, ADMIN);
    const answer = await detect(client);
    expect(answer.Sentiment).toBe('POSITIVE');
    const batch = await client.send(new BatchDetectSentimentCommand({ TextList: ['a', 'b'], LanguageCode: 'en' }));
    expect(batch.ResultList).toHaveLength(2);
    expect(fixture.received.at(-1)).toEqual({
      operation: 'BatchDetectSentiment',
      principal: `arn:aws:iam::${ACCOUNT}:user/admin`,
    });
    const sm = runtime(fixture.url, ADMIN);
    const invoked = await sm.send(
      new InvokeEndpointCommand({ EndpointName: 'churn-xgb', Body: Buffer.from('1,2,3\n'), ContentType: 'text/csv' }),
    );
    expect(Buffer.from(invoked.Body!).toString()).toBe('5\n');
    client.destroy();
    sm.destroy();
  });

  it('answers SignatureDoesNotMatch for a wrong secret', async () => {
    const client = comprehend(fixture.url, {
      accessKeyId: ADMIN.accessKeyId,
      secretAccessKey: 'not-the-secret-at-all',
    });
    const error = await failure(detect(client));
    expect(error.name).toBe('SignatureDoesNotMatch');
    expect(error.$metadata?.httpStatusCode).toBe(403);
    expect(error.message).toMatch(/does not match the signature you provided/);
    client.destroy();
  });

  it('answers InvalidClientTokenId for an unknown access key', async () => {
    const client = comprehend(fixture.url, {
      accessKeyId: 'AKIAUNKNOWN000000',
      secretAccessKey: 'whatever-secret-value',
    });
    const error = await failure(detect(client));
    expect(error.name).toBe('InvalidClientTokenId');
    expect(error.$metadata?.httpStatusCode).toBe(403);
    client.destroy();
  });

  it('answers RequestExpired outside the 15-minute window, either way', async () => {
    for (const offset of [-16 * 60_000, 16 * 60_000]) {
      const client = comprehend(fixture.url, ADMIN, { systemClockOffset: offset });
      const error = await failure(detect(client));
      expect(error.name).toBe('RequestExpired');
      expect(error.message).toMatch(offset < 0 ? /Signature expired/ : /Signature not yet current/);
      client.destroy();
    }
    // 14 minutes off is within AWS's tolerance.
    const client = comprehend(fixture.url, ADMIN, { systemClockOffset: -14 * 60_000 });
    expect((await detect(client)).Sentiment).toBe('POSITIVE');
    client.destroy();
  });

  it('refuses credentials scoped to another region', async () => {
    const client = new ComprehendClient({
      endpoint: fixture.url,
      region: 'eu-west-1',
      credentials: ADMIN,
      maxAttempts: 1,
    });
    const error = await failure(detect(client));
    expect(error.name).toBe('SignatureDoesNotMatch');
    expect(error.message).toMatch(/scoped to a valid region, not 'eu-west-1'/);
    client.destroy();
  });

  it('answers IncompleteSignature for a malformed Authorization header', async () => {
    const response = await fetch(fixture.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'Comprehend_20171127.DetectSentiment',
        'x-amz-date': '20240101T000000Z',
        authorization: `AWS4-HMAC-SHA256 Credential=${ADMIN.accessKeyId}/20240101/us-east-1/comprehend/aws4_request`,
      },
      body: '{"Text":"x","LanguageCode":"en"}',
    });
    expect(response.status).toBe(400);
    expect(response.headers.get('x-amzn-errortype')).toBe('IncompleteSignature');
    expect(((await response.json()) as { message: string }).message).toMatch(
      /requires 'SignedHeaders' parameter.*requires 'Signature' parameter/,
    );
  });

  it('refuses unsigned requests, even from loopback, once keys are configured', async () => {
    const response = await fetch(fixture.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'Comprehend_20171127.DetectSentiment' },
      body: '{"Text":"x","LanguageCode":"en"}',
    });
    expect(response.status).toBe(403);
    expect(response.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationToken');
    // Health checks need no signature, nor does a Prometheus scraper on this host.
    expect((await fetch(`${fixture.url}/_pgsage/health`)).status).toBe(200);
    expect((await fetch(`${fixture.url}/metrics`)).status).toBe(200);
    const remote = {
      method: 'GET',
      path: '/metrics',
      query: new URLSearchParams(),
      headers: {},
      body: Buffer.alloc(0),
      rawUrl: '/metrics',
      remoteAddress: '192.0.2.7',
    };
    expect(() => fixture.edge.authenticator!(remote)).toThrow(
      expect.objectContaining({ type: 'MissingAuthenticationToken' }),
    );
  });

  it("limits a key to its role's policy (explicit resources, default deny)", async () => {
    const sm = runtime(fixture.url, LIMITED);
    const ok = await sm.send(
      new InvokeEndpointCommand({ EndpointName: 'churn-a', Body: Buffer.from('1\n'), ContentType: 'text/csv' }),
    );
    expect(Buffer.from(ok.Body!).toString()).toBe('1\n');
    expect(fixture.received.at(-1)?.principal).toBe(`arn:aws:iam::${ACCOUNT}:user/scorer`);
    const denied = await failure(
      sm.send(
        new InvokeEndpointCommand({ EndpointName: 'fraud-a', Body: Buffer.from('1\n'), ContentType: 'text/csv' }),
      ),
    );
    expect(denied.name).toBe('AccessDeniedException');
    expect(denied.message).toBe(
      `User: arn:aws:iam::${ACCOUNT}:user/scorer is not authorized to perform: sagemaker:InvokeEndpoint on resource: arn:aws:sagemaker:${REGION}:${ACCOUNT}:endpoint/fraud-a because no identity-based policy allows the sagemaker:InvokeEndpoint action`,
    );
    const client = comprehend(fixture.url, LIMITED);
    expect((await failure(detect(client))).name).toBe('AccessDeniedException');
    sm.destroy();
    client.destroy();
  });

  it('accepts presigned URLs (query-string form) and refuses them once expired', async () => {
    const signer = new SignatureV4({ credentials: ADMIN, region: REGION, service: 'sagemaker', sha256: Sha256 });
    const { port } = new URL(fixture.url);
    const body = '4,5,6\n';
    const request = {
      method: 'POST',
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: Number(port),
      path: '/endpoints/churn-presigned/invocations',
      query: {},
      headers: { host: `127.0.0.1:${port}`, 'content-type': 'text/csv' },
      body,
    };
    const presigned = await signer.presign(request, { expiresIn: 60 });
    const query = new URLSearchParams(presigned.query as Record<string, string>).toString();
    const target = `${fixture.url}${presigned.path}?${query}`;
    const ok = await fetch(target, { method: 'POST', headers: { 'content-type': 'text/csv' }, body });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('5\n');
    // Another body is another request.
    const altered = await fetch(target, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: '7,8,9\n' });
    expect(altered.headers.get('x-amzn-errortype')).toBe('SignatureDoesNotMatch');

    const old = await signer.presign(request, { expiresIn: 60, signingDate: new Date(Date.now() - 5 * 60_000) });
    const expired = await fetch(
      `${fixture.url}${old.path}?${new URLSearchParams(old.query as Record<string, string>)}`,
      { method: 'POST', headers: { 'content-type': 'text/csv' }, body },
    );
    expect(expired.status).toBe(400);
    expect(expired.headers.get('x-amzn-errortype')).toBe('RequestExpired');
    expect(((await expired.json()) as { message: string }).message).toMatch(/Request has expired/);
  });

  it('takes x-amz-content-sha256, UNSIGNED-PAYLOAD included, and checks a declared hash against the body', async () => {
    const signer = new SignatureV4({ credentials: ADMIN, region: REGION, service: 'sagemaker', sha256: Sha256 });
    const { port } = new URL(fixture.url);
    const send = async (declared: string, body: string) => {
      const signed = await signer.sign({
        method: 'POST',
        protocol: 'http:',
        hostname: '127.0.0.1',
        port: Number(port),
        path: '/endpoints/churn-hash/invocations',
        query: {},
        headers: { host: `127.0.0.1:${port}`, 'content-type': 'text/csv', 'x-amz-content-sha256': declared },
        body,
      });
      return fetch(`${fixture.url}${signed.path}`, {
        method: 'POST',
        headers: signed.headers as Record<string, string>,
        body,
      });
    };
    expect((await send('UNSIGNED-PAYLOAD', '1,2\n')).status).toBe(200);
    const hash = createHash('sha256').update('1,2\n').digest('hex');
    expect((await send(hash, '1,2\n')).status).toBe(200);
    const wrong = await send(hash, '9,9\n');
    expect(wrong.status).toBe(400);
    expect(wrong.headers.get('x-amzn-errortype')).toBe('XAmzContentSHA256Mismatch');
  });
});

describe('the edge without access keys (the local default)', () => {
  let fixture: EdgeFixture;
  beforeAll(async () => {
    fixture = await startEdge(undefined);
  });
  afterAll(async () => {
    await fixture?.close();
  });

  it('serves unsigned requests and any SDK credentials from loopback, as LocalStack does', async () => {
    const client = comprehend(fixture.url, { accessKeyId: 'test', secretAccessKey: 'test' });
    expect((await detect(client)).Sentiment).toBe('POSITIVE');
    client.destroy();
    const response = await fetch(fixture.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'Comprehend_20171127.DetectSentiment' },
      body: '{"Text":"x","LanguageCode":"en"}',
    });
    expect(response.status).toBe(200);
    expect(fixture.received.at(-1)?.principal).toBe('anonymous');
  });

  it('refuses unsigned requests from other hosts', async () => {
    const authenticate = fixture.edge.authenticator!;
    const request = {
      method: 'POST',
      path: '/',
      query: new URLSearchParams(),
      headers: { 'x-amz-target': 'Comprehend_20171127.DetectSentiment' },
      body: Buffer.from('{}'),
      rawUrl: '/',
    };
    expect(() => authenticate({ ...request, remoteAddress: '192.0.2.10' })).toThrow(
      expect.objectContaining({ type: 'MissingAuthenticationToken', status: 403 }),
    );
    expect(() => authenticate({ ...request, remoteAddress: '::ffff:127.0.0.1' })).not.toThrow();
    expect(() => authenticate({ ...request, remoteAddress: '::1' })).not.toThrow();
  });
});

describe("the gateway's own calls", () => {
  it('are signed with its internal key and accepted when keys are configured', async () => {
    const config = configSchema.parse({ region: REGION, accountId: ACCOUNT, iam: iamWithKeys });
    const scope = { region: REGION, accountId: ACCOUNT };
    const internal = makeInternalKey(scope);
    const edge = new ServiceEdge({ host: '127.0.0.1', port: 0, maxBodyBytes: 1 << 20, logger: silentLogger });
    const principals: (string | undefined)[] = [];
    edge.authenticator = edgeAuthenticator({ iam: resolveIam(config), scope, internal });
    edge.jsonService('Comprehend_20171127', {
      BatchDetectSentiment: (_input, request) => {
        principals.push(request.principal);
        return {
          ResultList: [
            { Index: 0, Sentiment: 'POSITIVE', SentimentScore: { Positive: 1, Negative: 0, Neutral: 0, Mixed: 0 } },
          ],
          ErrorList: [],
        };
      },
    });
    edge.route('POST', '/endpoints/:name/invocations', () => ({ status: 200, body: '0.5\n' }));
    await edge.listen();
    try {
      const signed = new HttpMlServices({ endpoint: edge.url, sign: gatewaySigner(edge.url, internal, REGION) });
      expect(await signed.detectSentiment(['good'], 'en')).toEqual([{ sentiment: 'POSITIVE', confidence: 1 }]);
      expect(await signed.invokeEndpoint('churn-xgb', '1,2\n')).toBe('0.5\n');
      expect(principals).toEqual([`arn:aws:iam::${ACCOUNT}:user/pgsage-gateway`]);
      signed.close();
      const unsigned = new HttpMlServices({ endpoint: edge.url });
      await expect(unsigned.detectSentiment(['good'], 'en')).rejects.toMatchObject({ sqlstate: '38000' });
      unsigned.close();
    } finally {
      await edge.close();
    }
  });
});
