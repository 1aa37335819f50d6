/**
 * pgBouncer's auth_user/auth_query (doc/config.md): a user who is not in the auth file gets its secret from
 * `auth_query`, run as `auth_user` in `auth_dbname` (default: the client's database) on the current primary — the
 * leader the topology names; the proxy never asks a replica, whose pg_authid may lag behind a password change.
 *
 * One connection per (auth_user, database) logs in exactly as a pool's server connection does (ServerConn with the
 * pools' ServerLogin, so the auth_user's password comes from the auth file) and stays open between logins; lookups
 * are pipelined on it and answered in order. Nothing is cached: every login asks again, as pgBouncer does. The
 * secret found is handed to the pools (`remember`) so server connections for that user log in with it — an md5
 * hash answers an md5 server, a SCRAM verifier needs the client's pass-through keys.
 *
 * Waiting is bounded by server_connect_timeout, covering a switchover without a leader, the login and the query;
 * then the client gets PROXY_AUTH_QUERY_UNAVAILABLE (08006). After a failed login of the auth_user, lookups fail at
 * once for server_login_retry, as pgBouncer fails clients of a server it cannot log in to.
 */
import { Socket } from 'node:net';
import type { Logger } from '../../lib/log.js';
import type { AuthFile, UserSecret } from './auth-file.js';
import { AuthQueryReplies, type AuthQueryOutcome, buildAuthQueryRequest } from './auth-query-reply.js';
import type { ProxyConfig } from '../config.js';
import { ProxyError, ProxyErrorCode } from '../errors.js';
import { OutBuffer } from '../out-buffer.js';
import { ParamSet } from '../session/params.js';
import { ClientStatements } from '../session/prepared.js';
import type { NodeAddr } from '../pool/router.js';
import { type LinkedClient, ServerConn, type ServerLogin } from '../server/server-conn.js';
import { PoolStats } from '../pool/stats.js';

/** A user's secret: known now (auth file; no auth_user) or later (auth_query). undefined: no such user. */
export type SecretLookup = UserSecret | undefined | Promise<UserSecret | undefined>;

/**
 * Where a login's secret comes from: the auth file first (as pgBouncer), else auth_query when auth_user is set.
 * The admin console's database does not exist on the servers, so it is looked up only in an explicit auth_dbname.
 */
export function lookupSecret(
  file: Pick<AuthFile, 'get'>,
  query: Pick<AuthQuery, 'lookup'>,
  c: Pick<ProxyConfig, 'auth_user' | 'auth_dbname'>,
  user: string,
  database: string,
  admin: boolean,
): SecretLookup {
  const s = file.get(user);
  if (s !== undefined || c.auth_user === undefined) return s;
  if (admin && c.auth_dbname === undefined) return undefined;
  return query.lookup(user, c.auth_dbname ?? database);
}

export interface AuthQueryDeps {
  config(): ProxyConfig;
  /** The current primary, or a ProxyError saying why there is none (chooseReadWrite over the pools' topology). */
  primary(): NodeAddr | ProxyError;
  /** How the pools log in as (user, database): the same ServerLogin, so the auth_user's password is the auth file's. */
  login(user: string, database: string): ServerLogin;
  /** The secret auth_query returned for a user (undefined: none): server connections for the user log in with it. */
  remember(user: string, secret: UserSecret | undefined): void;
  /** Monotonic milliseconds. */
  now(): number;
  /** Wall-clock milliseconds (the auth_user connection's connect time). */
  wallNow(): number;
  readonly log: Logger;
}

interface Lookup {
  readonly user: string;
  readonly database: string;
  /** now() after which the lookup fails (Infinity: server_connect_timeout 0). */
  readonly deadline: number;
  resolve(secret: UserSecret | undefined): void;
  reject(err: ProxyError): void;
}

function unavailable(user: string, why: string): ProxyError {
  return new ProxyError(ProxyErrorCode.AuthQueryUnavailable, `cannot look up user "${user}" with auth_query: ${why}`, {
    user,
  });
}

export class AuthQuery {
  /** The connection new lookups for a key (auth_user/database) go to. */
  private readonly conns = new Map<string, AuthConn>();
  /** Every connection not closed yet, including retired ones still answering: watched by tick. */
  private readonly open = new Set<AuthConn>();
  /** Lookups waiting for a leader (switchover under way): retried at every tick. */
  private waiting: Lookup[] = [];
  /** After a failed login of the auth_user: until when lookups in that database fail at once, and why. */
  private readonly retryAfter = new Map<string, { readonly at: number; readonly why: string }>();
  /** ServerConn bookkeeping nobody reads: these connections are not in any pool. */
  readonly stats = new PoolStats();
  readonly knownStatements = new Set<string>();

  constructor(readonly deps: AuthQueryDeps) {}

  lookup(user: string, database: string): Promise<UserSecret | undefined> {
    return new Promise((resolve, reject) => {
      const timeoutMs = this.deps.config().server_connect_timeout * 1000;
      this.dispatch({
        user,
        database,
        deadline: timeoutMs > 0 ? this.deps.now() + timeoutMs : Infinity,
        reject,
        resolve: (secret) => {
          this.deps.remember(user, secret);
          resolve(secret);
        },
      });
    });
  }

  /**
   * Janitor: retries lookups waiting for a leader and fails those past their deadline; retires connections not on
   * the primary (fenced like the pools' connections), closes stuck and idle ones.
   */
  tick(now: number): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const l of waiting) {
      if (now < l.deadline) this.dispatch(l);
      else {
        const p = this.deps.primary();
        l.reject(unavailable(l.user, p instanceof ProxyError ? p.message : 'no leader within server_connect_timeout'));
      }
    }
    const idleMs = this.deps.config().server_idle_timeout * 1000;
    const primary = this.deps.primary();
    for (const conn of [...this.open]) {
      if (!(primary instanceof ProxyError) && !sameNode(conn.node, primary)) this.retire(conn);
      if (conn.oldestDeadline <= now)
        conn.close(`no answer from node "${conn.node.name}" within server_connect_timeout`);
      else if (idleMs > 0 && conn.idleFor(now) >= idleMs) conn.close('idle longer than server_idle_timeout');
    }
  }

  /** Fails every lookup and closes every connection (shutdown). */
  close(reason: string): void {
    for (const l of this.waiting.splice(0)) l.reject(unavailable(l.user, reason));
    for (const conn of [...this.open]) conn.close(reason);
  }

  /** @internal AuthConn: the connection is closed. */
  closed(conn: AuthConn): void {
    this.open.delete(conn);
    if (this.conns.get(conn.key) === conn) this.conns.delete(conn.key);
  }

  /** @internal AuthConn: the auth_user could not log in. */
  loginFailed(conn: AuthConn, why: string): void {
    const retryMs = this.deps.config().server_login_retry;
    this.retryAfter.set(conn.key, { at: this.deps.now() + retryMs, why });
  }

  private dispatch(l: Lookup): void {
    const node = this.deps.primary();
    if (node instanceof ProxyError) return void this.waiting.push(l);
    const authUser = this.deps.config().auth_user;
    if (authUser === undefined) return l.reject(unavailable(l.user, 'auth_user is no longer set'));
    const key = `${authUser}/${l.database}`;
    const recent = this.retryAfter.get(key);
    if (recent && this.deps.now() < recent.at) return l.reject(unavailable(l.user, recent.why));
    this.retryAfter.delete(key);
    let conn = this.conns.get(key);
    if (conn && !sameNode(conn.node, node)) {
      this.retire(conn);
      conn = undefined;
    }
    if (!conn) {
      conn = new AuthConn(this, key, node, this.deps.login(authUser, l.database));
      this.conns.set(key, conn);
      this.open.add(conn);
    }
    conn.send(l);
  }

  /** Not on the primary any more: takes no new lookups, answers those it has, then closes. */
  private retire(conn: AuthConn): void {
    if (this.conns.get(conn.key) === conn) this.conns.delete(conn.key);
    conn.retire();
  }
}

/**
 * One auth_query connection. It is the ServerConn's LinkedClient for its whole life: the ServerConn forwards every
 * reply into `out` and calls flushToClient, which parses instead of writing anywhere.
 */
class AuthConn implements LinkedClient {
  /** Never connected: ServerConn only reads its writableLength (0: the read buffer may be reused at once). */
  readonly socket = new Socket();
  readonly out = new OutBuffer();
  readonly statements = new ClientStatements();
  readonly params = new ParamSet();
  private readonly server: ServerConn;
  private readonly replies = new AuthQueryReplies();
  /** Before login: lookups to send once the server is ready. */
  private readonly queued: Lookup[] = [];
  /** Sent, in order: replies come back in this order. */
  private readonly sent: Lookup[] = [];
  private ready = false;
  /** No longer on the leader: closes once its outstanding lookups are answered. */
  private retiring = false;
  private closed = false;
  private idleSince: number;

  constructor(
    private readonly owner: AuthQuery,
    readonly key: string,
    readonly node: NodeAddr,
    login: ServerLogin,
  ) {
    const { deps } = owner;
    this.idleSince = deps.now();
    const poolKey = { role: 'rw' as const, database: login.database, user: login.user };
    this.server = new ServerConn(
      node,
      poolKey,
      login,
      {
        ready: () => this.onReady(),
        loginFailed: (_s, err) => {
          if (this.closed) return; // closed by us (timeout, shutdown): not the auth_user's fault
          deps.log.warn('auth_query: the auth_user could not log in', {
            node: node.name,
            user: login.user,
            database: login.database,
            err: err.message,
          });
          const why = `the auth_user could not log in to node "${node.name}" (see the proxy log)`;
          this.owner.loginFailed(this, why);
          this.close(why);
        },
        closed: () => this.close(`the connection to node "${node.name}" closed`),
      },
      deps.log,
      owner.stats,
      owner.knownStatements,
      deps,
    );
  }

  get oldestDeadline(): number {
    return Math.min(this.queued[0]?.deadline ?? Infinity, this.sent[0]?.deadline ?? Infinity);
  }

  idleFor(now: number): number {
    return this.queued.length + this.sent.length > 0 ? 0 : now - this.idleSince;
  }

  send(l: Lookup): void {
    if (!this.ready) return void this.queued.push(l);
    this.replies.expect(l.user);
    this.sent.push(l);
    this.server.socket.write(buildAuthQueryRequest(this.owner.deps.config().auth_query, l.user));
  }

  retire(): void {
    this.retiring = true;
    if (this.queued.length + this.sent.length === 0) this.close('the primary changed');
  }

  /** Fails every outstanding lookup with PROXY_AUTH_QUERY_UNAVAILABLE and closes the server connection. */
  close(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.owner.closed(this);
    for (const l of [...this.queued.splice(0), ...this.sent.splice(0)]) l.reject(unavailable(l.user, why));
    this.server.close(why);
  }

  // ---- LinkedClient (called by the ServerConn) ----

  flushToClient(): void {
    let outcomes: AuthQueryOutcome[];
    try {
      outcomes = this.replies.push(this.out.take());
    } catch (err) {
      return this.close(`protocol error from node "${this.node.name}": ${(err as Error).message}`);
    }
    for (const o of outcomes) this.settle(this.sent.shift() as Lookup, o);
    if (this.queued.length + this.sent.length > 0) return;
    this.idleSince = this.owner.deps.now();
    if (this.retiring) this.close('the primary changed');
  }

  serverIdle(): void {
    this.flushToClient();
  }

  serverLost(err: ProxyError): void {
    this.close(err.message);
  }

  private onReady(): void {
    this.ready = true;
    this.server.client = this;
    for (const l of this.queued.splice(0)) this.send(l);
    if (this.retiring && this.sent.length === 0) this.close('the primary changed');
  }

  private settle(l: Lookup, o: AuthQueryOutcome): void {
    if (o.kind === 'secret') return l.resolve(o.secret);
    // The server's own words stay in the log: an unauthenticated client learns only that the lookup failed.
    this.owner.deps.log.warn('auth_query failed', {
      node: this.node.name,
      user: l.user,
      database: l.database,
      sqlstate: o.sqlstate,
      err: o.message,
    });
    l.reject(
      new ProxyError(ProxyErrorCode.AuthQueryFailed, `auth_query failed for user "${l.user}" (see the proxy log)`, {
        user: l.user,
      }),
    );
  }
}

function sameNode(a: NodeAddr, b: NodeAddr): boolean {
  return a.name === b.name && a.host === b.host && a.port === b.port;
}
