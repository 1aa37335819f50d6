/**
 * etcd v3 authentication through the JSON gateway, as Patroni's etcd3 client does it: `POST /v3/auth/authenticate`
 * with the user name and password gives a token, sent as the `Authorization` header (the bare token, no scheme) on
 * every call and watch. etcd's simple tokens live in one member's memory and expire (`--auth-token-ttl`, 300 s by
 * default), so tokens are kept per endpoint and a call answered "invalid auth token" gets one new token and one retry.
 *
 * The password is only ever put in the authenticate request's body; no message built here contains it.
 */
import { text, type Outcome } from './etcd-codec.js';
import { attempt, type Endpoint, type EtcdTransport } from './etcd-transport.js';
import { StoreError } from './store.js';

export interface EtcdCredentials {
  readonly username: string;
  readonly password: string;
}

/** etcd's error strings (etcdserver/api/v3rpc/rpctypes/error.go, 3.4); they are what the gateway returns. */
const STALE_TOKEN = /invalid auth token|revision of auth store is old/;
const NO_USER = /user name is empty/;
const DENIED = /permission denied/;
const BAD_CREDENTIALS = /authentication failed|invalid user ID or password/;
const AUTH_DISABLED = /authentication is not enabled/;
/** etcd 3.4's gateway with --client-cert-auth answers 400 to a client certificate that has a CN (it would be taken as the user). */
const CN_REFUSED = /CommonName of client sending a request against gateway/;

/** A refusal a new token may cure: the token expired, the member restarted, or users/roles changed since. */
export function isStaleToken(reason: string): boolean {
  return STALE_TOKEN.test(reason);
}

/** The member answered that it runs without authentication. */
export function isAuthDisabled(reason: string): boolean {
  return AUTH_DISABLED.test(reason);
}

/**
 * The catalogued error for a refusal that is about authentication or permissions (`DCS_AUTH`), else undefined.
 * Names the endpoint and the user, never the password.
 */
export function authRefusal(
  ep: string,
  path: string,
  reason: string,
  username: string | undefined,
): StoreError | undefined {
  if (CN_REFUSED.test(reason)) {
    return new StoreError(
      'DCS_AUTH',
      `etcd ${ep} refused the client certificate: its JSON gateway does not accept certificates with a subject CommonName when --client-cert-auth is on; use a client certificate without CN (subjectAltName only)`,
      ep,
    );
  }
  if (NO_USER.test(reason) || (username === undefined && DENIED.test(reason))) {
    return new StoreError(
      'DCS_AUTH',
      `etcd ${ep} requires authentication for ${path} and no user is configured (${reason}): set the etcd username and password (etcd3.username / etcd3.password)`,
      ep,
    );
  }
  if (DENIED.test(reason)) {
    return new StoreError(
      'DCS_AUTH',
      `etcd ${ep} denied user "${username ?? ''}" ${path}: ${reason}; grant the user's role readwrite on the cluster's prefix`,
      ep,
    );
  }
  if (BAD_CREDENTIALS.test(reason)) {
    return new StoreError(
      'DCS_AUTH',
      `etcd ${ep} refused the credentials of user "${username ?? ''}": ${reason}; check etcd3.username / etcd3.password`,
      ep,
    );
  }
  if (isStaleToken(reason)) {
    return new StoreError(
      'DCS_AUTH',
      `etcd ${ep} refused a fresh token of user "${username ?? ''}" for ${path}: ${reason}`,
      ep,
    );
  }
  return undefined;
}

/** A token for an endpoint, or the outcome that prevented getting one (unavailable: try the next member). */
export type TokenOutcome = { readonly kind: 'token'; readonly token: string } | Exclude<Outcome, { kind: 'ok' }>;

/** Tokens per endpoint. `''` means "this member has authentication disabled": calls go without a header. */
export class EtcdTokens {
  private readonly tokens = new Map<string, string>();
  /** One authenticate per endpoint at a time: concurrent calls share it (etcd hashes the password with bcrypt each time). */
  private readonly pending = new Map<string, Promise<TokenOutcome>>();
  private readonly body: string;

  constructor(
    private readonly transport: EtcdTransport,
    readonly creds: EtcdCredentials,
  ) {
    this.body = JSON.stringify({ name: creds.username, password: creds.password });
  }

  /** The cached token of `ep`, or a new one. Throws DCS_AUTH when the member refuses the credentials. */
  async get(ep: Endpoint, timeoutMs: number, closing: AbortSignal): Promise<TokenOutcome> {
    const cached = this.tokens.get(ep.text);
    if (cached !== undefined) return { kind: 'token', token: cached };
    let p = this.pending.get(ep.text);
    if (!p) {
      p = this.authenticate(ep, timeoutMs, closing).finally(() => this.pending.delete(ep.text));
      this.pending.set(ep.text, p);
    }
    return await p;
  }

  private async authenticate(ep: Endpoint, timeoutMs: number, closing: AbortSignal): Promise<TokenOutcome> {
    const out = await attempt(this.transport, ep, '/v3/auth/authenticate', this.body, {}, timeoutMs, closing);
    if (out.kind === 'unavailable') return out;
    let token: string;
    if (out.kind === 'ok') {
      token = text(out.json, 'token');
      if (token === '') return { kind: 'refused', reason: 'etcd answered /v3/auth/authenticate without a token' };
    } else if (isAuthDisabled(out.reason)) {
      // Credentials configured before etcd's auth is enabled: work unauthenticated until it is (then "user name is empty" → new token).
      token = '';
    } else {
      throw (
        authRefusal(ep.text, '/v3/auth/authenticate', out.reason, this.creds.username) ??
        new StoreError(
          'DCS_REQUEST',
          `etcd ${ep.text} refused /v3/auth/authenticate for user "${this.creds.username}": ${out.reason}`,
          ep.text,
        )
      );
    }
    this.tokens.set(ep.text, token);
    return { kind: 'token', token };
  }

  /** Forgets `token` of `ep` unless another call has already replaced it. */
  drop(ep: Endpoint, token: string): void {
    if (this.tokens.get(ep.text) === token) this.tokens.delete(ep.text);
  }
}

/** Headers for a call made with `token` (none for '' — a member without authentication). */
export function authHeaders(token: string | undefined): Record<string, string> {
  return token ? { authorization: token } : {};
}

/** A refusal a new token may cure, given the token that was sent ('' = none sent although credentials exist). */
export function shouldRenew(reason: string, sent: string): boolean {
  return isStaleToken(reason) || (sent === '' && NO_USER.test(reason));
}
