/**
 * One view of the whole cluster from the DCS alone — what `GET /cluster`, `pgkeel status` and `pgkeel ctl list`
 * show. Role is taken from the leader key and `/sync` (as patronictl does), never from a member's own claim.
 */
import type { Cluster } from '../dcs/layout.js';

export interface MemberView {
  name: string;
  role: 'leader' | 'sync_standby' | 'replica';
  state: string;
  host: string;
  port: number;
  api_url: string;
  timeline: number | null;
  lag_bytes: number | null;
  /** Replay lag in seconds as the member publishes it (`lag_seconds`); 0 for the leader, null when unknown. */
  lag_seconds?: number | null;
  tags: Record<string, unknown>;
  pid: number | null;
  data_dir: string | null;
  pending_restart: boolean;
}

export interface ClusterView {
  scope: string;
  leader: string | null;
  members: MemberView[];
  pause: boolean;
  failover: { leader?: string; member?: string; scheduled_at?: string } | null;
}

function hostPort(connUrl: string): { host: string; port: number } {
  try {
    const u = new URL(connUrl);
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 5432) };
  } catch {
    return { host: '', port: 0 };
  }
}

export function clusterView(scope: string, c: Cluster): ClusterView {
  const leaderName = c.leader?.name ?? null;
  const leaderRec = leaderName ? c.members.get(leaderName)?.record : undefined;
  const leaderPos = Math.max(Number(leaderRec?.xlog_location ?? 0), c.status?.optime ?? 0);
  const members: MemberView[] = [...c.members.values()]
    .map((m) => {
      const r = m.record;
      const isLeader = m.name === leaderName;
      const role: MemberView['role'] = isLeader
        ? 'leader'
        : c.sync?.standbys.includes(m.name)
          ? 'sync_standby'
          : 'replica';
      const state = !isLeader && r.replication_state === 'streaming' && r.state === 'running' ? 'streaming' : r.state;
      const pos =
        typeof r.replay_lsn === 'number' ? r.replay_lsn : typeof r.xlog_location === 'number' ? r.xlog_location : null;
      const lag = isLeader ? 0 : pos === null || !leaderName ? null : Math.max(0, leaderPos - pos);
      const { host, port } = hostPort(r.conn_url);
      return {
        name: m.name,
        role,
        state,
        host,
        port,
        api_url: r.api_url,
        timeline: typeof r.timeline === 'number' ? r.timeline : null,
        lag_bytes: lag,
        lag_seconds: isLeader ? 0 : typeof r['lag_seconds'] === 'number' ? r['lag_seconds'] : null,
        tags: r.tags ?? {},
        pid: typeof r.pid === 'number' ? r.pid : null,
        data_dir: typeof r.data_dir === 'string' ? r.data_dir : null,
        pending_restart: r.pending_restart === true,
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  const f = c.failover;
  return {
    scope,
    leader: leaderName,
    members,
    pause: c.config?.value['pause'] === true,
    failover: f
      ? {
          ...(f.leader ? { leader: f.leader } : {}),
          ...(f.member ? { member: f.member } : {}),
          ...(f.scheduledAt ? { scheduled_at: f.scheduledAt } : {}),
        }
      : null,
  };
}

/** Patroni's GET /cluster body. */
export function clusterAsPatroniJson(v: ClusterView): Record<string, unknown> {
  const body: Record<string, unknown> = {
    members: v.members.map((m) => ({
      name: m.name,
      role: m.role,
      state: m.state,
      api_url: m.api_url,
      host: m.host,
      port: m.port,
      ...(m.timeline !== null ? { timeline: m.timeline } : {}),
      ...(m.role !== 'leader' ? { lag: m.lag_bytes ?? 'unknown' } : {}),
      ...(Object.keys(m.tags).length ? { tags: m.tags } : {}),
      ...(m.pending_restart ? { pending_restart: true } : {}),
    })),
    scope: v.scope,
  };
  if (v.pause) body['pause'] = true;
  if (v.failover?.scheduled_at)
    body['scheduled_switchover'] = {
      at: v.failover.scheduled_at,
      from: v.failover.leader,
      ...(v.failover.member ? { to: v.failover.member } : {}),
    };
  return body;
}
