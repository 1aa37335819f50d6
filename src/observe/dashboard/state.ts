/**
 * The dashboard's JSON (`GET /dashboard/state`, and each server-sent event) as a pure function of what the serving
 * agent gathered (gather.ts): the cluster from the DCS, each member's `/patroni` and `/events`, the leader's
 * `/statements`, the registered proxies' `/stats`, this agent's backup status and lag history. Every source may be
 * missing or failing; the state then says so in that panel instead of failing as a whole.
 *
 * Other agents' answers are checked field by field: a member running another version, or a proxy answering
 * nonsense, shows as "unavailable", never as a broken page.
 */
import type { Statement } from '../pg-metrics/statements.js';
import { mergeEvents as mergeEventLists } from '../events/merge.js';
import type { BackupServiceStatus } from '../../backup/agent-service.js';
import { clusterView, type MemberView } from '../../cluster/view.js';
import type { Cluster } from '../../dcs/layout.js';
import { clusterHealth, type Health, type Level, memberLevel } from './health.js';
import type { LagPoint } from './lag-history.js';
import { DEFAULT_MAXIMUM_LAG_ON_FAILOVER, maximumLagOf } from '../status/health-verdict.js';

/** One HTTP GET's outcome: the parsed JSON body on 2xx, else the status code or the network error. */
export type Fetched =
  | { readonly ok: true; readonly body: unknown }
  | { readonly ok: false; readonly error: string; readonly code?: number };

export interface ProxyRecord {
  readonly id: string;
  readonly listen: string;
  readonly ro_listen?: string;
  readonly stats_url?: string;
  readonly metrics_url?: string;
  readonly version?: string;
  readonly started?: string;
}

export interface RawInputs {
  readonly now: number;
  readonly scope: string;
  readonly servedBy: string;
  readonly cluster: Cluster | undefined;
  readonly clusterError: string | null;
  /** Keyed by member name. */
  readonly patroni: ReadonlyMap<string, Fetched>;
  readonly events: ReadonlyMap<string, Fetched>;
  /** The leader's `/statements`; null without a leader. */
  readonly statements: Fetched | null;
  readonly proxies: { readonly list: readonly ProxyRecord[]; readonly error: string | null };
  /** Keyed by proxy id. */
  readonly proxyStats: ReadonlyMap<string, Fetched>;
  readonly backup: BackupServiceStatus | undefined;
  readonly lagHistory: Record<string, LagPoint[]>;
  readonly lagWindowMs: number;
  /** `restapi.authentication` is configured: the page may offer a switchover behind it. */
  readonly authConfigured: boolean;
}

export interface ClusterEvent {
  time: string;
  at: number;
  member: string;
  timeline: number | null;
  kind: string;
  reason: string;
  from?: string;
  to?: string;
  details?: Record<string, unknown>;
}

export interface DashboardMember extends Omit<MemberView, 'pid' | 'data_dir'> {
  level: Level;
  reachable: boolean;
  /** The member's last HA cycle sentence (`/patroni` pgkeel.summary). */
  summary: string | null;
  server_version: number | null;
}

export interface DashboardState {
  generated_at: string;
  scope: string;
  served_by: string;
  health: Health;
  leader: string | null;
  pause: boolean;
  max_lag_bytes: number;
  sync_standbys: string[];
  scheduled_switchover: { at?: string; from?: string; to?: string } | null;
  members: DashboardMember[];
  lag_history: { window_ms: number; series: Record<string, LagPoint[]> };
  /** available: false while no member serves `/events` (404). */
  events: { available: boolean; items: ClusterEvent[]; errors: string[] };
  statements: { available: boolean; enabled: boolean; error: string | null; statements: Statement[] };
  proxies: { error: string | null; items: ProxyPanel[] };
  backup: BackupPanel | null;
  switchover: { allowed: boolean };
}

/** One row of the leader's GET /statements (the shape src/observe/pg-metrics/statements.ts answers with). */
export type { Statement };

export interface ProxyPool {
  database: string;
  user: string;
  cl_active: number;
  cl_waiting: number;
  sv_active: number;
  sv_idle: number;
  tps: number;
  p99_wait_ms: number;
}

export interface ProxyPanel {
  id: string;
  listen: string;
  ro_listen: string | null;
  version: string | null;
  error: string | null;
  pools: ProxyPool[];
  totals: { cl_active: number; cl_waiting: number; sv_active: number; tps: number } | null;
}

export interface BackupPanel {
  repo: string;
  running: string | null;
  last_backup: { id: string | null; type: string; stop_time: string | null; age_s: number | null } | null;
  last_attempt: { ok: boolean; at: string; error: string | null } | null;
  recoverable_from: string | null;
  recoverable_to: string | null;
  archive: {
    backlog: number;
    failures: number;
    last_archived: string | null;
    last_archived_age_s: number | null;
    last_failed: { name: string; at: string; message: string } | null;
  } | null;
}

/** Events kept on the page (newest). */
export const MAX_EVENTS = 200;

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

function asEvent(v: unknown, member: string): ClusterEvent | null {
  if (!isObj(v) || typeof v['kind'] !== 'string') return null;
  const at = typeof v['at'] === 'number' ? v['at'] : Date.parse(String(v['time']));
  if (!Number.isFinite(at)) return null;
  return {
    time: new Date(at).toISOString(),
    at,
    member: str(v['member']) ?? member,
    timeline: typeof v['timeline'] === 'number' ? v['timeline'] : null,
    kind: v['kind'],
    reason: str(v['reason']) ?? '',
    ...(typeof v['from'] === 'string' ? { from: v['from'] } : {}),
    ...(typeof v['to'] === 'string' ? { to: v['to'] } : {}),
    ...(isObj(v['details']) ? { details: v['details'] } : {}),
  };
}

/**
 * All members' events in time order (ties: by member, then kind), the same event reported twice kept once, the
 * newest `MAX_EVENTS`. `available` is false when no member serves `/events` yet (every answer a 404).
 */
export function mergeEvents(perMember: ReadonlyMap<string, Fetched>): DashboardState['events'] {
  const lists: ClusterEvent[][] = [];
  const errors: string[] = [];
  let available = false;
  for (const [member, f] of perMember) {
    if (!f.ok) {
      if (f.code !== 404) errors.push(`${member}: ${f.error}`);
      continue;
    }
    available = true;
    if (!Array.isArray(f.body)) {
      errors.push(`${member}: /events did not answer a list`);
      continue;
    }
    lists.push(f.body.map((raw) => asEvent(raw, member)).filter((e): e is ClusterEvent => e !== null));
  }
  // The same merge as `pgkeel ctl events`: time order, one entry per happening seen by several members.
  const items = mergeEventLists(lists);
  return { available: available || errors.length > 0, items: items.slice(-MAX_EVENTS), errors };
}

function statementsPanel(f: Fetched | null): DashboardState['statements'] {
  const none = { available: false, enabled: false, error: null, statements: [] };
  if (!f) return { ...none, error: 'no leader to ask' };
  if (!f.ok) return f.code === 404 ? none : { ...none, error: f.error };
  if (!isObj(f.body)) return { ...none, error: '/statements did not answer an object' };
  const list = Array.isArray(f.body['statements']) ? f.body['statements'] : [];
  const statements = list.filter(isObj).map((s) => ({
    queryid: String(s['queryid'] ?? ''),
    datname: str(s['datname']) ?? '',
    query: str(s['query']) ?? '',
    calls: num(s['calls']),
    total_exec_time_ms: num(s['total_exec_time_ms']),
    mean_exec_time_ms: num(s['mean_exec_time_ms']),
    rows: num(s['rows']),
  }));
  return { available: true, enabled: f.body['enabled'] === true, error: str(f.body['error']), statements };
}

function proxyPanel(p: ProxyRecord, f: Fetched | undefined): ProxyPanel {
  const base = { id: p.id, listen: p.listen, ro_listen: p.ro_listen ?? null, version: p.version ?? null };
  if (!f) return { ...base, error: 'no stats_url registered', pools: [], totals: null };
  if (!f.ok || !isObj(f.body)) return { ...base, error: f.ok ? 'bad /stats answer' : f.error, pools: [], totals: null };
  const pools = (Array.isArray(f.body['pools']) ? f.body['pools'] : []).filter(isObj).map((x) => ({
    database: str(x['database']) ?? '',
    user: str(x['user']) ?? '',
    cl_active: num(x['cl_active']),
    cl_waiting: num(x['cl_waiting']),
    sv_active: num(x['sv_active']),
    sv_idle: num(x['sv_idle']),
    tps: num(x['tps']),
    p99_wait_ms: num(x['p99_wait_ms']),
  }));
  const t = f.body['totals'];
  const totals = isObj(t)
    ? {
        cl_active: num(t['cl_active']),
        cl_waiting: num(t['cl_waiting']),
        sv_active: num(t['sv_active']),
        tps: num(t['tps']),
      }
    : null;
  return { ...base, error: null, pools, totals };
}

const iso = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString() : null);
const ageS = (ms: number | null, now: number) =>
  ms === null || Number.isNaN(ms) ? null : Math.max(0, Math.round((now - ms) / 1000));

function backupPanel(b: BackupServiceStatus | undefined, now: number): BackupPanel | null {
  if (!b?.repo) return null;
  const last = b.report?.backups.filter((x) => x.status === 'ok').at(-1);
  const a = b.archiver;
  return {
    repo: b.repo,
    running: b.running,
    last_backup: last
      ? {
          id: last.id,
          type: last.type,
          stop_time: last.stop_time ?? null,
          age_s: ageS(last.stop_time ? Date.parse(last.stop_time) : null, now),
        }
      : null,
    last_attempt: b.lastBackup
      ? { ok: b.lastBackup.ok, at: iso(b.lastBackup.at) as string, error: b.lastBackup.error ?? null }
      : null,
    recoverable_from: b.report?.recoverable_from ?? null,
    recoverable_to: b.report?.recoverable_to ?? null,
    archive: a
      ? {
          backlog: a.backlog,
          failures: a.failures,
          last_archived: a.lastArchived?.name ?? null,
          last_archived_age_s: ageS(a.lastArchived?.time ?? null, now),
          last_failed: a.lastFailed
            ? { name: a.lastFailed.name, at: iso(a.lastFailed.time) as string, message: a.lastFailed.message }
            : null,
        }
      : null,
  };
}

/** The archiver's last failure when it is newer than its last success. */
function archiveFailing(b: BackupServiceStatus | undefined): string | null {
  const a = b?.archiver;
  if (!a?.lastFailed) return null;
  if (a.lastArchived && a.lastArchived.time > a.lastFailed.time) return null;
  return `${a.lastFailed.name}: ${a.lastFailed.message}`;
}

export function buildState(r: RawInputs): DashboardState {
  const view = r.cluster ? clusterView(r.scope, r.cluster) : null;
  const maxLagBytes = r.cluster ? maximumLagOf(r.cluster) : DEFAULT_MAXIMUM_LAG_ON_FAILOVER;
  const unreachable = [...r.patroni].filter(([, f]) => !f.ok).map(([n]) => n);
  const health = clusterHealth({
    leader: view?.leader ?? null,
    members: view?.members ?? [],
    pause: view?.pause ?? false,
    maxLagBytes,
    unreachable,
    archiveFailing: archiveFailing(r.backup),
    dcsError: r.clusterError,
  });
  const members: DashboardMember[] = (view?.members ?? []).map(({ pid: _p, data_dir: _d, ...m }) => {
    const f = r.patroni.get(m.name);
    const body = f?.ok && isObj(f.body) ? f.body : null;
    const pk = body && isObj(body['pgkeel']) ? body['pgkeel'] : null;
    return {
      ...m,
      level: memberLevel(health.problems, m.name),
      reachable: f?.ok === true,
      summary: pk ? str(pk['summary']) : null,
      server_version: body && typeof body['server_version'] === 'number' ? body['server_version'] : null,
    };
  });
  const f = view?.failover;
  return {
    generated_at: new Date(r.now).toISOString(),
    scope: r.scope,
    served_by: r.servedBy,
    health,
    leader: view?.leader ?? null,
    pause: view?.pause ?? false,
    max_lag_bytes: maxLagBytes,
    sync_standbys: [...(r.cluster?.sync?.standbys ?? [])],
    scheduled_switchover: f?.scheduled_at ? { at: f.scheduled_at, from: f.leader, to: f.member } : null,
    members,
    lag_history: { window_ms: r.lagWindowMs, series: r.lagHistory },
    events: mergeEvents(r.events),
    statements: statementsPanel(r.statements),
    proxies: { error: r.proxies.error, items: r.proxies.list.map((p) => proxyPanel(p, r.proxyStats.get(p.id))) },
    backup: backupPanel(r.backup, r.now),
    switchover: { allowed: r.authConfigured },
  };
}
