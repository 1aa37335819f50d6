/**
 * TLS on both sides of the proxy, with pgBouncer's settings and meanings (client_tls_*, server_tls_*; pgBouncer
 * doc/config.md "TLS settings"):
 *
 * - clients: an SSLRequest is answered 'S' (then the socket becomes a server-side TLSSocket) unless
 *   client_tls_sslmode is disable ('N'); require and verify-* refuse a plain StartupMessage; verify-* also demand a
 *   client certificate signed by client_tls_ca_file. A plain CancelRequest is always accepted (libpq before 17
 *   never encrypts cancels).
 * - servers: with any mode but disable the connection starts with SSLRequest; on 'S' it becomes a TLS client
 *   connection checked as libpq's sslmode says (require: no check, verify-ca: chain, verify-full: chain and host
 *   name); on 'N' prefer/allow carry on in plaintext and the others fail.
 *
 * Key and certificate files are read into SecureContexts once, at start and on RELOAD (`loadTls`), never per
 * connection. The mode → options mappings are pure and unit-tested (tls.test.ts); the socket work is the small
 * upgrade helpers at the end.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import {
  checkServerIdentity,
  connect as tlsConnect,
  type ConnectionOptions,
  createSecureContext,
  type SecureContext,
  TLSSocket,
} from 'node:tls';
import { ConfigError, type Problem } from '../config/schema.js';
import {
  BackendCode,
  buildSSLRequest,
  EncryptionResponse,
  ProtocolError,
  ProtocolErrorCode,
} from '../protocol/index.js';
import type { ProxyConfig } from './config.js';
import { ProxyError, ProxyErrorCode } from './errors.js';

/** libpq's sslmode names (pgBouncer uses the same for both sides). */
export const TlsMode = {
  Disable: 'disable',
  Allow: 'allow',
  Prefer: 'prefer',
  Require: 'require',
  VerifyCa: 'verify-ca',
  VerifyFull: 'verify-full',
} as const;
export type TlsMode = (typeof TlsMode)[keyof typeof TlsMode];
export const TLS_MODES: readonly TlsMode[] = Object.values(TlsMode);

/** What a client-side mode means for the proxy acting as the TLS server. */
export interface ClientModeRules {
  /** SSLRequest answered 'S'. */
  readonly accept: boolean;
  /** A plain StartupMessage is refused (SQLSTATE 28000). */
  readonly required: boolean;
  /** Ask for, and insist on, a client certificate signed by client_tls_ca_file. */
  readonly verifyPeer: boolean;
}

export function clientModeRules(mode: TlsMode): ClientModeRules {
  switch (mode) {
    case 'disable':
      return { accept: false, required: false, verifyPeer: false };
    case 'allow':
    case 'prefer':
      return { accept: true, required: false, verifyPeer: false };
    case 'require':
      return { accept: true, required: true, verifyPeer: false };
    case 'verify-ca':
    case 'verify-full': // pgBouncer: same as verify-ca (a client certificate has no host name to match)
      return { accept: true, required: true, verifyPeer: true };
  }
}

/** What a server-side mode means for the proxy acting as the TLS client (libpq's sslmode). */
export interface ServerModeRules {
  /** Send SSLRequest before StartupMessage. */
  readonly request: boolean;
  /** 'N' is acceptable: continue in plaintext. */
  readonly fallback: boolean;
  /** The certificate chain must lead to server_tls_ca_file. */
  readonly verifyChain: boolean;
  /** The certificate must name the host the proxy connected to. */
  readonly verifyHost: boolean;
}

export function serverModeRules(mode: TlsMode): ServerModeRules {
  switch (mode) {
    case 'disable':
      return { request: false, fallback: true, verifyChain: false, verifyHost: false };
    case 'allow': // pgBouncer sends SSLRequest for allow as for prefer (libpq's "plain first, then TLS" is not built)
    case 'prefer':
      return { request: true, fallback: true, verifyChain: false, verifyHost: false };
    case 'require':
      return { request: true, fallback: false, verifyChain: false, verifyHost: false };
    case 'verify-ca':
      return { request: true, fallback: false, verifyChain: true, verifyHost: false };
    case 'verify-full':
      return { request: true, fallback: false, verifyChain: true, verifyHost: true };
  }
}

export interface ClientTls {
  readonly mode: TlsMode;
  readonly rules: ClientModeRules;
  /** Key, certificate (and CA for verify-*); null when mode is disable. */
  readonly context: SecureContext | null;
}

export interface ServerTls {
  readonly mode: TlsMode;
  readonly rules: ServerModeRules;
  /** CA, and the proxy's own key and certificate when configured; null when mode is disable. */
  readonly context: SecureContext | null;
}

export interface TlsContexts {
  readonly client: ClientTls;
  readonly server: ServerTls;
}

export const SERVER_TLS_DISABLED: ServerTls = { mode: 'disable', rules: serverModeRules('disable'), context: null };

/** The settings whose change makes RELOAD close server connections (pgBouncer reconnects on any TLS change). */
const SERVER_KEYS = [
  'server_tls_sslmode',
  'server_tls_ca_file',
  'server_tls_key_file',
  'server_tls_cert_file',
] as const;

export function serverTlsChanged(a: ProxyConfig, b: ProxyConfig): boolean {
  return SERVER_KEYS.some((k) => a[k] !== b[k]);
}

/**
 * Reads the configured files and builds both SecureContexts. Throws ConfigError naming the key and path of a file
 * that cannot be read, or the keys whose contents OpenSSL refuses (not PEM, key and certificate do not match).
 * Which files a mode needs is checked earlier, by the config's cross-field rules.
 */
export function loadTls(c: ProxyConfig, source: string): TlsContexts {
  const problems: Problem[] = [];
  const read = (key: keyof ProxyConfig): Buffer | undefined => {
    const path = c[key];
    if (typeof path !== 'string' || path === '') return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      problems.push({ path: key, message: `cannot read "${path}": ${(err as Error).message}` });
      return undefined;
    }
  };
  /** `files`: setting → contents, for the ones configured (named in the problem when OpenSSL refuses them). */
  const build = (
    files: Partial<Record<'key' | 'cert' | 'ca', [keyof ProxyConfig, Buffer | undefined]>>,
  ): SecureContext | null => {
    const used = Object.values(files).filter(([, v]) => v !== undefined);
    const ca = files.ca;
    if (ca?.[1] !== undefined) {
      // OpenSSL skips what is not a certificate in a CA bundle: a wrong file would only show as failed verifications.
      try {
        new X509Certificate(ca[1]);
      } catch (err) {
        problems.push({ path: ca[0], message: `"${c[ca[0]]}" holds no PEM certificate: ${(err as Error).message}` });
        return null;
      }
    }
    try {
      return createSecureContext({ key: files.key?.[1], cert: files.cert?.[1], ca: files.ca?.[1] });
    } catch (err) {
      problems.push({
        path: used.map(([k]) => k).join(', '),
        message: `not usable (${used.map(([k]) => c[k]).join(', ')}): ${(err as Error).message}`,
      });
      return null;
    }
  };
  const cMode = c.client_tls_sslmode;
  const cRules = clientModeRules(cMode);
  let client: ClientTls = { mode: cMode, rules: cRules, context: null };
  if (cMode !== 'disable') {
    const key = read('client_tls_key_file');
    const cert = read('client_tls_cert_file');
    const ca = cRules.verifyPeer ? read('client_tls_ca_file') : undefined;
    if (problems.length === 0) {
      client = {
        ...client,
        context: build({
          key: ['client_tls_key_file', key],
          cert: ['client_tls_cert_file', cert],
          ca: ['client_tls_ca_file', ca],
        }),
      };
    }
  }
  const sMode = c.server_tls_sslmode;
  let server: ServerTls = { mode: sMode, rules: serverModeRules(sMode), context: null };
  if (sMode !== 'disable') {
    const before = problems.length;
    const ca = read('server_tls_ca_file');
    const key = read('server_tls_key_file');
    const cert = read('server_tls_cert_file');
    if (problems.length === before) {
      server = {
        ...server,
        context: build({
          key: ['server_tls_key_file', key],
          cert: ['server_tls_cert_file', cert],
          ca: ['server_tls_ca_file', ca],
        }),
      };
    }
  }
  if (problems.length) throw new ConfigError(problems, source);
  return { client, server };
}

// ---- the server's answer to our SSLRequest ----

export type SslAnswer =
  | { readonly kind: 'tls' }
  | { readonly kind: 'plain' }
  /** `fatal`: retrying will not help (the server's configuration says no), as opposed to a garbled answer. */
  | { readonly kind: 'error'; readonly message: string; readonly fatal: boolean };

/**
 * The first read after SSLRequest: one byte. Anything after 'S' or 'N' in the same read was sent before the
 * handshake and is refused (CVE-2021-23222: a man in the middle injecting plaintext responses).
 */
export function sslAnswer(mode: TlsMode, chunk: Buffer): SslAnswer {
  const b = chunk[0];
  if (b === EncryptionResponse.SSLAccept) {
    if (chunk.length > 1)
      return { kind: 'error', message: 'received unencrypted data after the SSL response', fatal: false };
    return { kind: 'tls' };
  }
  if (b === EncryptionResponse.Refuse) {
    if (chunk.length > 1) return { kind: 'error', message: 'received data after the server refused SSL', fatal: false };
    if (serverModeRules(mode).fallback) return { kind: 'plain' };
    return { kind: 'error', message: 'the server does not support SSL', fatal: true };
  }
  // 'E': servers answer an SSLRequest with an error only when they cannot start a backend at all.
  if (b === BackendCode.ErrorResponse)
    return { kind: 'error', message: 'the server answered the SSLRequest with an error', fatal: false };
  return {
    kind: 'error',
    message: `unexpected answer to SSLRequest (byte 0x${(b ?? 0).toString(16).padStart(2, '0')})`,
    fatal: false,
  };
}

/** tls.connect options for a server connection; `host` is what the certificate must name under verify-full. */
export function serverConnectOptions(tls: ServerTls, host: string, socket: Socket): ConnectionOptions {
  const r = tls.rules;
  return {
    socket,
    host,
    // SNI carries host names only (RFC 6066); Node warns when given an IP address.
    ...(isIP(host) === 0 ? { servername: host } : {}),
    ...(tls.context ? { secureContext: tls.context } : {}),
    rejectUnauthorized: r.verifyChain,
    checkServerIdentity: r.verifyHost ? checkServerIdentity : () => undefined,
  };
}

/**
 * A TLS failure on a server connection as a catalogue error; fatal (waiting clients get it now instead of
 * retrying until query_wait_timeout) unless it is a network error, which a retry may fix.
 */
export function serverTlsError(
  nodeName: string,
  addr: string,
  mode: TlsMode,
  err: Error,
): { err: ProxyError; fatal: boolean } {
  const transient = 'syscall' in err;
  return {
    err: new ProxyError(
      ProxyErrorCode.ServerTls,
      `TLS to node "${nodeName}" (${addr}) failed (server_tls_sslmode ${mode}): ${err.message}`,
      { node: nodeName },
    ),
    fatal: !transient,
  };
}

/**
 * The StartupMessage gate (nothing but SSLRequest, GSSENCRequest and CancelRequest comes before it): throws the
 * FATAL a client gets when client_tls_sslmode wants TLS, or a verified client certificate, that it does not have.
 */
export function checkClientTls(socket: Socket, tls: ClientTls): void {
  if (!tls.rules.required) return;
  if (!isTlsSocket(socket))
    throw new ProxyError(
      ProxyErrorCode.SslRequired,
      'SSL required: client_tls_sslmode does not allow unencrypted connections',
    );
  if (!tls.rules.verifyPeer) return;
  const why = peerChecks.get(socket);
  if (why !== null)
    throw new ProxyError(
      ProxyErrorCode.ClientCert,
      `client certificate not accepted (client_tls_sslmode ${tls.mode}): ${why ?? 'not checked'}`,
    );
}

// ---- SHOW CLIENTS / SHOW SERVERS ----

/** Node's getEphemeralKeyInfo(): {} or null when unknown (always on the server side of a connection). */
type KeyInfo = { readonly type?: string; readonly name?: string; readonly size?: number } | null;

/** pgBouncer's (libusual's tls_get_connection_info) format: "TLSv1.3/TLS_AES_256_GCM_SHA384/ECDH=X25519". */
export function formatTlsInfo(protocol: string, cipher: string, key: KeyInfo): string {
  let kx = '';
  if (key?.type === 'ECDH' && key.name) kx = `/ECDH=${key.name}`;
  else if (key?.type === 'DH' && key.size) kx = `/DH=${key.size}`;
  return `${protocol}/${cipher}${kx}`;
}

/** The `tls` column: empty for a plain connection or one still in its handshake. */
export function tlsInfo(socket: Socket): string {
  if (!(socket instanceof TLSSocket)) return '';
  const protocol = socket.getProtocol();
  const cipher = socket.getCipher() as { name?: string } | undefined;
  if (!protocol || protocol === 'unknown' || !cipher?.name) return ''; // 'unknown': handshake under way
  return formatTlsInfo(protocol, cipher.name, socket.getEphemeralKeyInfo() as KeyInfo);
}

// ---- socket upgrades ----

const SSL_REQUEST = buildSSLRequest();
const SSL_ACCEPT = Buffer.from([EncryptionResponse.SSLAccept]);

export function sslRequestBytes(): Buffer {
  return SSL_REQUEST;
}

export function isTlsSocket(socket: Socket): socket is TLSSocket {
  return socket instanceof TLSSocket;
}

/**
 * Accepts a client's SSLRequest: writes 'S' and returns the same connection as the server side of a TLS session.
 * A second SSLRequest inside TLS is a protocol violation. A failed handshake is an 'error' and 'close' on the
 * returned socket: that client only.
 */
export function startClientTls(raw: Socket, tls: ClientTls): TLSSocket {
  if (isTlsSocket(raw))
    throw new ProtocolError(ProtocolErrorCode.BadStartup, 'SSLRequest on a connection that is already encrypted');
  // Written before the TLS session takes over the handle; the client sends nothing until it has read it.
  raw.write(SSL_ACCEPT);
  const t = new TLSSocket(raw, {
    isServer: true,
    secureContext: tls.context as SecureContext,
    // With both, OpenSSL ends a handshake without a client certificate; the chain is checked below.
    requestCert: tls.rules.verifyPeer,
    rejectUnauthorized: tls.rules.verifyPeer,
  });
  if (tls.rules.verifyPeer) t.once('secure', () => peerChecks.set(t, peerVerifyError(t)));
  return t;
}

/** verify-*: per client TLS socket, null when its certificate chains to client_tls_ca_file, else why not. */
const peerChecks = new WeakMap<Socket, string | null>();

/**
 * Node checks a client certificate against the CA only for sockets a tls.Server accepted (onServerSocketSecure in
 * lib/_tls_wrap.js): a TLSSocket built on an accepted socket, as here, completes the handshake with a certificate
 * from any CA and `authorized` stays false. The same check through the handle's verifyError() — as pg-gateway does —
 * failing closed should that internal go away.
 */
function peerVerifyError(t: TLSSocket): string | null {
  const handle = (t as unknown as { _handle?: { verifyError?: () => (Error & { code?: string }) | null } })._handle;
  if (typeof handle?.verifyError !== 'function') return 'this Node.js version does not expose the verification result';
  const err = handle.verifyError();
  return err ? (err.code ?? err.message) : null;
}

/** After the server's 'S': the same connection as the client side of a TLS session. */
export function upgradeServerSocket(raw: Socket, tls: ServerTls, host: string): TLSSocket {
  return tlsConnect(serverConnectOptions(tls, host, raw));
}

/**
 * Sends a CancelRequest on a new connection, encrypted as server_tls_sslmode says — what libpq 17's cancel API
 * does with the connection's sslmode (PostgreSQL accepts an SSLRequest before a CancelRequest). The key is a
 * secret: under require and verify-* it never travels in plaintext. Best effort, bounded by `timeoutMs`.
 */
export function sendCancelRequest(
  to: { readonly host: string; readonly port: number },
  msg: Buffer,
  tls: ServerTls,
  timeoutMs = 5000,
): void {
  const s = netConnect({ host: to.host, port: to.port });
  const drop = (): void => void s.destroy();
  s.on('error', drop);
  // A deadline for the whole exchange: after an upgrade the raw socket sees no activity of its own.
  s.setTimeout(timeoutMs, drop);
  if (!tls.rules.request) {
    s.on('connect', () => s.end(msg));
    return;
  }
  s.on('connect', () => s.write(SSL_REQUEST));
  s.once('data', (chunk: Buffer) => {
    const a = sslAnswer(tls.mode, chunk);
    if (a.kind === 'plain') return void s.end(msg);
    if (a.kind === 'error') return drop();
    const t = upgradeServerSocket(s, tls, to.host);
    t.on('error', () => t.destroy());
    t.on('close', drop);
    t.on('secureConnect', () => t.end(msg));
  });
}
