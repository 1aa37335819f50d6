/**
 * A client's start-up and login, up to its first ReadyForQuery: SSLRequest answered as client_tls_sslmode says
 * (tls.ts), GSSENCRequest refused with 'N', CancelRequest routed, StartupMessage checked, authentication
 * (client-auth.ts) against a secret from the auth file now or from auth_query later, then the pool and its server
 * parameters, and the login reply.
 *
 * Functions of the ClientConn (client.ts), which owns the socket, the framer and the phase: a login runs once per
 * client, and what it needs only until then (start-up parameters, the auth exchange, unwritten replies) is dropped
 * when it is done, so an idle client keeps none of it.
 */
import {
  buildBackendKeyData,
  buildNegotiateProtocolVersion,
  buildReadyForQuery,
  EncryptionResponse,
  type Frame,
  FrontendCode,
  ProtocolError,
  ProtocolErrorCode,
  type StartupPacket,
  TxStatus,
} from '../../protocol/index.js';
import type { UserSecret } from '../auth/auth-file.js';
import { ClientAuth } from '../auth/client-auth.js';
import { ClientPhase } from './client-phase.js';
import { STREAM_ABOVE_BYTES, STREAMED_FRONTEND } from './client-request.js';
import type { ClientConn } from './client.js';
import { ProxyError, ProxyErrorCode } from '../errors.js';
import { parameterStatusBlock } from './login-reply.js';
import { parseOptions, shareParams, trackedName } from './params.js';
import { checkClientTls } from '../tls.js';
import { useTls } from './client-socket.js';

export const ADMIN_DATABASES: ReadonlySet<string> = new Set(['pgbouncer', 'pgkeel']);

/** A start-up packet (the only frames of the Startup phase). */
export function onStartup(c: ClientConn, p: StartupPacket): void {
  switch (p.kind) {
    case 'ssl':
    case 'gssenc':
      if (c.framer.bufferedBytes > 0)
        throw new ProtocolError(ProtocolErrorCode.BadStartup, 'received unencrypted data after an encryption request');
      if (p.kind === 'ssl' && c.host.clientTls.context) return useTls(c);
      c.socket.write(Buffer.from([EncryptionResponse.Refuse]));
      return;
    case 'cancel':
      c.host.cancel(p.pid, p.secret);
      c.phase = ClientPhase.Closed;
      c.host.forget(c);
      c.socket.destroy();
      return;
    case 'startup':
      checkClientTls(c.socket, c.host.clientTls);
      return onStartupMessage(c, p.params, p.minor);
  }
}

/** A frame of the Auth phase; false: it must wait (the secret is still being looked up, auth_query). */
export function authFrame(c: ClientConn, f: Frame): boolean {
  if (c.auth === null) return false;
  if (f.type !== FrontendCode.PasswordMessage)
    throw new ProtocolError(ProtocolErrorCode.UnknownMessage, 'expected a password response during authentication', {
      type: f.type,
    });
  const step = c.auth.step(f.payload);
  sendEarly(c, step.send);
  if (step.kind === 'done') afterAuth(c);
  else flushEarly(c);
  return true;
}

function onStartupMessage(c: ClientConn, params: ReadonlyMap<string, string>, minor: number): void {
  const cfg = c.host.config;
  const unsupported = [...params.keys()].filter((k) => k.startsWith('_pq_.'));
  if (minor > 0 || unsupported.length) sendEarly(c, buildNegotiateProtocolVersion(0, unsupported));
  const user = params.get('user');
  if (!user)
    throw new ProxyError(ProxyErrorCode.StartupParameter, 'no PostgreSQL user name specified in startup packet');
  c.user = user;
  c.database = params.get('database') || user;
  c.admin = ADMIN_DATABASES.has(c.database);
  const startupParams = (c.startupParams = new Map<string, string>());
  for (const [name, value] of params) {
    if (name === 'user' || name === 'database' || name.startsWith('_pq_.')) continue;
    const tracked = trackedName(name);
    if (tracked) startupParams.set(tracked, value);
    else if (name === 'options') for (const [k, v] of parseOptions(value)) startupParams.set(k, v);
    else if (!cfg.ignore_startup_parameters.includes(name))
      throw new ProxyError(ProxyErrorCode.StartupParameter, `unsupported startup parameter: ${name}`, {
        parameter: name,
      });
  }
  c.applicationName = startupParams.get('application_name') ?? '';
  c.host.admit(c);
  c.phase = ClientPhase.Auth;
  const secret = c.host.userSecret(user, c.database, c.admin);
  if (!(secret instanceof Promise)) return startAuth(c, secret);
  // auth_query: until the secret arrives `auth` is null, so authFrame leaves the client's frames in the framer.
  flushEarly(c);
  secret.then(
    (s) => secretArrived(c, s),
    (err: unknown) => c.fatal(err),
  );
}

function secretArrived(c: ClientConn, secret: UserSecret | undefined): void {
  if (c.phase !== ClientPhase.Auth || c.auth) return; // the client left (or timed out) meanwhile
  try {
    startAuth(c, secret);
  } catch (err) {
    return c.fatal(err);
  }
  c.pump();
}

function startAuth(c: ClientConn, secret: UserSecret | undefined): void {
  const { config: cfg, authRandom, scramCache } = c.host;
  // With a user list (auth file or auth_query) even trust needs the user to exist.
  c.auth = new ClientAuth(
    cfg.auth_type,
    c.user,
    secret,
    c.host.hasAuthFile || cfg.auth_user !== undefined,
    authRandom,
    scramCache,
  );
  const step = c.auth.start();
  sendEarly(c, step.send);
  if (step.kind === 'done') afterAuth(c);
  else flushEarly(c);
}

/**
 * Login replies are collected and written at once (AuthenticationOk, ParameterStatus…, ReadyForQuery in one
 * write: each write wakes the client). Flushed before waiting for the client or a server, and before an error.
 */
function sendEarly(c: ClientConn, b: Buffer): void {
  (c.early ??= []).push(b);
}

export function flushEarly(c: ClientConn): void {
  const early = c.early;
  c.early = null;
  if (early !== null && c.socket.writable)
    c.socket.write(early.length === 1 ? (early[0] as Buffer) : Buffer.concat(early));
}

function afterAuth(c: ClientConn): void {
  const cfg = c.host.config;
  c.framer.maxMessageBytes = cfg.max_packet_size;
  c.framer.maxHeldBytes = Math.min(cfg.max_buffered_packet_size, cfg.max_packet_size);
  if (!c.admin) {
    // Long messages go to the server as they arrive (pgBouncer's behaviour), not held whole: see client-request.ts.
    c.framer.streamAbove = STREAM_ABOVE_BYTES;
    c.framer.streamTypes = STREAMED_FRONTEND;
  }
  if (c.auth?.passThroughKeys) c.host.rememberScramKeys(c.user, c.auth.passThroughKeys);
  c.auth = null;
  if (c.admin) {
    c.host.checkAdmin(c);
    return finishLogin(c, c.host.adminParams());
  }
  const e = c.host.poolFor(c.role, c.database, c.user);
  c.entry = e;
  c.user = e.user; // the pool's copies: one string per pool instead of one per client
  c.database = e.database;
  e.pool.clients++;
  e.stats.client_login_count++;
  c.phase = ClientPhase.Params;
  if (e.serverParams) return finishLogin(c, e.serverParams);
  flushEarly(c);
  c.host.serverParams(e).then(
    (p) => {
      if (c.phase !== ClientPhase.Params) return;
      finishLogin(c, p);
      c.pump();
    },
    (err: unknown) => c.fatal(err),
  );
}

function finishLogin(c: ClientConn, serverParams: ReadonlyMap<string, string>): void {
  const startupParams = c.startupParams ?? new Map<string, string>();
  c.startupParams = null;
  for (const [name, value] of serverParams) {
    const tracked = trackedName(name);
    if (tracked) c.params.set(tracked, startupParams.get(tracked) ?? value);
  }
  for (const [name, value] of startupParams) c.params.set(name, value);
  c.params = shareParams(c.params);
  const out = [
    parameterStatusBlock(serverParams, c.params),
    buildBackendKeyData(c.pid, c.secret),
    buildReadyForQuery(TxStatus.Idle),
  ];
  const early = c.early;
  c.early = null;
  c.socket.write(Buffer.concat(early === null ? out : [...early, ...out]));
  c.phase = ClientPhase.Ready;
}
