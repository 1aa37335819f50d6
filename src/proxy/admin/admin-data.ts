/**
 * The admin console's and /metrics' view of a running proxy: a snapshot of clients, servers, pools and counters
 * in the shapes admin.ts renders.
 */
import type { AdminData, ConnInfo, TopologyRow } from './admin.js';
import type { ClientConn } from '../session/client.js';
import type { ProxyConfig } from '../config.js';
import { proxySchema } from '../config.js';
import type { PoolRegistry } from '../pool/pools.js';
import { eligibleReplicas } from '../pool/router.js';
import type { ServerConn } from '../server/server-conn.js';
import { addStats, averages, statValues, type StatValues, zeroStats } from '../pool/stats.js';
import { tlsInfo } from '../tls.js';
import { emptyWaits, type WaitCounts, waitsSince } from '../pool/wait-histogram.js';

export const PROXY_VERSION = 'pgkeel 0.1.0';

export interface AdminSources {
  readonly config: ProxyConfig;
  readonly registry: PoolRegistry;
  readonly clients: ReadonlySet<ClientConn>;
  readonly shuttingDown: boolean;
  now(): number;
  /**
   * Per-database totals at the start of the last stats period, and its length in seconds; per pool (by
   * PoolEntry.key) the counters and waits at that start (`poolMarks`).
   */
  readonly statsPeriod: {
    readonly previous: ReadonlyMap<string, StatValues>;
    readonly seconds: number;
    readonly pools?: ReadonlyMap<string, PoolMark>;
  };
}

/** A pool's counters and wait histogram at the start of a stats period. */
export interface PoolMark {
  readonly stats: StatValues;
  readonly waits: WaitCounts;
}

export function poolMarks(reg: PoolRegistry): Map<string, PoolMark> {
  const out = new Map<string, PoolMark>();
  for (const e of reg.entries.values()) out.set(e.key, { stats: statValues(e.stats), waits: e.waits.snapshot() });
  return out;
}

/** Pool label in SHOW output: read-only pools are shown as "<db>@ro" so (database, user) stays unique. */
export function dbLabel(role: 'rw' | 'ro', database: string): string {
  return role === 'ro' ? `${database}@ro` : database;
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(6, '0')}`;
}

export function totalsByDatabase(reg: PoolRegistry): Map<string, StatValues> {
  const out = new Map<string, StatValues>();
  for (const e of reg.entries.values()) {
    const k = dbLabel(e.role, e.database);
    let t = out.get(k);
    if (!t) out.set(k, (t = zeroStats()));
    addStats(t, statValues(e.stats));
  }
  return out;
}

function clientInfo(c: ClientConn, now: number): ConnInfo {
  const s = c.socket;
  return {
    type: 'C',
    user: c.user,
    database: c.entry ? dbLabel(c.role, c.database) : c.database,
    state: c.state,
    addr: s.remoteAddress ?? '',
    port: s.remotePort ?? 0,
    localAddr: s.localAddress ?? '',
    localPort: s.localPort ?? 0,
    connectTime: c.connectTime,
    requestTime: c.requestTime,
    waitUs: c.waiting ? Math.round((now - c.waitSince) * 1000) : 0,
    closeNeeded: c.closeAfterTx !== null,
    ptr: hex(c.id),
    link: c.server ? hex(c.server.id) : '',
    remotePid: c.pid,
    tls: tlsInfo(s),
    applicationName: c.applicationName,
    preparedStatements: c.statements.size,
    id: c.id,
  };
}

function serverInfo(s: ServerConn): ConnInfo {
  const c = s.client as ClientConn | null;
  return {
    type: 'S',
    user: s.poolKey.user,
    database: dbLabel(s.poolKey.role, s.poolKey.database),
    state: s.state === 'active' && !c ? 'used' : s.state === 'login' ? 'new' : s.state,
    addr: s.node.host,
    port: s.node.port,
    localAddr: s.socket.localAddress ?? '',
    localPort: s.socket.localPort ?? 0,
    connectTime: s.connectTime.getTime(),
    requestTime: s.requestTime,
    waitUs: 0,
    closeNeeded: s.closeNeeded,
    ptr: hex(s.id),
    link: c ? hex(c.id) : '',
    remotePid: s.backendPid,
    tls: tlsInfo(s.socket),
    applicationName: s.params.get('application_name') ?? '',
    preparedStatements: s.prepared.size,
    id: s.id,
  };
}

export function adminData(src: AdminSources): AdminData {
  const reg = src.registry;
  return {
    version: PROXY_VERSION,
    pools: () => {
      const now = src.now();
      return [...reg.entries.values()].map((e) => ({
        database: dbLabel(e.role, e.database),
        user: e.user,
        clActive: Math.max(0, e.pool.clients - e.pool.waiting),
        clWaiting: e.pool.waiting,
        svActive: [...e.pool.active].filter((s) => s.client !== null).length,
        svIdle: e.pool.idle.length,
        svUsed: [...e.pool.active].filter((s) => s.client === null).length,
        svLogin: e.pool.connecting,
        maxWaitUs: Math.round(e.pool.maxWait(now) * 1000),
        mode: e.mode,
      }));
    },
    clients: () => [...src.clients].filter((c) => c.phase !== 'closed').map((c) => clientInfo(c, src.now())),
    servers: () => [...reg.servers.keys()].map(serverInfo),
    databases: () => {
      const t = reg.topology;
      return [...reg.entries.values()].map((e) => {
        const node = e.role === 'rw' ? t.leader : (eligibleReplicas(t, reg.route)[0] ?? t.leader);
        return {
          name: dbLabel(e.role, e.database),
          host: node?.host ?? '',
          port: node?.port ?? 0,
          database: e.database,
          poolSize: e.pool.limits.size,
          minPoolSize: e.pool.limits.minSize,
          reservePoolSize: e.pool.limits.reserveSize,
          serverLifetime: src.config.server_lifetime,
          poolMode: e.mode,
          currentConnections: e.pool.total,
          currentClientConnections: e.pool.clients,
          paused: e.pool.paused,
        };
      });
    },
    lists: () => {
      const clients = [...src.clients];
      const users = new Set([...reg.entries.values()].map((e) => e.user));
      const dbs = new Set([...reg.entries.values()].map((e) => dbLabel(e.role, e.database)));
      let free = 0;
      let used = 0;
      for (const e of reg.entries.values()) {
        free += e.pool.idle.length;
        used += e.pool.active.size + e.pool.connecting;
      }
      return [
        ['databases', dbs.size],
        ['users', users.size],
        ['peers', 0],
        ['pools', reg.entries.size],
        ['peer_pools', 0],
        ['free_clients', 0],
        ['used_clients', clients.filter((c) => c.phase === 'ready').length],
        ['login_clients', clients.filter((c) => c.phase !== 'ready' && c.phase !== 'closed').length],
        ['free_servers', free],
        ['used_servers', used],
        ['dns_names', 0],
        ['dns_zones', 0],
        ['dns_queries', 0],
        ['dns_pending', 0],
      ];
    },
    config: () => {
      const rows: [string, string, string, string][] = [];
      if (proxySchema.kind !== 'object') return rows;
      for (const [k, s] of Object.entries(proxySchema.fields)) {
        const v = (src.config as unknown as Record<string, unknown>)[k];
        if (v !== null && typeof v === 'object' && !Array.isArray(v)) continue;
        const show = (x: unknown): string => (x === undefined ? '' : Array.isArray(x) ? x.join(',') : String(x));
        const dflt = 'default' in s ? show(s.default) : '';
        rows.push([
          k,
          show(v),
          dflt,
          ['listen', 'ro_listen', 'metrics_listen', 'workers', 'primary', 'replicas'].includes(k) ? 'no' : 'yes',
        ]);
      }
      return rows;
    },
    stats: () => {
      const cur = totalsByDatabase(reg);
      return [...cur].map(([database, totals]) => ({
        database,
        totals,
        averages: averages(src.statsPeriod.previous.get(database) ?? zeroStats(), totals, src.statsPeriod.seconds),
      }));
    },
    poolStats: () =>
      [...reg.entries.values()].map((e) => {
        const mark = src.statsPeriod.pools?.get(e.key);
        const waits = e.waits.snapshot();
        return {
          database: dbLabel(e.role, e.database),
          user: e.user,
          averages: averages(mark?.stats ?? zeroStats(), statValues(e.stats), src.statsPeriod.seconds),
          waits,
          recentWaits: waitsSince(waits, mark?.waits ?? emptyWaits()),
        };
      }),
    topology: () => {
      const t = reg.topology;
      const ok = new Set(eligibleReplicas(t, reg.route).map((r) => r.name));
      const rows: TopologyRow[] = [];
      if (t.leader)
        rows.push({
          node: t.leader.name,
          role: 'leader',
          host: t.leader.host,
          port: t.leader.port,
          lagBytes: 0,
          eligible: !t.switching,
        });
      for (const r of t.replicas)
        rows.push({
          node: r.name,
          role: 'replica',
          host: r.host,
          port: r.port,
          lagBytes: r.lagBytes,
          eligible: ok.has(r.name),
        });
      return { reason: t.reason, rows };
    },
    state: () => ({
      paused: reg.adminPaused || (reg.topology.switching && [...reg.entries.values()].some((e) => e.pool.paused)),
      shuttingDown: src.shuttingDown,
    }),
  };
}
