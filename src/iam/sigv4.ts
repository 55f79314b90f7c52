/**
 * AWS Signature Version 4 (AWS4-HMAC-SHA256): signing, and verification as the
 * AWS services do it — the Authorization header form and the presigned
 * query-string form, `x-amz-content-sha256` (including UNSIGNED-PAYLOAD), a
 * 15-minute clock-skew window — with AWS's error codes and messages.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { AwsError } from '../services/errors.js';

export const ALGORITHM = 'AWS4-HMAC-SHA256';
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** How far a request's time may be from the server's clock. */
export const MAX_SKEW_MS = 15 * 60_000;
/** The longest a presigned URL may stay valid (seven days). */
export const MAX_PRESIGN_SECONDS = 604_800;

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export const sha256Hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();

/** RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ is percent-encoded. */
export function uriEscape(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Percent-decodes, leaving malformed escapes as they are (the signature then simply fails). */
function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * The canonical URI of a path as it was sent (still percent-encoded): dot
 * segments and empty segments removed, then encoded once more, as every AWS
 * service except S3 does (S3 signs the path as sent).
 */
export function canonicalUri(rawPath: string, doubleEncode = true): string {
  if (!doubleEncode) return rawPath || '/';
  const segments: string[] = [];
  for (const segment of rawPath.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const trailing = segments.length > 0 && rawPath.endsWith('/') ? '/' : '';
  return `/${segments.map(uriEscape).join('/')}${trailing}`;
}

/** Query pairs from a raw query string (without '?'), decoded. */
export function queryPairs(rawQuery: string): [string, string][] {
  if (!rawQuery) return [];
  return rawQuery
    .split('&')
    .filter((part) => part !== '')
    .map((part) => {
      const eq = part.indexOf('=');
      const key = eq < 0 ? part : part.slice(0, eq);
      const value = eq < 0 ? '' : part.slice(eq + 1);
      return [safeDecode(key.replace(/\+/g, '%20')), safeDecode(value.replace(/\+/g, '%20'))];
    });
}

export function canonicalQuery(pairs: [string, string][]): string {
  return pairs
    .map(([k, v]) => [uriEscape(k), uriEscape(v)])
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

type HeaderBag = Record<string, string | string[] | undefined>;

function headerValue(headers: HeaderBag, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

export function canonicalHeaders(headers: HeaderBag, signed: string[]): string {
  return signed.map((name) => `${name}:${(headerValue(headers, name) ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
}

export interface CanonicalRequestInput {
  method: string;
  /** The path as sent, percent-encoded. */
  rawPath: string;
  query: [string, string][];
  /** Lower-case header names. */
  headers: HeaderBag;
  signedHeaders: string[];
  payloadHash: string;
  doubleEncodePath?: boolean;
}

export function canonicalRequest(input: CanonicalRequestInput): string {
  return [
    input.method.toUpperCase(),
    canonicalUri(input.rawPath, input.doubleEncodePath ?? true),
    canonicalQuery(input.query),
    canonicalHeaders(input.headers, input.signedHeaders),
    input.signedHeaders.join(';'),
    input.payloadHash,
  ].join('\n');
}

export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
}

export function stringToSign(amzDate: string, scope: string, canonical: string): string {
  return [ALGORITHM, amzDate, scope, sha256Hex(canonical)].join('\n');
}

/** 20150830T123600Z from a Date. */
export function amzDate(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

function parseAmzDate(text: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) return undefined;
  const date = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

// ---------------------------------------------------------------- signing

export interface SignRequest {
  method: string;
  /** Path as it goes on the wire (percent-encoded), optionally with ?query. */
  path: string;
  /** Modified in place: host must be present; x-amz-date and authorization are added. */
  headers: Record<string, string>;
  body: Buffer | string;
}

export interface SignOptions {
  credentials: Credentials;
  region: string;
  service: string;
  now?: Date;
  /** Also send x-amz-content-sha256 (S3 style), or UNSIGNED-PAYLOAD. */
  contentSha256?: 'body' | 'unsigned';
}

/** Signs a request in place with an Authorization header. */
export function signRequest(request: SignRequest, options: SignOptions): void {
  const now = options.now ?? new Date();
  const date = amzDate(now);
  const headers = request.headers;
  for (const name of Object.keys(headers)) {
    const lower = name.toLowerCase();
    if (lower !== name) {
      headers[lower] = headers[name];
      delete headers[name];
    }
  }
  if (!headers.host) throw new Error('signRequest: the host header is required');
  headers['x-amz-date'] = date;
  let payloadHash = sha256Hex(request.body);
  if (options.contentSha256) {
    payloadHash = options.contentSha256 === 'unsigned' ? UNSIGNED_PAYLOAD : payloadHash;
    headers['x-amz-content-sha256'] = payloadHash;
  }
  const q = request.path.indexOf('?');
  const rawPath = q < 0 ? request.path : request.path.slice(0, q);
  const rawQuery = q < 0 ? '' : request.path.slice(q + 1);
  const signed = Object.keys(headers)
    .filter((name) => !['authorization', 'content-length', 'user-agent', 'expect'].includes(name))
    .sort();
  const scope = `${date.slice(0, 8)}/${options.region}/${options.service}/aws4_request`;
  const canonical = canonicalRequest({
    method: request.method,
    rawPath,
    query: queryPairs(rawQuery),
    headers,
    signedHeaders: signed,
    payloadHash,
  });
  const signature = createHmac(
    'sha256',
    signingKey(options.credentials.secretAccessKey, date.slice(0, 8), options.region, options.service),
  )
    .update(stringToSign(date, scope, canonical))
    .digest('hex');
  headers.authorization = `${ALGORITHM} Credential=${options.credentials.accessKeyId}/${scope}, SignedHeaders=${signed.join(';')}, Signature=${signature}`;
}

// ---------------------------------------------------------------- verification

export interface VerifiableRequest {
  method: string;
  /** The request target as received: path?query, still percent-encoded. */
  url: string;
  /** Lower-case header names (Node's IncomingMessage.headers). */
  headers: HeaderBag;
  body: Buffer;
}

export interface VerifyOptions {
  /** The secret of an access key id, or undefined when the key is unknown. */
  secretFor(accessKeyId: string): string | undefined;
  /** The only region requests may be scoped to. */
  region: string;
  /** The signing name the request's service uses (comprehend, sagemaker …), when known. */
  service?: string;
  now?: Date;
}

export interface VerifiedSignature {
  accessKeyId: string;
  region: string;
  service: string;
  signedHeaders: string[];
  presigned: boolean;
}

/** Whether the request carries SigV4 authentication at all (header or query form). */
export function hasSignature(request: Pick<VerifiableRequest, 'url' | 'headers'>): boolean {
  if (headerValue(request.headers, 'authorization') !== undefined) return true;
  const q = request.url.indexOf('?');
  return q >= 0 && /(^|&)X-Amz-(Algorithm|Signature|Credential)=/i.test(request.url.slice(q + 1));
}

const incomplete = (message: string) => new AwsError('IncompleteSignature', message, 400);
const mismatch = (message: string) => new AwsError('SignatureDoesNotMatch', message, 403);

const SIGNATURE_MISMATCH =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

interface ParsedAuth {
  credential: string;
  signedHeaders: string;
  signature: string;
  amzDate: string;
  expires?: number;
}

function parseAuthorizationHeader(header: string, headers: HeaderBag): ParsedAuth {
  const space = header.indexOf(' ');
  const algorithm = space < 0 ? header : header.slice(0, space);
  if (algorithm !== ALGORITHM) {
    throw incomplete(
      `Unsupported authorization type ${algorithm || '(empty)'}; pgsage accepts ${ALGORITHM} (Signature Version 4) only.`,
    );
  }
  const fields = new Map<string, string>();
  for (const part of header.slice(space + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const missing = ['Credential', 'SignedHeaders', 'Signature'].filter((name) => !fields.get(name));
  const date = headerValue(headers, 'x-amz-date') ?? '';
  if (!date && !headerValue(headers, 'date')) missing.push('X-Amz-Date');
  if (missing.length) {
    throw incomplete(
      `${missing.map((name) => (name === 'X-Amz-Date' ? "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header." : `Authorization header requires '${name}' parameter.`)).join(' ')} Authorization=${header}`,
    );
  }
  let amz = date;
  if (!amz) {
    const parsed = new Date(headerValue(headers, 'date')!);
    amz = Number.isNaN(parsed.getTime()) ? '' : amzDate(parsed);
  }
  return {
    credential: fields.get('Credential')!,
    signedHeaders: fields.get('SignedHeaders')!,
    signature: fields.get('Signature')!,
    amzDate: amz,
  };
}

function parsePresigned(pairs: [string, string][]): ParsedAuth {
  const get = (name: string) => pairs.find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
  const algorithm = get('X-Amz-Algorithm');
  if (algorithm !== undefined && algorithm !== ALGORITHM) {
    throw incomplete(`Unsupported X-Amz-Algorithm ${algorithm}; pgsage accepts ${ALGORITHM} only.`);
  }
  const required = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-SignedHeaders', 'X-Amz-Signature'];
  const missing = required.filter((name) => !get(name));
  if (missing.length) {
    throw incomplete(`AWS query-string parameters missing: ${missing.join(', ')}.`);
  }
  const expiresText = get('X-Amz-Expires');
  let expires: number | undefined;
  if (expiresText !== undefined) {
    expires = Number(expiresText);
    if (!Number.isInteger(expires) || expires < 0 || expires > MAX_PRESIGN_SECONDS) {
      throw incomplete(
        `X-Amz-Expires must be an integer from 0 to ${MAX_PRESIGN_SECONDS} (seconds), not ${expiresText}.`,
      );
    }
  }
  return {
    credential: get('X-Amz-Credential')!,
    signedHeaders: get('X-Amz-SignedHeaders')!,
    signature: get('X-Amz-Signature')!,
    amzDate: get('X-Amz-Date')!,
    expires,
  };
}

/**
 * Verifies a request's SigV4 signature. Returns who signed it; throws an
 * AwsError shaped as AWS answers: IncompleteSignature, InvalidClientTokenId,
 * SignatureDoesNotMatch, RequestExpired, XAmzContentSHA256Mismatch.
 */
export function verifyRequest(request: VerifiableRequest, options: VerifyOptions): VerifiedSignature {
  const now = options.now ?? new Date();
  const q = request.url.indexOf('?');
  const rawPath = q < 0 ? request.url : request.url.slice(0, q);
  const pairs = queryPairs(q < 0 ? '' : request.url.slice(q + 1));
  const header = headerValue(request.headers, 'authorization');
  const presigned = pairs.some(([k]) => /^X-Amz-(Algorithm|Signature|Credential)$/i.test(k));
  if (header !== undefined && presigned) {
    throw incomplete(
      'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified.',
    );
  }
  const auth = presigned ? parsePresigned(pairs) : parseAuthorizationHeader(header ?? '', request.headers);

  const scopeParts = auth.credential.split('/');
  if (scopeParts.length !== 5 || scopeParts[4] !== 'aws4_request' || scopeParts.some((p) => p === '')) {
    throw incomplete(
      `Credential must have the form <access key id>/<YYYYMMDD>/<region>/<service>/aws4_request, not ${auth.credential}.`,
    );
  }
  const [accessKeyId, scopeDate, scopeRegion, scopeService] = scopeParts;

  const signedHeaders = auth.signedHeaders.split(';');
  if (!signedHeaders.includes('host')) {
    throw incomplete("'Host' must be a 'SignedHeader' in the AWS Authorization.");
  }
  for (const name of ['x-amz-target', 'x-amz-content-sha256', 'x-amz-date']) {
    if (!presigned && headerValue(request.headers, name) !== undefined && !signedHeaders.includes(name)) {
      throw incomplete(`'${name}' is present but not among the SignedHeaders; it must be signed.`);
    }
  }
  if (
    presigned &&
    headerValue(request.headers, 'x-amz-target') !== undefined &&
    !signedHeaders.includes('x-amz-target')
  ) {
    throw incomplete("'x-amz-target' is present but not among the X-Amz-SignedHeaders; it must be signed.");
  }
  if (
    [...signedHeaders].sort().join(';') !== signedHeaders.join(';') ||
    signedHeaders.some((h) => h !== h.toLowerCase())
  ) {
    throw mismatch(SIGNATURE_MISMATCH);
  }

  const secret = options.secretFor(accessKeyId);
  if (secret === undefined) {
    throw new AwsError('InvalidClientTokenId', 'The security token included in the request is invalid.', 403);
  }

  const time = parseAmzDate(auth.amzDate);
  if (!time)
    throw incomplete(`X-Amz-Date must be in the ISO 8601 basic format YYYYMMDD'T'HHMMSS'Z', not ${auth.amzDate}.`);
  if (scopeDate !== auth.amzDate.slice(0, 8)) {
    throw mismatch(
      `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${scopeDate}' != '${auth.amzDate.slice(0, 8)}', from '${auth.amzDate}'.`,
    );
  }
  if (scopeRegion !== options.region) {
    throw mismatch(
      `Credential should be scoped to a valid region, not '${scopeRegion}'. This pgsage serves '${options.region}'.`,
    );
  }
  if (options.service && scopeService !== options.service) {
    throw mismatch(`Credential should be scoped to correct service: '${options.service}'.`);
  }

  const skew = time.getTime() - now.getTime();
  if (presigned) {
    if (skew > MAX_SKEW_MS) {
      throw new AwsError(
        'RequestExpired',
        `Request is not yet valid: ${auth.amzDate} is later than ${amzDate(new Date(now.getTime() + MAX_SKEW_MS))} (${amzDate(now)} + 15 min.)`,
        400,
      );
    }
    const expiresAt = time.getTime() + (auth.expires ?? MAX_PRESIGN_SECONDS) * 1000;
    if (now.getTime() > expiresAt) {
      throw new AwsError(
        'RequestExpired',
        `Request has expired: it was valid until ${amzDate(new Date(expiresAt))}, now is ${amzDate(now)}.`,
        400,
      );
    }
  } else if (skew < -MAX_SKEW_MS) {
    throw new AwsError(
      'RequestExpired',
      `Signature expired: ${auth.amzDate} is now earlier than ${amzDate(new Date(now.getTime() - MAX_SKEW_MS))} (${amzDate(now)} - 15 min.)`,
      400,
    );
  } else if (skew > MAX_SKEW_MS) {
    throw new AwsError(
      'RequestExpired',
      `Signature not yet current: ${auth.amzDate} is still later than ${amzDate(new Date(now.getTime() + MAX_SKEW_MS))} (${amzDate(now)} + 15 min.)`,
      400,
    );
  }

  const declared = headerValue(request.headers, 'x-amz-content-sha256');
  // Hashing a large body costs time on the event loop: only when the signature covers it.
  let hashed: string | undefined;
  const bodyHash = () => {
    hashed ??= request.body.length ? sha256Hex(request.body) : EMPTY_SHA256;
    return hashed;
  };
  if (declared !== undefined && declared !== UNSIGNED_PAYLOAD && !declared.startsWith('STREAMING-')) {
    if (declared.toLowerCase() !== bodyHash()) {
      throw new AwsError(
        'XAmzContentSHA256Mismatch',
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
        400,
      );
    }
  } else if (declared?.startsWith('STREAMING-')) {
    throw incomplete(`x-amz-content-sha256 ${declared} (chunked signing) is not supported by pgsage.`);
  }
  // The presigned form signs the body hash or, as S3 URLs do, UNSIGNED-PAYLOAD.
  const candidates = declared !== undefined ? [declared] : presigned ? [bodyHash(), UNSIGNED_PAYLOAD] : [bodyHash()];

  const key = signingKey(secret, scopeDate, scopeRegion, scopeService);
  const scope = `${scopeDate}/${scopeRegion}/${scopeService}/aws4_request`;
  const provided = Buffer.from(auth.signature.toLowerCase(), 'utf8');
  const query = presigned ? pairs.filter(([k]) => k !== 'X-Amz-Signature') : pairs;
  for (const payloadHash of candidates) {
    for (const doubleEncodePath of [true, false]) {
      const canonical = canonicalRequest({
        method: request.method,
        rawPath,
        query,
        headers: request.headers,
        signedHeaders,
        payloadHash,
        doubleEncodePath,
      });
      const expected = Buffer.from(
        createHmac('sha256', key)
          .update(stringToSign(auth.amzDate, scope, canonical))
          .digest('hex'),
        'utf8',
      );
      if (expected.length === provided.length && timingSafeEqual(expected, provided)) {
        return { accessKeyId, region: scopeRegion, service: scopeService, signedHeaders, presigned };
      }
      // S3 signs the path as sent; every other service encodes it once more. Identical for plain paths.
      if (canonicalUri(rawPath, true) === canonicalUri(rawPath, false)) break;
    }
  }
  throw mismatch(SIGNATURE_MISMATCH);
}
