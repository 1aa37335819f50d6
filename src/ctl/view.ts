/**
 * What `pgkeel ctl list`, `topology` and `history` show, as pure functions of the DCS snapshot. Roles come from
 * the leader and `/sync` keys (clusterView), never from a member's own claim, as patronictl shows them.
 */
import type { Cluster } from '../dcs/layout.js';
import { clusterView, type MemberView } from '../cluster/view.js';
import { renderTable } from '../cli/table.js';
import { healthVerdict, maximumLagOf, type HealthVerdict } from '../observe/status/health-verdict.js';
import { lastFailover, type LastFailover } from '../observe/status/last-failover.js';

/** `ctl list --json`, a stable interface (docs/ctl.md): fields are added, never renamed. */
export interface ListJson {
  scope: string;
  system_id: string | null;
  leader: string | null;
  pause: boolean;
  /** A pending or scheduled switchover/failover (the `/failover` key), else null. */
  failover: { leader?: string; member?: string; scheduled_at?: string } | null;
  members: Array<{
    name: string;
    host: string;
    port: number;
    role: MemberView['role'];
    state: string;
    timeline: number | null;
    lag_bytes: number | null;
    lag_mb: number | null;
    /** Replay lag in seconds (pg_replication_lag_seconds); null when unknown. */
    lag_seconds: number | null;
    tags: Record<string, unknown>;
    pending_restart: boolean;
    api_url: string;
  }>;
  /** The last change of leader from the `/history` key; null before the first. */
  last_failover: LastFailover | null;
  health: HealthVerdict;
}

const MiB = 1024 * 1024;

export function listJson(scope: string, c: Cluster): ListJson {
  const v = clusterView(scope, c);
  return {
    scope,
    system_id: c.initialize ? c.initialize : null,
    leader: v.leader,
    pause: v.pause,
    failover: v.failover,
    members: v.members.map((m) => ({
      name: m.name,
      host: m.host,
      port: m.port,
      role: m.role,
      state: m.state,
      timeline: m.timeline,
      lag_bytes: m.lag_bytes,
      lag_mb: m.lag_bytes === null ? null : Math.round(m.lag_bytes / MiB),
      lag_seconds: m.lag_seconds ?? null,
      tags: m.tags,
      pending_restart: m.pending_restart,
      api_url: m.api_url,
    })),
    last_failover: lastFailover(c),
    health: healthVerdict({ ...v, maximumLagOnFailover: maximumLagOf(c) }),
  };
}

const ROLE: Record<MemberView['role'], string> = { leader: 'Leader', sync_standby: 'Sync Standby', replica: 'Replica' };

function tagsText(tags: Record<string, unknown>): string {
  return Object.entries(tags)
    .map(([k, v]) => (v === true ? k : `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`))
    .join(',');
}

type Row = ListJson['members'][number];

function row(m: Row, name = m.name): string[] {
  const lag = m.role === 'leader' ? '' : m.lag_mb === null ? 'unknown' : String(m.lag_mb);
  const lagS = m.role === 'leader' ? '' : m.lag_seconds === null ? 'unknown' : String(m.lag_seconds);
  return [
    name,
    `${m.host}:${m.port}`,
    ROLE[m.role],
    m.state + (m.pending_restart ? ' *' : ''),
    m.timeline === null ? '' : String(m.timeline),
    lag,
    lagS,
    tagsText(m.tags),
  ];
}

const HEADER = ['Member', 'Host', 'Role', 'State', 'TL', 'Lag in MB', 'Lag in s', 'Tags'];

/** The lines under the table: maintenance mode and a pending or scheduled switchover. */
function footer(j: ListJson): string[] {
  const lines: string[] = [`Health: ${j.health.verdict} (${j.health.reason})`];
  const lf = j.last_failover;
  if (lf) lines.push(`Last failover: ${lastFailoverText(lf)}`);
  if (j.members.some((m) => m.pending_restart)) lines.push('* pending restart');
  if (j.pause) lines.push('Maintenance mode: on (pgkeel ctl resume to end it)');
  const f = j.failover;
  if (f?.scheduled_at)
    lines.push(
      `Switchover scheduled at: ${f.scheduled_at}  from: ${f.leader ?? '(any)'}  to: ${f.member ?? '(any healthy member)'}`,
    );
  else if (f)
    lines.push(`Switchover pending  from: ${f.leader ?? '(no leader)'}  to: ${f.member ?? '(any healthy member)'}`);
  return lines;
}

/** "2026-12-03T08:31:02Z node1 -> node2 (timeline 3)"; also used by `pgkeel status`. */
export function lastFailoverText(lf: LastFailover): string {
  return `${lf.time ?? 'time unknown'} ${lf.from ?? '(unknown)'} -> ${lf.to ?? '(unknown)'} (timeline ${lf.timeline})`;
}

function title(j: ListJson): string {
  return `Cluster: ${j.scope} (system id ${j.system_id ?? 'not initialized yet'})`;
}

export function listText(j: ListJson): string {
  return [title(j), renderTable([HEADER, ...j.members.map((m) => row(m))]), ...footer(j)].join('\n');
}

/** Like list, with each replica indented under the member it follows (all follow the leader: no cascading yet). */
export function topologyText(j: ListJson): string {
  const leader = j.members.find((m) => m.role === 'leader');
  const rest = j.members.filter((m) => m !== leader);
  const rows = leader ? [row(leader), ...rest.map((m) => row(m, `+ ${m.name}`))] : rest.map((m) => row(m));
  return [title(j), renderTable([HEADER, ...rows]), ...footer(j)].join('\n');
}

export function historyText(c: Cluster): string {
  const rows = c.history.map(([tl, lsn, reason, at, leader]) => [
    String(tl),
    String(lsn),
    reason,
    at ?? '',
    leader ?? '',
  ]);
  return renderTable([['TL', 'LSN', 'Reason', 'Timestamp', 'New Leader'], ...rows]);
}
