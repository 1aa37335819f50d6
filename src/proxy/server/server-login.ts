/**
 * A server connection's login, up to the server's first ReadyForQuery: SSLRequest first when server_tls_sslmode
 * asks for it (tls.ts; the one-byte answer arrives through the same read path as everything else, and on 'S' the
 * connection continues on a TLS socket), the StartupMessage, then the authentication exchange — trust, cleartext,
 * md5, SCRAM-SHA-256 — with the auth file's password or the SCRAM keys recovered from a client (pass-through).
 *
 * Functions of the ServerConn (server-conn.ts), which owns the socket, the framer and the state; the response pump
 * is there. Login failures are reported once, through ServerConn.fail, as PROXY_SERVER_LOGIN (or
 * PROXY_SERVER_REFUSED when the server sent an ErrorResponse, fatal unless it is one worth retrying).
 */
import {
  BackendCode,
  buildPasswordMessage,
  buildSASLInitialResponse,
  buildSASLResponse,
  buildStartupMessage,
  type Frame,
  md5Response,
  parseAuthentication,
  parseBackendKeyData,
  parseNoticeFields,
  SCRAM_SHA_256,
  ScramClient,
  type ScramKeys,
  scramKeysFromPassword,
} from '../../protocol/index.js';
import { ProxyError, ProxyErrorCode } from '../errors.js';
import type { NodeAddr } from '../pool/router.js';
import type { ServerConn } from './server-conn.js';
import { serverTlsError, type ServerTls, sslAnswer, sslRequestBytes, upgradeServerSocket } from '../tls.js';

export interface ServerLogin {
  readonly user: string;
  readonly database: string;
  /** Plaintext or md5 secret from the auth file; undefined for trust. */
  readonly password: string | undefined;
  /** Keys recovered from a client's SCRAM exchange (when the auth file holds a verifier). */
  readonly scramKeys: ScramKeys | null;
  /** PBKDF2 results per salt/iterations for `password`, shared by every connection of the user. */
  readonly keyCache: Map<string, ScramKeys>;
  readonly connectTimeoutMs: number;
  /** server_tls_*; absent: plaintext. */
  readonly tls?: ServerTls;
}

/** Login failures worth retrying: the server is starting, stopping, in recovery, or full. */
const TRANSIENT_SQLSTATES = new Set(['57P03', '53300', '57P01', '57P02']);
/** Allowed SCRAM iterations when hashing a plaintext password (event-loop protection, as node-postgres). */
const MAX_ITERATIONS = 100_000;

export function loginError(node: NodeAddr, why: string): ProxyError {
  return new ProxyError(
    ProxyErrorCode.ServerLogin,
    `cannot log in to node "${node.name}" (${node.host}:${node.port}): ${why}`,
    { node: node.name },
  );
}

/** The TCP connection is up: SSLRequest first when server_tls_sslmode asks for one, else the StartupMessage. */
export function onConnect(s: ServerConn): void {
  if (s.login.tls?.rules.request) {
    s.sslRequested = true;
    s.socket.write(sslRequestBytes());
  } else sendStartup(s);
}

/** Bytes read in the login phase. */
export function loginData(s: ServerConn, chunk: Buffer): void {
  if (s.sslRequested) return onSslAnswer(s, chunk);
  s.framer.push(chunk);
  loginFrames(s);
}

function sendStartup(s: ServerConn): void {
  s.socket.write(buildStartupMessage({ user: s.login.user, database: s.login.database }));
}

/** The server's answer to SSLRequest: plaintext from here, a TLS handshake, or a failed login. */
function onSslAnswer(s: ServerConn, chunk: Buffer): void {
  s.sslRequested = false;
  const tls = s.login.tls as ServerTls;
  const a = sslAnswer(tls.mode, chunk);
  if (a.kind === 'plain') return sendStartup(s);
  if (a.kind === 'error') {
    const { err } = serverTlsError(s.node.name, s.remoteAddr, tls.mode, new Error(a.message));
    return s.fail(err, a.fatal);
  }
  const t = upgradeServerSocket(s.socket, tls, s.node.host);
  s.socket = t;
  let secure = false;
  t.on('secureConnect', () => {
    secure = true;
    sendStartup(s);
  });
  // Handshake failures (certificate refused, TLS alert) get the TLS catalogue entry; later errors as any other.
  t.on('error', (err) => {
    if (secure) return;
    const e = serverTlsError(s.node.name, s.remoteAddr, tls.mode, err);
    s.fail(e.err, e.fatal);
  });
  s.watchSocket(t);
  t.on('data', (b: Buffer) => s.onTlsData(b));
}

function loginFrames(s: ServerConn): void {
  try {
    for (let f = s.framer.next(); f !== undefined; f = s.framer.next()) {
      if (s.state !== 'login') throw loginError(s.node, 'data after ReadyForQuery in the login phase');
      switch (f.type) {
        case BackendCode.Authentication:
          onAuth(s, f.payload);
          break;
        case BackendCode.ParameterStatus:
          s.onParameterStatus(f, null);
          break;
        case BackendCode.BackendKeyData: {
          const k = parseBackendKeyData(f.payload);
          s.backendPid = k.pid;
          s.backendSecret = k.secret;
          break;
        }
        case BackendCode.ErrorResponse:
          return refused(s, f);
        case BackendCode.ReadyForQuery:
          s.loggedIn();
          break;
        default:
          break; // NoticeResponse, NegotiateProtocolVersion
      }
    }
  } catch (err) {
    // Our own refusals (no password for the user, an md5 hash where cleartext is asked) will not change on a retry:
    // fail the waiting clients now instead of at client_login_timeout.
    if (err instanceof ProxyError) s.fail(err, err.code === ProxyErrorCode.ServerRefused);
    else s.fail(loginError(s.node, (err as Error).message), false);
  }
}

function refused(s: ServerConn, f: Frame): void {
  const n = parseNoticeFields(f.payload);
  const err = new ProxyError(ProxyErrorCode.ServerRefused, n.message, { node: s.node.name, sqlstate: n.sqlstate }, n);
  s.fail(err, !TRANSIENT_SQLSTATES.has(n.sqlstate));
}

function onAuth(s: ServerConn, payload: Buffer): void {
  const a = parseAuthentication(payload);
  const { user, password } = s.login;
  const need = (): string => {
    if (password === undefined)
      throw new ProxyError(
        ProxyErrorCode.ServerRefused,
        `server asks for a password for user "${user}" and the auth file has none`,
        { user },
      );
    return password;
  };
  switch (a.kind) {
    case 'ok':
      return;
    case 'cleartext':
      if (need().startsWith('md5') && need().length === 35)
        throw new ProxyError(
          ProxyErrorCode.ServerRefused,
          `server asks for a cleartext password for "${user}" and the auth file holds only an md5 hash`,
          { user },
        );
      s.socket.write(buildPasswordMessage(need()));
      return;
    case 'md5':
      s.socket.write(buildPasswordMessage(md5Response(user, need(), a.salt)));
      return;
    case 'sasl': {
      if (!a.mechanisms.includes(SCRAM_SHA_256))
        throw loginError(s.node, `server offers no supported SASL mechanism (${a.mechanisms.join(', ')})`);
      if (s.login.scramKeys) {
        s.scram = new ScramClient(s.login.scramKeys);
      } else {
        need();
        // Keys are filled from the cache (or one PBKDF2) once the server's salt and iteration count are known.
        s.lazyKeys = { clientKey: Buffer.alloc(0), serverKey: Buffer.alloc(0) };
        s.scram = new ScramClient(s.lazyKeys);
      }
      s.socket.write(buildSASLInitialResponse(SCRAM_SHA_256, s.scram.clientFirst()));
      return;
    }
    case 'sasl-continue': {
      if (!s.scram) throw loginError(s.node, 'SASLContinue without SASL');
      if (s.lazyKeys) Object.assign(s.lazyKeys, keysFor(s, a.data.toString('utf8')));
      s.socket.write(buildSASLResponse(s.scram.onServerFirst(a.data)));
      return;
    }
    case 'sasl-final':
      if (!s.scram) throw loginError(s.node, 'SASLFinal without SASL');
      s.scram.verifyServerFinal(a.data);
      return;
    default:
      throw loginError(s.node, `server asks for an unsupported authentication method (code ${a.code})`);
  }
}

function keysFor(s: ServerConn, serverFirst: string): ScramKeys {
  const salt = /(?:^|,)s=([^,]*)/.exec(serverFirst)?.[1] ?? '';
  const iter = Number(/(?:^|,)i=(\d+)/.exec(serverFirst)?.[1] ?? 0);
  if (!(iter > 0 && iter <= MAX_ITERATIONS)) throw loginError(s.node, `server asks for ${iter} SCRAM iterations`);
  const k = `${salt}:${iter}`;
  let keys = s.login.keyCache.get(k);
  if (!keys) {
    keys = scramKeysFromPassword(s.login.password as string, Buffer.from(salt, 'base64'), iter);
    s.login.keyCache.set(k, keys);
  }
  return keys;
}
