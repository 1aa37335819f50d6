/**
 * The proxy's error catalogue: every error a client can receive from pgkeel itself (as opposed to one forwarded
 * from a PostgreSQL server) has a stable code, a SQLSTATE and the identifiers involved. Sessions turn any error into
 * one ErrorResponse at one catch site (`errorResponseForAny`): a ProxyError by its catalogue entry, a codec
 * ProtocolError by its own, anything else as an internal error.
 *
 * SQLSTATEs: https://www.postgresql.org/docs/15/errcodes-appendix.html
 */
import { buildErrorResponse, type ErrorSeverity, isProtocolError } from '../protocol/index.js';

export const ProxyErrorCode = {
  TooManyClients: 'PROXY_MAX_CLIENT_CONN',
  AuthFailed: 'PROXY_AUTH_FAILED',
  AuthUnsupported: 'PROXY_AUTH_UNSUPPORTED',
  AuthQueryUnavailable: 'PROXY_AUTH_QUERY_UNAVAILABLE',
  AuthQueryFailed: 'PROXY_AUTH_QUERY_FAILED',
  StartupParameter: 'PROXY_STARTUP_PARAMETER',
  QueryWaitTimeout: 'PROXY_QUERY_WAIT_TIMEOUT',
  NoLeader: 'PROXY_NO_LEADER',
  NoReplica: 'PROXY_NO_REPLICA',
  ServerLost: 'PROXY_SERVER_LOST',
  ServerLogin: 'PROXY_SERVER_LOGIN',
  ServerRefused: 'PROXY_SERVER_REFUSED',
  Shutdown: 'PROXY_SHUTDOWN',
  Killed: 'PROXY_KILLED',
  ClientIdleTimeout: 'PROXY_CLIENT_IDLE_TIMEOUT',
  LoginTimeout: 'PROXY_LOGIN_TIMEOUT',
  AdminExtended: 'PROXY_ADMIN_EXTENDED',
  AdminSyntax: 'PROXY_ADMIN_SYNTAX',
  AdminDenied: 'PROXY_ADMIN_DENIED',
  SslRequired: 'PROXY_SSL_REQUIRED',
  ClientCert: 'PROXY_CLIENT_CERT',
  ServerTls: 'PROXY_SERVER_TLS',
  ClientTlsHandshake: 'PROXY_CLIENT_TLS_HANDSHAKE',
  Internal: 'PROXY_INTERNAL',
} as const;
export type ProxyErrorCode = (typeof ProxyErrorCode)[keyof typeof ProxyErrorCode];

interface Entry {
  readonly sqlstate: string;
  readonly severity: ErrorSeverity;
  /** One line for docs/errors.md. */
  readonly summary: string;
}

export const proxyErrorCatalogue: Readonly<Record<ProxyErrorCode, Entry>> = Object.freeze({
  PROXY_MAX_CLIENT_CONN: {
    sqlstate: '53300',
    severity: 'FATAL',
    summary: 'max_client_conn client connections are already open.',
  },
  PROXY_AUTH_FAILED: {
    sqlstate: '28P01',
    severity: 'FATAL',
    summary: 'Password authentication failed (unknown user, wrong password).',
  },
  PROXY_AUTH_UNSUPPORTED: {
    sqlstate: '28000',
    severity: 'FATAL',
    summary: "The auth file's secret cannot serve the configured auth_type (e.g. md5 hash with scram-sha-256).",
  },
  PROXY_AUTH_QUERY_UNAVAILABLE: {
    sqlstate: '08006',
    severity: 'FATAL',
    summary:
      'auth_query could not be run on the primary within server_connect_timeout (no leader, the auth_user could not log in, connection lost).',
  },
  PROXY_AUTH_QUERY_FAILED: {
    sqlstate: '28000',
    severity: 'FATAL',
    summary:
      'auth_query failed on the server or returned something other than (user name, password) in at most one row; the proxy log has details.',
  },
  PROXY_STARTUP_PARAMETER: {
    sqlstate: '08P01',
    severity: 'FATAL',
    summary: 'A start-up parameter the proxy cannot keep per client (not tracked, not in ignore_startup_parameters).',
  },
  PROXY_QUERY_WAIT_TIMEOUT: {
    sqlstate: '08P01',
    severity: 'FATAL',
    summary: 'The client waited query_wait_timeout for a server connection.',
  },
  PROXY_NO_LEADER: {
    sqlstate: '08006',
    severity: 'FATAL',
    summary: 'The client waited query_wait_timeout and the cluster had no leader the whole time.',
  },
  PROXY_NO_REPLICA: {
    sqlstate: '08006',
    severity: 'FATAL',
    summary:
      'The client waited query_wait_timeout and no replica was eligible (lag, noloadbalance) and fallback is off.',
  },
  PROXY_SERVER_LOST: {
    sqlstate: '08006',
    severity: 'FATAL',
    summary: "The server connection serving the client's transaction closed or was fenced (node died or was demoted).",
  },
  PROXY_SERVER_LOGIN: {
    sqlstate: '08001',
    severity: 'FATAL',
    summary: 'The proxy could not log in to the server (network error) within query_wait_timeout.',
  },
  PROXY_SERVER_REFUSED: {
    sqlstate: '08004',
    severity: 'FATAL',
    summary: 'The server refused the login (its own error is passed on with its SQLSTATE when it has one).',
  },
  PROXY_SHUTDOWN: {
    sqlstate: '57P01',
    severity: 'FATAL',
    summary: 'The proxy is shutting down (SIGTERM or SHUTDOWN).',
  },
  PROXY_KILLED: { sqlstate: '57P01', severity: 'FATAL', summary: 'An admin closed the connection (KILL).' },
  PROXY_CLIENT_IDLE_TIMEOUT: {
    sqlstate: '57P05',
    severity: 'FATAL',
    summary: 'The client was idle longer than client_idle_timeout.',
  },
  PROXY_LOGIN_TIMEOUT: {
    sqlstate: '08P01',
    severity: 'FATAL',
    summary: 'The client did not finish start-up and authentication within client_login_timeout.',
  },
  PROXY_ADMIN_EXTENDED: {
    sqlstate: '08P01',
    severity: 'FATAL',
    summary: 'The admin console speaks only the simple query protocol.',
  },
  PROXY_ADMIN_SYNTAX: { sqlstate: '42601', severity: 'ERROR', summary: 'Unknown or malformed admin console command.' },
  PROXY_ADMIN_DENIED: {
    sqlstate: '42501',
    severity: 'FATAL',
    summary: 'The user is not in admin_users/stats_users (or may only run SHOW).',
  },
  PROXY_SSL_REQUIRED: {
    sqlstate: '28000',
    severity: 'FATAL',
    summary:
      'client_tls_sslmode is require (or verify-ca/verify-full) and the client sent its StartupMessage without TLS.',
  },
  PROXY_CLIENT_CERT: {
    sqlstate: '28000',
    severity: 'FATAL',
    summary:
      "client_tls_sslmode is verify-ca/verify-full and the client's certificate is not valid for client_tls_ca_file (unknown CA, expired).",
  },
  PROXY_SERVER_TLS: {
    sqlstate: '08001',
    severity: 'FATAL',
    summary:
      'TLS to the server failed as server_tls_sslmode demands: the server refused TLS, or its certificate is not valid for server_tls_ca_file or the host name.',
  },
  PROXY_CLIENT_TLS_HANDSHAKE: {
    sqlstate: '08P01',
    severity: 'FATAL',
    summary:
      "A client's TLS handshake failed after the proxy answered 'S' (not TLS, no common protocol, no certificate under verify-*); only logged: the connection cannot carry an answer.",
  },
  PROXY_INTERNAL: {
    sqlstate: 'XX000',
    severity: 'FATAL',
    summary: 'A bug in pgkeel: the connection is closed, others are unaffected.',
  },
});

export type ErrorContext = Readonly<Record<string, string | number>>;

/** A server's own ErrorResponse fields to pass on (SQLSTATE and text) instead of the catalogue's. */
export interface ServerErrorFields {
  readonly sqlstate: string;
  readonly message: string;
  readonly detail?: string | undefined;
  readonly hint?: string | undefined;
}

export class ProxyError extends Error {
  override readonly name = 'ProxyError';
  readonly sqlstate: string;
  readonly severity: ErrorSeverity;

  constructor(
    readonly code: ProxyErrorCode,
    message: string,
    readonly context: ErrorContext = {},
    /** When the error comes from a server, its fields (the client sees the server's SQLSTATE). */
    readonly server?: ServerErrorFields,
    severity?: ErrorSeverity,
  ) {
    super(message);
    const e = proxyErrorCatalogue[code];
    this.sqlstate = server?.sqlstate && /^[0-9A-Z]{5}$/.test(server.sqlstate) ? server.sqlstate : e.sqlstate;
    this.severity = severity ?? e.severity;
  }
}

/** The one catch site's translation: any thrown value → an ErrorResponse. */
export function errorResponseForAny(err: unknown, severity?: ErrorSeverity): Buffer {
  if (err instanceof ProxyError) {
    return buildErrorResponse({
      severity: severity ?? err.severity,
      sqlstate: err.sqlstate,
      message: err.message,
      ...(err.server?.detail !== undefined ? { detail: err.server.detail } : {}),
      ...(err.server?.hint !== undefined ? { hint: err.server.hint } : {}),
    });
  }
  if (isProtocolError(err))
    return buildErrorResponse({ severity: severity ?? 'FATAL', sqlstate: err.sqlstate, message: err.message });
  const message = err instanceof Error ? err.message : String(err);
  return buildErrorResponse({ severity: 'FATAL', sqlstate: 'XX000', message: `pgkeel internal error: ${message}` });
}

export function proxyError(code: ProxyErrorCode, message: string, context: ErrorContext = {}): ProxyError {
  return new ProxyError(code, message, context);
}
