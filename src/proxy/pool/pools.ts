/**
 * The pools of one proxy process and their server connections: creates a pool per (listener role, database, user)
 * on first use, opens server connections where the router says, and applies topology changes — the proxy follows
 * the DCS and never decides who is primary:
 *
 * - switchover/failover under way (failover key, no leader key): read-write pools pause (new transactions queue),
 *   idle connections to the old leader close, in-flight transactions finish and their connections close on release;
 * - the leader key names another member: read-write connections on the old one close at once, in-flight
 *   transactions included (their clients get 08006) — the old primary is demoting or gone;
 * - a leader named again: connections not on it are fenced, the queue resumes against the new leader;
 * - a replica no longer eligible (lag, noloadbalance, gone): its read-only connections are fenced likewise.
 * A pause lasts at most switchover_pause_timeout; then routing follows whatever leader the DCS names.
 */
import type { Logger } from '../../lib/log.js';
import type { ProxyClock } from '../clock.js';
import { poolSettingsFor, type PoolMode, type ProxyConfig, reservePoolFor } from '../config.js';
import { ProxyError, ProxyErrorCode } from '../errors.js';
import { Pool, type PoolLimits } from './pool.js';
import {
  chooseReadOnly,
  chooseReadWrite,
  cutInFlight,
  type NodeAddr,
  type RouteSettings,
  stillValid,
  type Topology,
} from './router.js';
import { type ServerLogin, ServerConn } from '../server/server-conn.js';
import { PoolStats } from './stats.js';
import { WaitHistogram } from './wait-histogram.js';
import type { ScramKeys } from '../../protocol/index.js';
import type { AuthFile, UserSecret } from '../auth/auth-file.js';
import { SERVER_TLS_DISABLED, type ServerTls } from '../tls.js';

export type Role = 'rw' | 'ro';

export interface PoolEntry {
  readonly key: string;
  readonly role: Role;
  readonly database: string;
  readonly user: string;
  readonly mode: PoolMode;
  readonly pool: Pool<ServerConn>;
  readonly stats: PoolStats;
  /** How long clients waited for a server, per assignment (wait-histogram.ts). */
  readonly waits: WaitHistogram;
  /** ParameterStatus values of the first server connection: what this pool's clients are told at login. */
  serverParams: ReadonlyMap<string, string> | null;
}

interface ParamWait {
  resolve(p: ReadonlyMap<string, string>): void;
  reject(err: ProxyError): void;
}

export class PoolRegistry {
  readonly entries = new Map<string, PoolEntry>();
  readonly servers = new Map<ServerConn, PoolEntry>();
  topology: Topology;
  /** Admin PAUSE (all pools) — independent of the switchover pause. */
  adminPaused = false;
  private readonly pausedDbs = new Set<string>();
  private switchingSince: number | null = null;
  private readonly paramWaits = new Map<PoolEntry, ParamWait[]>();
  private readonly scramKeys = new Map<string, ScramKeys>();
  /** Prepared-statement names some server accepted (prepared.ts answerUnlinked). */
  readonly knownStatements = new Set<string>();
  private readonly keyCaches = new Map<string, Map<string, ScramKeys>>();
  /** Secrets auth_query returned, per user (auth-query.ts): server logins use them like the auth file's. */
  private readonly queriedSecrets = new Map<string, UserSecret>();
  /** server_tls_* as loaded at start and on RELOAD (tls.ts). */
  serverTls: ServerTls = SERVER_TLS_DISABLED;

  constructor(
    private readonly config: () => ProxyConfig,
    private readonly authFile: AuthFile,
    private readonly log: Logger,
    private readonly clock: ProxyClock,
    initial: Topology,
  ) {
    this.topology = initial;
    if (initial.switching) this.switchingSince = clock.now();
  }

  private now(): number {
    return this.clock.now();
  }

  get route(): RouteSettings {
    const c = this.config();
    return { maxLagBytes: c.max_lag, roFallbackToLeader: c.ro_fallback_to_leader };
  }

  poolFor(role: Role, database: string, user: string): PoolEntry {
    const key = `${role}/${database}/${user}`;
    let e = this.entries.get(key);
    if (e) return e;
    const { mode } = poolSettingsFor(this.config(), database, user);
    const entry: PoolEntry = {
      key,
      role,
      database,
      user,
      mode,
      stats: new PoolStats(),
      waits: new WaitHistogram(),
      serverParams: null,
      pool: new Pool<ServerConn>(
        { open: () => this.open(entry), close: (s, why) => s.close(why) },
        this.limitsFor(database, user),
        `${database}/${user}`,
      ),
    };
    e = entry;
    if (this.adminPaused || this.pausedDbs.has(database)) e.pool.pause();
    if (role === 'rw' && this.isSwitching()) {
      e.pool.pause();
      e.pool.stall = new ProxyError(ProxyErrorCode.NoLeader, `no leader to route to: ${this.topology.reason}`);
    }
    this.entries.set(key, e);
    return e;
  }

  /** Applies config changes (RELOAD) to existing pools' limits. */
  refreshLimits(): void {
    for (const e of this.entries.values()) e.pool.limits = this.limitsFor(e.database, e.user);
    const maxPrepared = this.config().max_prepared_statements;
    for (const s of this.servers.keys()) s.prepared.limit = maxPrepared;
  }

  rememberScramKeys(user: string, keys: ScramKeys): void {
    this.scramKeys.set(user, keys);
  }

  /** Server parameters for a pool's clients, opening a first server connection if none has logged in yet. */
  serverParams(e: PoolEntry): Promise<ReadonlyMap<string, string>> {
    if (e.serverParams) return Promise.resolve(e.serverParams);
    return new Promise((resolve, reject) => {
      const waits = this.paramWaits.get(e);
      if (waits) return void waits.push({ resolve, reject });
      this.paramWaits.set(e, [{ resolve, reject }]);
      const s = e.pool.request(
        { assign: (srv) => e.pool.release(srv, this.now()), fail: (err) => this.failParamWaits(e, err) },
        this.now(),
      );
      if (s) e.pool.release(s, this.now());
    });
  }

  onTopology(t: Topology): void {
    const prev = this.topology;
    this.topology = t;
    if (t.switching && this.switchingSince === null) this.switchingSince = this.now();
    if (!t.switching) this.switchingSince = null;
    if (prev.leader?.name !== t.leader?.name || prev.switching !== t.switching)
      this.log.info('topology changed', { reason: t.reason });
    this.apply();
  }

  pauseAll(): void {
    this.adminPaused = true;
    for (const e of this.entries.values()) {
      e.pool.pause();
      e.pool.fence(() => true, 'PAUSE');
    }
  }

  resumeAll(): void {
    this.adminPaused = false;
    this.pausedDbs.clear();
    this.apply();
  }

  pauseDatabase(db: string): void {
    this.pausedDbs.add(db);
    for (const e of this.entries.values()) {
      if (e.database !== db) continue;
      e.pool.pause();
      e.pool.fence(() => true, 'PAUSE');
    }
  }

  resumeDatabase(db: string): void {
    this.pausedDbs.delete(db);
    this.apply();
  }

  /** RECONNECT-style: every server connection closes now (idle) or when released (active). */
  fenceAll(reason: string, which: (e: PoolEntry) => boolean = () => true): void {
    for (const e of this.entries.values()) if (which(e)) e.pool.fence(() => true, reason);
  }

  tick(now: number): void {
    if (this.switchingSince !== null && this.topology.leader) {
      const limit = this.config().switchover_pause_timeout * 1000;
      if (limit > 0 && now - this.switchingSince >= limit) {
        this.log.warn('switchover pause timed out; routing to the leader the DCS names', {
          leader: this.topology.leader.name,
        });
        this.switchingSince = null;
        this.topology = { ...this.topology, switching: false, reason: `${this.topology.reason} (pause timed out)` };
        this.apply();
      }
    }
    for (const e of this.entries.values()) e.pool.tick(now);
  }

  connectionsOn(node: string, role: Role): number {
    let n = 0;
    for (const [s, e] of this.servers) if (e.role === role && s.node.name === node) n++;
    return n;
  }

  /** Every server connection, now (shutdown). */
  closeAll(reason: string): void {
    for (const s of [...this.servers.keys()]) s.close(reason);
  }

  private isSwitching(): boolean {
    return this.switchingSince !== null;
  }

  private apply(): void {
    const t = this.topology;
    const now = this.now();
    const switching = this.isSwitching();
    for (const [s, e] of [...this.servers]) {
      if (e.role === 'rw' && cutInFlight(t, s.node.name)) s.close(`the leader key now names "${t.keyHolder}"`);
    }
    for (const e of this.entries.values()) {
      if (e.role === 'rw') {
        const leader = t.leader;
        if (switching || !leader) {
          e.pool.fence(() => true, 'leader changing');
          e.pool.stall = new ProxyError(ProxyErrorCode.NoLeader, `no leader to route to: ${t.reason}`);
        } else e.pool.fence((s) => !sameNode(s.node, leader), `node is no longer the leader (now "${leader.name}")`);
        if (this.adminPaused || this.pausedDbs.has(e.database) || switching) e.pool.pause();
        else e.pool.resume(now);
      } else {
        e.pool.fence((s) => !stillValid(t, this.route, 'ro', s.node.name), 'node is no longer eligible for reads');
        if (this.adminPaused || this.pausedDbs.has(e.database)) e.pool.pause();
        else e.pool.resume(now);
      }
    }
  }

  private open(e: PoolEntry): true | ProxyError {
    const t = this.isSwitching() ? { ...this.topology, switching: true } : { ...this.topology, switching: false };
    const target =
      e.role === 'rw' ? chooseReadWrite(t) : chooseReadOnly(t, this.route, (n) => this.connectionsOn(n, 'ro'));
    if (target instanceof ProxyError) return target;
    const s = new ServerConn(
      target,
      e,
      this.loginFor(e.user, e.database),
      {
        ready: (srv) => this.onReady(srv),
        loginFailed: (srv, err, fatal) => this.onLoginFailed(srv, err, fatal),
        closed: (srv, err) => this.onClosed(srv, err),
      },
      this.log,
      e.stats,
      this.knownStatements,
      this.clock,
    );
    s.prepared.limit = this.config().max_prepared_statements;
    this.servers.set(s, e);
    return true;
  }

  /**
   * How a server connection logs in as `user` (the pools, and auth_query's connection as auth_user): with the auth
   * file's secret, else the one auth_query last returned; a SCRAM verifier needs the client's pass-through keys.
   */
  loginFor(user: string, database: string): ServerLogin {
    const secret = this.authFile.get(user) ?? this.queriedSecrets.get(user);
    return {
      user,
      database,
      password: secret && secret.kind !== 'scram' ? secret.secret : undefined,
      scramKeys: secret?.kind === 'scram' ? (this.scramKeys.get(user) ?? null) : null,
      keyCache: this.keyCacheFor(user, secret?.secret ?? ''),
      connectTimeoutMs: this.config().server_connect_timeout * 1000,
      tls: this.serverTls,
    };
  }

  /** auth_query's answer for a user not in the auth file (undefined: it has none now). */
  rememberQueriedSecret(user: string, secret: UserSecret | undefined): void {
    if (secret) this.queriedSecrets.set(user, secret);
    else this.queriedSecrets.delete(user);
  }

  /** Where a read-write connection would go now: the leader, unless a switchover is under way (see open). */
  primary(): NodeAddr | ProxyError {
    return chooseReadWrite({ ...this.topology, switching: this.isSwitching() });
  }

  private onReady(s: ServerConn): void {
    const e = this.servers.get(s);
    if (!e) return;
    if (!e.serverParams) {
      e.serverParams = new Map(s.reported);
      const waits = this.paramWaits.get(e) ?? [];
      this.paramWaits.delete(e);
      for (const w of waits) w.resolve(e.serverParams);
    }
    const t = this.topology;
    if (e.role === 'rw' ? !t.leader || !sameNode(s.node, t.leader) : !stillValid(t, this.route, 'ro', s.node.name))
      s.closeNeeded = true;
    e.pool.connected(s, this.now());
  }

  private onLoginFailed(s: ServerConn, err: ProxyError, fatal: boolean): void {
    const e = this.servers.get(s);
    this.servers.delete(s);
    if (!e) return;
    this.log.warn('server login failed', { node: s.node.name, pool: e.key, err: err.message, fatal });
    if (fatal) this.failParamWaits(e, err);
    e.pool.connectFailed(err, fatal, this.now());
  }

  private onClosed(s: ServerConn, err: ProxyError): void {
    const e = this.servers.get(s);
    this.servers.delete(s);
    const c = s.client;
    s.client = null;
    c?.serverLost(err);
    e?.pool.remove(s, this.now());
  }

  private failParamWaits(e: PoolEntry, err: ProxyError): void {
    const waits = this.paramWaits.get(e) ?? [];
    this.paramWaits.delete(e);
    for (const w of waits) w.reject(err);
  }

  private keyCacheFor(user: string, secret: string): Map<string, ScramKeys> {
    const k = `${user}\0${secret}`;
    let m = this.keyCaches.get(k);
    if (!m) this.keyCaches.set(k, (m = new Map()));
    return m;
  }

  private limitsFor(database: string, user: string): PoolLimits {
    const c = this.config();
    return {
      size: poolSettingsFor(c, database, user).size,
      reserveSize: reservePoolFor(c, database, user),
      reserveWaitMs: c.reserve_pool_timeout * 1000,
      minSize: c.min_pool_size,
      queryWaitMs: c.query_wait_timeout * 1000,
      serverIdleMs: c.server_idle_timeout * 1000,
      serverLifetimeMs: c.server_lifetime * 1000,
      retryMs: c.server_login_retry,
    };
  }
}

function sameNode(a: NodeAddr, b: NodeAddr): boolean {
  return a.name === b.name && a.host === b.host && a.port === b.port;
}
