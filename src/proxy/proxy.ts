/**
 * A running proxy: listeners (read-write, read-only), the topology source, the pools, cancel keys, /metrics, the
 * janitor, RELOAD and graceful shutdown; the admin console's queries are run by admin-actions.ts. `startProxy` is the
 * entry point for the CLI and for `pgkeel up`.
 *
 * Shutdown (SIGTERM, admin SHUTDOWN): stop accepting; clients between transactions get FATAL 57P01 now, clients in
 * a transaction (or holding a session) when it ends; after shutdown_timeout everyone is closed.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { EtcdStore } from '../dcs/etcd.js';
import { etcdStoreOptions } from '../config/etcd-section.js';
import type { Store } from '../dcs/store.js';
import { createLogger, type Logger } from '../lib/log.js';
import { formatHostPort, parseHostPort } from '../lib/net.js';
import type { ScramKeys } from '../protocol/index.js';
import { type AdminHost, adminQuery, serveWorker } from './admin/admin-actions.js';
import { adminData, type PoolMark, poolMarks, PROXY_VERSION, totalsByDatabase } from './admin/admin-data.js';
import { AuthFile } from './auth/auth-file.js';
import { AuthQuery, lookupSecret, type SecretLookup } from './auth/auth-query.js';
import { type AuthRandom, ScramSecretCache } from './auth/client-auth.js';
import { ClientConn } from './session/client.js';
import { type ProxyClock, systemClock } from './clock.js';
import { listenAddress, loadProxyConfig, type ProxyConfig } from './config.js';
import { ProxyError, ProxyErrorCode } from './errors.js';
import type { ProxyHost } from './host.js';
import { startMetricsServer } from './metrics.js';
import { type DcsScope, type Registration, registerProxy, proxyRecord } from './registry.js';
import { type PoolEntry, PoolRegistry, type Role } from './pool/pools.js';
import { staticTopology } from './pool/router.js';
import { DcsTopologySource, StaticTopologySource, type TopologySource } from './pool/topology.js';
import type { StatValues } from './pool/stats.js';
import { SecurityLog } from './security-log.js';
import { type ClientTls, loadTls, serverTlsChanged, type TlsContexts } from './tls.js';
import type { WorkerLink, WorkerSpec } from './workers/worker-link.js';
import { encodePid, forWorker, workerOfPid } from './workers/workers-config.js';
import { startProxyWorkers } from './workers/workers.js';
import { sleep } from '../lib/proc.js';

export interface ProxyOptions {
  readonly log?: Logger;
  /** The file `config` came from: RELOAD re-reads it. */
  readonly configFile?: string;
  /** A Store to follow instead of building an EtcdStore from `config.etcd` (tests, `pgkeel up`). */
  readonly store?: Store;
  /** Set in a worker process (workers > 1): how it reaches the supervisor and the other workers. */
  readonly worker?: WorkerLink;
  /** Logger options for worker processes (a Logger cannot cross processes); default text/info, null silent. */
  readonly workerLog?: WorkerSpec['log'];
  /** The proxy's time (tests); default the system clock. */
  readonly clock?: ProxyClock;
}

export interface RunningProxy {
  /** "host:port" the read-write listener is bound to (port 0 in the config resolves here). */
  readonly rwAddress: string;
  readonly roAddress: string | null;
  readonly metricsAddress: string | null;
  /** Graceful: see the file comment. Resolves when everything is closed. */
  shutdown(): Promise<void>;
  /** Immediate: every connection closed now. */
  close(): Promise<void>;
  /** RELOAD: re-reads the config file (when started from one) and the auth file; throws ConfigError when invalid. */
  reload(): void;
  /** Resolves when the proxy has stopped (after shutdown/close, or admin SHUTDOWN). */
  readonly done: Promise<void>;
}

const JANITOR_MS = 100;
const STATS_PERIOD_MS = 15_000;

const node = (text: string) => {
  const { host, port } = parseHostPort(text);
  return { name: formatHostPort(host, port), host, port };
};

// biome-ignore lint/suspicious/noShadowRestrictedNames: module-private class; the global Proxy is not used here
class Proxy implements ProxyHost, AdminHost {
  readonly authFile: AuthFile;
  readonly hasAuthFile: boolean;
  readonly authRandom: AuthRandom = {
    salt4: () => randomBytes(4),
    nonce: () => randomBytes(18).toString('base64'),
    processSecret: randomBytes(32),
  };
  readonly scramCache = new ScramSecretCache(this.authRandom.processSecret);
  clientTls: ClientTls;
  readonly registry: PoolRegistry;
  readonly authQuery: AuthQuery;
  readonly clients = new Set<ClientConn>();
  readonly securityLog: SecurityLog;
  shuttingDown = false;
  private readonly admitted = new Set<ClientConn>();
  private readonly byPid = new Map<number, ClientConn>();
  private pidSeq = 1 + (randomBytes(2).readUInt16BE(0) << 8);
  private coarse: number;
  private readonly listeners: Server[] = [];
  private metrics: HttpServer | null = null;
  private janitor: NodeJS.Timeout | null = null;
  private statsTimer: NodeJS.Timeout | null = null;
  private statsPrev = new Map<string, StatValues>();
  private statsPools = new Map<string, PoolMark>();
  private statsSeconds = 0;
  private statsAt: number;
  private ownedStore: EtcdStore | null = null;
  /** The cluster followed in etcd (registry.ts announces the proxy there when metrics_listen is set). */
  dcs: DcsScope | null = null;
  private registration: Registration | null = null;
  private stopped!: () => void;
  readonly done = new Promise<void>((r) => (this.stopped = r));
  private stopping: Promise<void> | null = null;

  constructor(
    public config: ProxyConfig,
    readonly topology: TopologySource,
    readonly log: Logger,
    readonly configFile: string | undefined,
    private readonly worker: WorkerLink | null,
    private readonly clock: ProxyClock,
  ) {
    this.coarse = clock.wallNow();
    this.statsAt = clock.now();
    this.authFile = new AuthFile(config.auth_file);
    this.securityLog = new SecurityLog(log);
    this.hasAuthFile = config.auth_file !== undefined;
    this.registry = new PoolRegistry(() => this.config, this.authFile, log, clock, topology.current);
    const reg = this.registry;
    this.authQuery = new AuthQuery({
      config: () => this.config,
      primary: () => reg.primary(),
      login: (u, db) => reg.loginFor(u, db),
      remember: (u, s) => reg.rememberQueriedSecret(u, s),
      now: () => clock.now(),
      wallNow: () => clock.wallNow(),
      log,
    });
    // Unreadable or unusable key/certificate files stop the start-up here, naming the setting and the path.
    const tls = loadTls(config, configFile ?? 'proxy configuration');
    this.clientTls = tls.client;
    this.registry.serverTls = tls.server;
  }

  get knownStatements(): ReadonlySet<string> {
    return this.registry.knownStatements;
  }

  now(): number {
    return this.clock.now();
  }

  wallNow(): number {
    return this.clock.wallNow();
  }

  coarseNow(): number {
    return this.coarse;
  }

  issuePid(): number {
    this.pidSeq = (this.pidSeq % 0x3fffff0) + 1;
    return encodePid(this.pidSeq, this.worker?.index ?? 0);
  }

  admit(c: ClientConn): void {
    if (this.shuttingDown) throw new ProxyError(ProxyErrorCode.Shutdown, 'the pgkeel proxy is shutting down');
    if (this.admitted.size >= this.config.max_client_conn) {
      throw new ProxyError(
        ProxyErrorCode.TooManyClients,
        `no more connections allowed (max_client_conn ${this.config.max_client_conn})`,
      );
    }
    this.admitted.add(c);
    this.byPid.set(c.pid, c);
  }

  forget(c: ClientConn): void {
    this.clients.delete(c);
    this.admitted.delete(c);
    if (this.byPid.get(c.pid) === c) this.byPid.delete(c.pid);
  }

  cancel(pid: number, secret: Buffer): void {
    if (this.worker && workerOfPid(pid) !== this.worker.index) return this.worker.cancel(pid, secret);
    const c = this.byPid.get(pid);
    if (c && c.secret.length === secret.length && timingSafeEqual(c.secret, secret)) c.cancelQuery();
  }

  rememberScramKeys(user: string, keys: ScramKeys): void {
    this.registry.rememberScramKeys(user, keys);
  }

  userSecret(user: string, database: string, admin: boolean): SecretLookup {
    return lookupSecret(this.authFile, this.authQuery, this.config, user, database, admin);
  }

  checkAdmin(c: ClientConn): void {
    const { admin_users: admins, stats_users: stats } = this.config;
    if (admins.length === 0 && stats.length === 0) return;
    if (admins.includes(c.user)) return;
    if (stats.includes(c.user)) return void (c.adminReadOnly = true);
    throw new ProxyError(
      ProxyErrorCode.AdminDenied,
      `user "${c.user}" is not allowed to use the admin console (admin_users, stats_users)`,
    );
  }

  adminParams(): ReadonlyMap<string, string> {
    return new Map([
      ['server_version', `15.0 (${PROXY_VERSION})`],
      ['server_encoding', 'UTF8'],
      ['client_encoding', 'UTF8'],
      ['DateStyle', 'ISO, MDY'],
      ['TimeZone', 'UTC'],
      ['IntervalStyle', 'postgres'],
      ['integer_datetimes', 'on'],
      ['standard_conforming_strings', 'on'],
      ['application_name', ''],
      ['is_superuser', 'off'],
    ]);
  }

  poolFor(role: Role, database: string, user: string): PoolEntry {
    return this.registry.poolFor(role, database, user);
  }

  serverParams(e: PoolEntry): Promise<ReadonlyMap<string, string>> {
    return this.registry.serverParams(e);
  }

  admin(c: ClientConn, sql: string): Buffer[] | Promise<Buffer[]> {
    return adminQuery(this, this.worker, c, sql);
  }

  metricsData(config: ProxyConfig = this.config) {
    return adminData({
      config,
      registry: this.registry,
      clients: this.clients,
      shuttingDown: this.shuttingDown,
      now: () => this.now(),
      statsPeriod: { previous: this.statsPrev, seconds: this.statsSeconds, pools: this.statsPools },
    });
  }

  async start(): Promise<RunningProxy> {
    if (this.worker) serveWorker(this, this.worker);
    await this.topology.start((t) => this.registry.onTopology(t));
    this.registry.onTopology(this.topology.current);
    const rw = await this.listen(this.config.listen, 'rw');
    const ro = this.config.ro_listen ? await this.listen(this.config.ro_listen, 'ro') : null;
    let metricsAddress: string | null = null;
    if (this.config.metrics_listen) {
      const { host, port } = listenAddress(this.config.metrics_listen);
      const m = await startMetricsServer(
        host,
        port,
        () => this.metricsData(),
        () => this.clock.wallNow(),
      );
      this.metrics = m.server;
      metricsAddress = m.address;
      if (this.dcs && !this.worker) {
        const record = proxyRecord({ rw, ro, metrics: m.address }, PROXY_VERSION, new Date(this.clock.wallNow()));
        this.registration = await registerProxy({ ...this.dcs, record, log: this.log });
      }
    }
    this.janitor = setInterval(() => this.tick(), JANITOR_MS);
    this.statsTimer = setInterval(() => this.rollStats(), STATS_PERIOD_MS);
    // The warning first: "proxy listening" is the last start-up line (scripts and tests wait for it).
    if (this.config.auth_type === 'trust') this.warnTrust(rw, ro);
    this.log.info('proxy listening', {
      rw,
      ro,
      metrics: metricsAddress,
      topology: this.topology.current.reason,
      pool_mode: this.config.pool_mode,
    });
    return {
      rwAddress: rw,
      roAddress: ro,
      metricsAddress,
      shutdown: () => this.stop(this.config.shutdown_timeout * 1000),
      close: () => this.stop(0),
      reload: () => this.reload(),
      done: this.done,
    };
  }

  /** At start, and on a RELOAD that turns trust on: once (worker 0 speaks for all). */
  private warnTrust(rw: string, ro: string | null): void {
    if ((this.worker?.index ?? 0) !== 0) return;
    this.log.warn(
      'auth_type is trust: anyone who can reach the listeners logs in without a password, as any user the servers accept',
      { rw, ro },
    );
  }

  adopt(store: EtcdStore): void {
    this.ownedStore = store;
  }

  private async listen(addr: string, role: Role): Promise<string> {
    const { host, port } = listenAddress(addr);
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket, role));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    server.on('error', (err) => this.log.error('listener error', { role, err: err.message }));
    this.listeners.push(server);
    const a = server.address();
    return typeof a === 'object' && a ? formatHostPort(a.address, a.port) : addr;
  }

  private accept(socket: Socket, role: Role): void {
    // Sockets that have not sent a StartupMessage yet are not counted by max_client_conn; this bounds them too.
    if (this.shuttingDown || this.clients.size >= this.config.max_client_conn * 2 + 100) {
      socket.destroy();
      return;
    }
    const c = new ClientConn(socket, role, this, this.log);
    this.clients.add(c);
  }

  private tick(): void {
    this.coarse = this.clock.wallNow();
    this.registry.tick(this.now());
    this.authQuery.tick(this.now());
    this.securityLog.tick(this.now());
    const cfg = this.config;
    const loginMs = cfg.client_login_timeout * 1000;
    const idleMs = cfg.client_idle_timeout * 1000;
    if (loginMs === 0 && idleMs === 0) return;
    for (const c of this.clients) {
      if (loginMs > 0 && c.phase !== 'ready' && c.phase !== 'closed' && this.coarse - c.connectTime >= loginMs) {
        c.fatal(
          new ProxyError(
            ProxyErrorCode.LoginTimeout,
            `client_login_timeout (${cfg.client_login_timeout} s) expired during login`,
          ),
        );
      } else if (idleMs > 0 && c.phase === 'ready' && !c.server && !c.waiting && this.coarse - c.lastActive >= idleMs) {
        c.fatal(
          new ProxyError(
            ProxyErrorCode.ClientIdleTimeout,
            `client_idle_timeout (${cfg.client_idle_timeout} s) expired`,
          ),
        );
      }
    }
  }

  private rollStats(): void {
    const now = this.clock.now();
    this.statsSeconds = (now - this.statsAt) / 1000;
    this.statsAt = now;
    this.statsPrev = totalsByDatabase(this.registry);
    this.statsPools = poolMarks(this.registry);
  }

  /** Re-reads the config file (when there is one) and the auth file; listeners and topology need a restart. */
  reload(): void {
    const before = this.config;
    let tls: TlsContexts | null = null;
    if (this.configFile) {
      const w = this.worker;
      const next = w ? forWorker(loadProxyConfig(this.configFile), w) : loadProxyConfig(this.configFile);
      tls = loadTls(next, this.configFile); // before anything is applied: a bad file keeps the running configuration
      for (const k of ['listen', 'ro_listen', 'metrics_listen', 'primary', 'etcd'] as const) {
        if (JSON.stringify(next[k]) !== JSON.stringify(this.config[k]))
          this.log.warn(`RELOAD: ${k} changed; it takes effect at the next restart`);
      }
      this.config = {
        ...next,
        listen: this.config.listen,
        ro_listen: this.config.ro_listen,
        metrics_listen: this.config.metrics_listen,
      } as ProxyConfig;
      if (this.config.auth_type === 'trust' && before.auth_type !== 'trust')
        this.warnTrust(this.config.listen, this.config.ro_listen ?? null);
      this.registry.refreshLimits();
    }
    this.useTls(tls ?? loadTls(this.config, 'proxy configuration'), before);
    const problems = this.authFile.reload();
    for (const p of problems) this.log.warn('auth file problem', { line: p.line, problem: p.message });
    this.log.info('configuration reloaded');
  }

  /**
   * Key and certificate files are re-read on every RELOAD (rotated files apply to new connections). Server
   * connections are closed when server_tls_* changed, as pgBouncer does; clients keep their sessions.
   */
  private useTls(tls: TlsContexts, before: ProxyConfig): void {
    this.clientTls = tls.client;
    this.registry.serverTls = tls.server;
    if (serverTlsChanged(before, this.config)) this.registry.fenceAll('server TLS settings changed (RELOAD)');
  }

  stop(timeoutMs: number): Promise<void> {
    this.stopping ??= this.doStop(timeoutMs);
    return this.stopping;
  }

  private async doStop(timeoutMs: number): Promise<void> {
    this.shuttingDown = true;
    await this.registration?.stop();
    const closed = Promise.all(this.listeners.map((l) => new Promise<void>((r) => l.close(() => r()))));
    const err = new ProxyError(ProxyErrorCode.Shutdown, 'the pgkeel proxy is shutting down');
    for (const c of [...this.clients]) {
      if (timeoutMs > 0) c.closeSoon(err);
      else c.fatal(err);
    }
    const deadline = this.clock.now() + timeoutMs;
    while (this.clients.size > 0 && this.clock.now() < deadline) await sleep(20);
    for (const c of [...this.clients]) c.fatal(err);
    for (const e of this.registry.entries.values()) for (const w of e.pool.drainQueue()) w.fail(err);
    this.registry.closeAll('proxy shutting down');
    this.authQuery.close('the proxy is shutting down');
    if (this.janitor) clearInterval(this.janitor);
    if (this.statsTimer) clearInterval(this.statsTimer);
    await closed;
    if (this.metrics) {
      this.metrics.closeAllConnections();
      await new Promise<void>((r) => this.metrics?.close(() => r()));
    }
    await this.topology.close();
    await this.ownedStore?.close();
    this.log.info('proxy stopped');
    this.stopped();
  }
}

/**
 * Starts a proxy from a validated config. Listener port 0 binds a free port; see the returned addresses. With
 * `workers` > 1 (and not already in a worker) this process becomes the supervisor of that many worker processes.
 */
export async function startProxy(config: ProxyConfig, opts: ProxyOptions = {}): Promise<RunningProxy> {
  const log = (opts.log ?? createLogger({ format: 'text' })).child({ component: 'proxy' });
  if (config.workers > 1 && !opts.worker) {
    return startProxyWorkers(config, {
      log,
      workerLog: opts.workerLog === undefined ? { format: 'text', level: 'info' } : opts.workerLog,
      ...(opts.configFile ? { configFile: opts.configFile } : {}),
    });
  }
  if (opts.worker) config = forWorker(config, opts.worker);
  const clock = opts.clock ?? systemClock;
  let source: TopologySource;
  let owned: EtcdStore | null = null;
  if (config.etcd) {
    const store =
      opts.store ??
      (owned = new EtcdStore(
        etcdStoreOptions(config.etcd, config.etcd.request_timeout, 'etcd', opts.configFile ?? 'the proxy config'),
      ));
    source = new DcsTopologySource(
      store,
      config.etcd.scope,
      config.etcd.namespace,
      log,
      () => new Date(clock.wallNow()),
    );
  } else if (config.primary) {
    source = new StaticTopologySource(staticTopology(node(config.primary), config.replicas.map(node)));
  } else {
    throw new Error('startProxy: the config has neither primary nor etcd (validate it with proxyConfigFromObject)');
  }
  const p = new Proxy(config, source, log, opts.configFile, opts.worker ?? null, clock);
  if (owned) p.adopt(owned);
  if (config.etcd && source instanceof DcsTopologySource)
    p.dcs = { store: source.store, scope: config.etcd.scope, namespace: config.etcd.namespace };
  try {
    return await p.start();
  } catch (err) {
    await p.stop(0);
    throw err;
  }
}
