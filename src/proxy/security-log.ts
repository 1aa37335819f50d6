/**
 * Security events of client connections — failed logins and protocol violations — logged with the client's
 * address and the user/database when known, and rate-limited so that a flood (a password-guessing loop, a port
 * scanner sending garbage) cannot fill the disk or drown the rest of the log.
 *
 * Per kind, at most `burst` lines per `intervalMs`; further events in that interval are counted, and one line
 * "suppressed N similar events" is written when the interval is over (at the next event of that kind or at the
 * next `tick`). Time is passed in (`now`, monotonic ms), so the limiter is tested without a clock.
 *
 * What is logged is chosen here, never a message body: the error's stable code and its message, which the
 * catalogues build from identifiers (user, type byte, length) — passwords and query text never reach an error
 * message of the login or framing code.
 */
import type { Logger } from '../lib/log.js';
import { isProtocolError } from '../protocol/index.js';
import { ProxyError, ProxyErrorCode } from './errors.js';

export const SecurityEventKind = { LoginFailed: 'login_failed', ProtocolViolation: 'protocol_violation' } as const;
export type SecurityEventKind = (typeof SecurityEventKind)[keyof typeof SecurityEventKind];

/** Lines per kind and interval before suppression: enough to see who and how, not enough to flood. */
export const SECURITY_LOG_BURST = 20;
export const SECURITY_LOG_INTERVAL_MS = 10_000;

const LOGIN_CODES: ReadonlySet<string> = new Set<string>([
  ProxyErrorCode.AuthFailed,
  ProxyErrorCode.AuthUnsupported,
  ProxyErrorCode.AuthQueryFailed,
  ProxyErrorCode.SslRequired,
  ProxyErrorCode.ClientCert,
  ProxyErrorCode.AdminDenied,
]);
const VIOLATION_CODES: ReadonlySet<string> = new Set<string>([
  ProxyErrorCode.StartupParameter,
  ProxyErrorCode.LoginTimeout,
  ProxyErrorCode.ClientTlsHandshake,
]);

/** Which security event an error that closes a client is, if any (pure). */
export function classifyClientError(err: unknown): SecurityEventKind | null {
  if (err instanceof ProxyError) {
    if (LOGIN_CODES.has(err.code)) return SecurityEventKind.LoginFailed;
    if (VIOLATION_CODES.has(err.code)) return SecurityEventKind.ProtocolViolation;
    return null;
  }
  if (isProtocolError(err))
    return err.code.startsWith('AUTH_') ? SecurityEventKind.LoginFailed : SecurityEventKind.ProtocolViolation;
  return null;
}

export interface SecurityEvent {
  /** "host:port" of the client. */
  readonly client: string;
  readonly user?: string;
  readonly database?: string;
  /** The error's stable code (catalogue). */
  readonly code: string;
  readonly message: string;
}

interface Window {
  start: number;
  logged: number;
  suppressed: number;
}

export class SecurityLog {
  private readonly windows = new Map<SecurityEventKind, Window>();

  constructor(
    private readonly log: Logger,
    private readonly burst = SECURITY_LOG_BURST,
    private readonly intervalMs = SECURITY_LOG_INTERVAL_MS,
  ) {}

  report(kind: SecurityEventKind, e: SecurityEvent, now: number): void {
    let w = this.windows.get(kind);
    if (w !== undefined && now - w.start >= this.intervalMs) {
      this.flush(kind, w);
      w = undefined;
    }
    if (w === undefined) this.windows.set(kind, (w = { start: now, logged: 0, suppressed: 0 }));
    if (w.logged >= this.burst) {
      w.suppressed++;
      return;
    }
    w.logged++;
    const fields: Record<string, unknown> = { event: kind, client: e.client, code: e.code, err: e.message };
    if (e.user) fields['user'] = e.user;
    if (e.database) fields['database'] = e.database;
    this.log.warn(kind === SecurityEventKind.LoginFailed ? 'client login failed' : 'client protocol violation', fields);
  }

  /** Ends intervals that are over (the janitor calls this): their suppressed counts are written without waiting. */
  tick(now: number): void {
    for (const [kind, w] of this.windows) {
      if (now - w.start < this.intervalMs) continue;
      this.flush(kind, w);
      this.windows.delete(kind);
    }
  }

  private flush(kind: SecurityEventKind, w: Window): void {
    if (w.suppressed === 0) return;
    this.log.warn(`suppressed ${w.suppressed} similar events`, { event: kind, interval_ms: this.intervalMs });
  }
}
