/**
 * Calls to a member's REST API — from `pgkeel ctl` and from one agent to another (member status while the leader
 * key is free, failsafe confirmations) — over http or https, with basic auth for the unsafe endpoints.
 *
 * Certificates follow Patroni's `patroni/request.py`: each of certfile, keyfile, keyfile_password comes from the
 * `ctl` section, else from `restapi`; the CA from `ctl.cacert`, else `restapi.cafile`; credentials from
 * `restapi.authentication`. `ctl.insecure` skips verification, except that with a client certificate the chain
 * is still verified and only the host name is not (Patroni's behaviour). Plain http needs none of it.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { NodeConfig } from '../config/node.js';

export interface RestTls {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly passphrase?: string;
  readonly insecure: boolean;
}

export interface RestCredentials {
  readonly username: string;
  readonly password: string;
}

export interface RestClientOptions {
  readonly auth: RestCredentials | undefined;
  readonly tls: RestTls;
}

export interface RestAnswer {
  readonly code: number;
  readonly text: string;
  readonly headers: IncomingMessage['headers'];
}

/** The files named in the config could not be read: names the key and the file. */
export class RestTlsFileError extends Error {
  readonly code = 'REST_TLS_FILE';
}

/** The PEM file a config key names, or a RestTlsFileError naming both. */
export function readPem(key: string, file: string | undefined): Buffer | undefined {
  if (!file) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new RestTlsFileError(
      `${key}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

export type RestClientConfig = Pick<NodeConfig, 'restapi' | 'ctl'>;

/** Patroni's precedence (ctl first, then restapi); reads the PEM files once. */
export function restClientOptions(cfg: RestClientConfig): RestClientOptions {
  const { ctl, restapi } = cfg;
  const a = restapi.authentication;
  const certKey = ctl.certfile ? 'ctl' : 'restapi';
  const certfile = ctl.certfile ?? restapi.certfile;
  const keyfile = ctl.certfile ? ctl.keyfile : restapi.keyfile;
  const passphrase = ctl.certfile ? ctl.keyfile_password : restapi.keyfile_password;
  const cert = readPem(`${certKey}.certfile`, certfile);
  const tls: RestTls = {
    ca: ctl.cacert ? readPem('ctl.cacert', ctl.cacert) : readPem('restapi.cafile', restapi.cafile),
    cert,
    key: cert ? (readPem(`${certKey}.keyfile`, keyfile) ?? cert) : undefined,
    ...(passphrase !== undefined ? { passphrase } : {}),
    insecure: ctl.insecure,
  };
  return { auth: a?.username ? { username: a.username, password: a.password ?? '' } : undefined, tls };
}

export const NO_TLS_OPTIONS: RestClientOptions = { auth: undefined, tls: { insecure: false } };

/** `METHOD url` with a JSON body; resolves on any HTTP answer, rejects on a network error or the timeout. */
export function restRequest(
  url: URL,
  method: string,
  opts: RestClientOptions,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<RestAnswer> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string | number> = {};
  if (payload !== undefined)
    Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  if (opts.auth && method !== 'GET' && method !== 'HEAD')
    headers['authorization'] = 'Basic ' + Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64');
  const https = url.protocol === 'https:';
  const t = opts.tls;
  const tlsOptions = https
    ? {
        ...(t.ca ? { ca: t.ca } : {}),
        ...(t.cert ? { cert: t.cert, key: t.key } : {}),
        ...(t.passphrase !== undefined ? { passphrase: t.passphrase } : {}),
        // insecure: no verification at all, or — with a client certificate — the chain but not the host name.
        rejectUnauthorized: !t.insecure || !!t.cert,
        ...(t.insecure ? { checkServerIdentity: () => undefined } : {}),
        agent: false as const,
      }
    : { agent: false as const };
  return new Promise((resolve, reject) => {
    const req = (https ? httpsRequest : httpRequest)(url, { method, headers, ...tlsOptions }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ code: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), headers: res.headers });
      });
      res.on('error', reject);
    });
    // The whole exchange, not just idle time: a peer trickling its answer must not stall an HA cycle.
    const timer = setTimeout(() => {
      const e = new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`);
      e.name = 'TimeoutError';
      req.destroy(e);
    }, timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end(payload);
  });
}

const cached = new WeakMap<RestClientConfig, RestClientOptions>();

/** The agent's own client options, read once per loaded config (the PEM files do not change under a running agent). */
export function restClientFor(cfg: RestClientConfig): RestClientOptions {
  let o = cached.get(cfg);
  if (!o) cached.set(cfg, (o = restClientOptions(cfg)));
  return o;
}

/** This member's `api_url` as published in the DCS: https:// when the REST API serves TLS. */
export function memberApiUrl(cfg: Pick<NodeConfig, 'restapi'>): string {
  return `${cfg.restapi.certfile ? 'https' : 'http'}://${cfg.restapi.connect_address}/patroni`;
}
