/**
 * With `workers: N` each worker holds its own clients, servers and pools; the admin console and /metrics must show
 * the proxy as one. A worker turns its AdminData into a plain snapshot (sent over IPC), and the snapshots of all
 * workers merge into one AdminData:
 * - CLIENTS, SERVERS: concatenated (pgBouncer's `ptr` is unique per worker only, so it is prefixed "w<i>:").
 * - POOLS, DATABASES: one row per pool or database; counts summed, maxwait the largest, paused only when every worker
 *   is paused (so SHOW STATE "paused yes" proves a PAUSE reached them all).
 * - STATS: totals summed; per-second averages summed; time averages weighted by their counts. Per pool the same,
 *   and the wait histograms summed bucket by bucket.
 * - LISTS: summed, except the numbers of databases/users/pools, which are the largest (the same names in each).
 * - CONFIG, TOPOLOGY, VERSION: the first worker's (the same configuration and cluster view in each).
 */
import type { AdminData, ConnInfo, DatabaseInfo, PoolInfo, PoolPeriodInfo, TopologyRow } from './admin.js';
import { addStats, STAT_FIELDS, type StatValues, zeroStats } from '../pool/stats.js';
import { addWaits } from '../pool/wait-histogram.js';

export interface AdminSnapshot {
  readonly version: string;
  readonly pools: PoolInfo[];
  readonly clients: ConnInfo[];
  readonly servers: ConnInfo[];
  readonly databases: DatabaseInfo[];
  readonly lists: [string, number][];
  readonly config: [string, string, string, string][];
  readonly stats: { database: string; totals: StatValues; averages: StatValues }[];
  readonly poolStats: PoolPeriodInfo[];
  readonly topology: { reason: string; rows: TopologyRow[] };
  readonly state: { paused: boolean; shuttingDown: boolean };
}

export function snapshotAdmin(d: AdminData): AdminSnapshot {
  return {
    version: d.version,
    pools: d.pools(),
    clients: d.clients(),
    servers: d.servers(),
    databases: d.databases(),
    lists: d.lists(),
    config: d.config(),
    stats: d.stats(),
    poolStats: d.poolStats(),
    topology: d.topology(),
    state: d.state(),
  };
}

function fromSnapshot(s: AdminSnapshot): AdminData {
  return {
    version: s.version,
    pools: () => s.pools,
    clients: () => s.clients,
    servers: () => s.servers,
    databases: () => s.databases,
    lists: () => s.lists,
    config: () => s.config,
    stats: () => s.stats,
    poolStats: () => s.poolStats,
    topology: () => s.topology,
    state: () => s.state,
  };
}

/** Rows grouped by key in first-seen order, folded with `add`. */
function fold<T>(rows: Iterable<T>, key: (r: T) => string, add: (a: T, b: T) => T): T[] {
  const m = new Map<string, T>();
  for (const r of rows) {
    const k = key(r);
    const prev = m.get(k);
    m.set(k, prev === undefined ? r : add(prev, r));
  }
  return [...m.values()];
}

const TIME_WEIGHT: Partial<Record<(typeof STAT_FIELDS)[number], (typeof STAT_FIELDS)[number]>> = {
  xact_time: 'xact_count',
  query_time: 'query_count',
  wait_time: 'server_assignment_count',
};

function addAverages(a: StatValues, b: StatValues): StatValues {
  const out = zeroStats();
  for (const f of STAT_FIELDS) {
    const w = TIME_WEIGHT[f];
    if (w === undefined) out[f] = a[f] + b[f];
    else {
      const n = a[w] + b[w];
      out[f] = n > 0 ? Math.round((a[f] * a[w] + b[f] * b[w]) / n) : 0;
    }
  }
  return out;
}

function addTotals(a: StatValues, b: StatValues): StatValues {
  const out = zeroStats();
  addStats(out, a);
  addStats(out, b);
  return out;
}

const LIST_MAX = new Set(['databases', 'users', 'pools']);

export function mergeAdmin(snaps: readonly AdminSnapshot[]): AdminData {
  const first = snaps[0];
  if (!first) throw new Error('mergeAdmin: no snapshots');
  if (snaps.length === 1) return fromSnapshot(first);
  const tag = (rows: ConnInfo[], i: number): ConnInfo[] =>
    rows.map((c) => ({ ...c, ptr: `w${i}:${c.ptr}`, link: c.link ? `w${i}:${c.link}` : '' }));
  const clients = snaps.flatMap((s, i) => tag(s.clients, i));
  const servers = snaps.flatMap((s, i) => tag(s.servers, i));
  const pools = fold(
    snaps.flatMap((s) => s.pools),
    (p) => `${p.database}\0${p.user}`,
    (a, b) => ({
      ...a,
      clActive: a.clActive + b.clActive,
      clWaiting: a.clWaiting + b.clWaiting,
      svActive: a.svActive + b.svActive,
      svIdle: a.svIdle + b.svIdle,
      svUsed: a.svUsed + b.svUsed,
      svLogin: a.svLogin + b.svLogin,
      maxWaitUs: Math.max(a.maxWaitUs, b.maxWaitUs),
    }),
  );
  const databases = fold(
    snaps.flatMap((s, i) => s.databases.map((d) => ({ d, workers: 1, pausedIn: d.paused ? 1 : 0, i }))),
    (x) => x.d.name,
    (a, b) => ({
      d: {
        ...a.d,
        poolSize: a.d.poolSize + b.d.poolSize,
        minPoolSize: a.d.minPoolSize + b.d.minPoolSize,
        reservePoolSize: a.d.reservePoolSize + b.d.reservePoolSize,
        currentConnections: a.d.currentConnections + b.d.currentConnections,
        currentClientConnections: a.d.currentClientConnections + b.d.currentClientConnections,
      },
      workers: a.workers + b.workers,
      pausedIn: a.pausedIn + b.pausedIn,
      i: a.i,
    }),
  ).map((x) => ({ ...x.d, paused: x.pausedIn === snaps.length }));
  const stats = fold(
    snaps.flatMap((s) => s.stats),
    (r) => r.database,
    (a, b) => ({
      database: a.database,
      totals: addTotals(a.totals, b.totals),
      averages: addAverages(a.averages, b.averages),
    }),
  );
  const poolStats = fold(
    snaps.flatMap((s) => s.poolStats),
    (p) => `${p.database}\0${p.user}`,
    (a, b) => ({
      ...a,
      averages: addAverages(a.averages, b.averages),
      waits: addWaits(a.waits, b.waits),
      recentWaits: addWaits(a.recentWaits, b.recentWaits),
    }),
  );
  const lists = fold(
    snaps.flatMap((s) => s.lists),
    ([name]) => name,
    ([name, a], [, b]): [string, number] => [name, LIST_MAX.has(name) ? Math.max(a, b) : a + b],
  );
  const state = { paused: snaps.every((s) => s.state.paused), shuttingDown: snaps.some((s) => s.state.shuttingDown) };
  return {
    version: first.version,
    pools: () => pools,
    clients: () => clients,
    servers: () => servers,
    databases: () => databases,
    lists: () => lists,
    config: () => first.config,
    stats: () => stats,
    poolStats: () => poolStats,
    topology: () => first.topology,
    state: () => state,
  };
}
