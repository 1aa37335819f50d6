/**
 * Who may call the unsafe endpoints: HTTP basic auth against `restapi.authentication` and, on https with
 * `verify_client` optional or required, a client certificate signed by `restapi.cafile` (Patroni's check_auth:
 * 403 without the certificate, then 401 without the credentials).
 *
 * Credentials are compared as SHA-256 digests with timingSafeEqual, so neither their content nor their length
 * shows in the answer time. Failures are logged with the client's address, at most once per interval with a
 * count of the ones left out, and never with what the client sent.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../lib/log.js';

export interface BasicCredentials {
  readonly username?: string;
  readonly password?: string;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** `Authorization: Basic base64(user:password)`; the scheme name is case-insensitive (RFC 7617). */
function parseBasic(header: string | undefined): { user: string; password: string } | null {
  const m = /^basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header ?? '');
  if (!m) return null;
  const bytes = Buffer.from(m[1] as string, 'base64');
  // Node's decoder skips what it cannot read; only the canonical encoding of the decoded bytes is accepted.
  if (bytes.toString('base64') !== m[1]) return null;
  const text = bytes.toString('utf8');
  const i = text.indexOf(':');
  return i < 0 ? null : { user: text.slice(0, i), password: text.slice(i + 1) };
}

/** True when the request carries exactly the configured credentials (or none are configured). */
export function credentialsMatch(header: string | undefined, auth: BasicCredentials | undefined): boolean {
  if (!auth?.username) return true;
  const got = parseBasic(header);
  // Both comparisons always run: a wrong user takes as long as a wrong password.
  const userOk = timingSafeEqual(digest(got?.user ?? ''), digest(auth.username));
  const passOk = timingSafeEqual(digest(got?.password ?? ''), digest(auth.password ?? ''));
  return got !== null && userOk && passOk;
}

export type VerifyClient = 'none' | 'optional' | 'required';

export type AuthVerdict = { ok: true } | { ok: false; code: 401 | 403; reason: string };

export function checkAccess(
  req: IncomingMessage,
  auth: BasicCredentials | undefined,
  verifyClient: VerifyClient,
): AuthVerdict {
  const sock = req.socket as Partial<TLSSocket>;
  if (sock.encrypted && verifyClient !== 'none' && sock.authorized !== true)
    return { ok: false, code: 403, reason: 'client certificate required' };
  if (!credentialsMatch(req.headers.authorization, auth))
    return { ok: false, code: 401, reason: req.headers.authorization ? 'wrong credentials' : 'no credentials' };
  return { ok: true };
}

/** Logs refused requests: the first at once, then at most one line per `everyMs` saying how many were left out. */
export class AuthFailureLog {
  private lastAt = -Infinity;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly now: () => number,
    private readonly everyMs = 10_000,
  ) {}

  refused(req: IncomingMessage, reason: string): void {
    const t = this.now();
    if (t - this.lastAt < this.everyMs) {
      this.suppressed++;
      return;
    }
    const fields = {
      client: req.socket.remoteAddress ?? 'unknown',
      method: req.method,
      path: (req.url ?? '').split('?')[0],
      reason,
      ...(this.suppressed ? { suppressed_since_last: this.suppressed } : {}),
    };
    this.log.warn('REST request refused: authentication failed', fields);
    this.lastAt = t;
    this.suppressed = 0;
  }
}
