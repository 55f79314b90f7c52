/**
 * TLS material for the gateway (PostgreSQL's SSLRequest → 'S') and the edge
 * (HTTPS), read from the certificate and key files the `tls` configuration
 * names, and checked at start-up (a key that does not match its certificate is
 * reported then, not at the first client).
 */

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import type { TlsConfig } from './config.js';

export class TlsConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsConfigError';
  }
}

export interface CertificatePair {
  cert: Buffer;
  key: Buffer;
  /** Where they came from, for messages. */
  certFile: string;
}

export interface GatewayTls {
  context: tls.SecureContext;
  /** Refuse clients that do not negotiate TLS. */
  require: boolean;
}

export interface LoadedTls {
  gateway?: GatewayTls;
  edge?: CertificatePair;
}

function read(file: string, what: string, cwd: string): Buffer {
  const resolved = path.resolve(cwd, file);
  try {
    return readFileSync(resolved);
  } catch (error) {
    throw new TlsConfigError(`${what}: cannot read ${resolved}: ${(error as Error).message}`);
  }
}

function loadPair(
  pair: { cert?: string; key?: string },
  fallback: { cert?: string; key?: string },
  where: string,
  cwd: string,
): CertificatePair | undefined {
  const certFile = pair.cert ?? fallback.cert;
  const keyFile = pair.cert ? pair.key : fallback.key;
  if (!certFile || !keyFile) return undefined;
  const prefix = pair.cert ? where : 'tls';
  const cert = read(certFile, `${prefix}.cert`, cwd);
  const key = read(keyFile, `${prefix}.key`, cwd);
  try {
    tls.createSecureContext({ cert, key });
  } catch (error) {
    throw new TlsConfigError(
      `${prefix}: the certificate ${certFile} and key ${keyFile} cannot be used together: ${(error as Error).message}`,
    );
  }
  return { cert, key, certFile: path.resolve(cwd, certFile) };
}

/** Reads and checks the certificates of the `tls` section. Files are relative to `cwd`. */
export function loadTls(config: TlsConfig, cwd = process.cwd()): LoadedTls {
  const gatewayPair = loadPair(config.gateway, config, 'tls.gateway', cwd);
  const edge = loadPair(config.edge, config, 'tls.edge', cwd);
  if (config.gateway.require && !gatewayPair) {
    throw new TlsConfigError('tls.gateway.require is set, but no certificate is configured (tls.cert/tls.key)');
  }
  return {
    gateway: gatewayPair
      ? {
          context: tls.createSecureContext({ cert: gatewayPair.cert, key: gatewayPair.key }),
          require: config.gateway.require,
        }
      : undefined,
    edge,
  };
}

/**
 * Options for the gateway's own HTTPS client to the edge: it trusts exactly the
 * edge's certificate (pinned by its SHA-256 fingerprint), whatever names the
 * certificate carries, since it connects to the edge by address.
 */
export function pinnedClientOptions(pair: CertificatePair): https.AgentOptions {
  const fingerprint = new X509Certificate(pair.cert).fingerprint256;
  return {
    ca: pair.cert,
    allowPartialTrustChain: true,
    checkServerIdentity: (_host, peer) =>
      peer.fingerprint256 === fingerprint
        ? undefined
        : new Error(`the service edge presented a certificate other than ${pair.certFile}`),
  };
}
