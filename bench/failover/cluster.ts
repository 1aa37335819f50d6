/**
 * What the benchmark needs from a 3-node cluster, whichever system runs it, and the checks it makes the same way
 * for both: the leader is the one member whose REST API answers `OPTIONS /primary` 200 (what HAProxy sees), and
 * the cluster is healthy when that leader's `pg_stat_replication` shows every other member streaming.
 */
import pg from 'pg';
import { sleep } from '../../src/lib/proc.js';
import type { StatusJson } from '../../src/local/status.js';
import { readCluster } from '../../test/helpers/scenario.js';
import type { Backend } from './haproxy.js';

export const SYSTEMS = ['pgkeel', 'patroni', 'patroni-defaults'] as const;
export type SystemName = (typeof SYSTEMS)[number];

export interface Timers {
  readonly ttl: number;
  readonly loop_wait: number;
  readonly retry_timeout: number;
}

/** The fields of a `pgkeel status --json` that test/helpers/scenario.ts needs to read or patch the DCS. */
/** `passfile` (DIR/pgpass of a pgkeel cluster) lets the helpers find its etcd user; Patroni's etcd has none. */
export type DcsRef = Pick<StatusJson, 'etcd' | 'scope'> & { passfile?: string };

export function statusRef(dcs: DcsRef): StatusJson {
  return { ...dcs, user: 'postgres', passfile: dcs.passfile ?? '', members: [] };
}

export interface BenchCluster extends AsyncDisposable {
  readonly system: SystemName;
  readonly timers: Timers;
  readonly nodes: readonly Backend[];
  readonly user: string;
  readonly password: string;
  /** Where this cluster's files are (HAProxy's config goes there too). */
  readonly dir: string;
  /** The DCS both systems write with the same key layout (/service/<scope>/…). */
  readonly dcs: DcsRef;
  agentPid(node: string): number | null;
  postmasterPid(node: string): number | null;
  /** Starts the agent of every node whose agent is not running (a crashed node coming back). */
  restartStopped(): Promise<void>;
  /** Merges `patch` into the DCS `config` key. */
  patchConfig(patch: Record<string, unknown>): Promise<void>;
  /** The last lines of a node's agent log, for the report when something looks wrong. */
  logTail(node: string, lines?: number): string;
}

export async function restCode(
  port: number,
  path: string,
  method = 'OPTIONS',
  timeoutMs = 1500,
): Promise<number | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return null;
  }
}

/** The member HAProxy would route writes to, or undefined when none or several answer 200. */
export async function leaderByRest(c: BenchCluster): Promise<Backend | undefined> {
  const codes = await Promise.all(c.nodes.map((n) => restCode(n.apiPort, '/primary')));
  const leaders = c.nodes.filter((_, i) => codes[i] === 200);
  return leaders.length === 1 ? leaders[0] : undefined;
}

export async function query(
  c: BenchCluster,
  port: number,
  sql: string,
  params: unknown[] = [],
): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: c.user,
    password: c.password,
    database: 'postgres',
    connectionTimeoutMillis: 3000,
    query_timeout: 10_000,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.query(sql, params)).rows as Record<string, unknown>[];
  } finally {
    await client.end().catch(() => {});
  }
}

export interface Health {
  readonly leader: Backend;
  readonly syncStandby: string | undefined;
}

/**
 * One leader, every other member streaming from it and, in synchronous mode, one of them synchronous both in
 * PostgreSQL and in the DCS `sync` key — the key decides who may be promoted, and both systems write it only once
 * the standby is confirmed, a cycle after PostgreSQL reports it.
 */
export async function health(c: BenchCluster, sync: boolean): Promise<Health | undefined> {
  const leader = await leaderByRest(c);
  if (!leader) return undefined;
  const rows = await query(
    c,
    leader.pgPort,
    `SELECT application_name, sync_state FROM pg_stat_replication WHERE state = 'streaming'`,
  ).catch(() => []);
  const others = c.nodes.filter((n) => n !== leader).map((n) => n.name);
  if (!others.every((n) => rows.some((r) => r['application_name'] === n))) return undefined;
  const syncStandby = rows.find((r) => r['sync_state'] === 'sync')?.['application_name'] as string | undefined;
  if (sync) {
    if (!syncStandby) return undefined;
    const key = (await readCluster(statusRef(c.dcs))).sync;
    if (key?.leader !== leader.name || !key.standbys.includes(syncStandby)) return undefined;
  }
  return { leader, syncStandby };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(250);
  }
}

export function waitHealthy(c: BenchCluster, sync: boolean, timeoutMs = 120_000): Promise<Health> {
  return waitFor(
    `a healthy ${c.system} cluster (one leader, ${c.nodes.length - 1} streaming${sync ? ', one synchronous' : ''})`,
    () => health(c, sync),
    timeoutMs,
  );
}
