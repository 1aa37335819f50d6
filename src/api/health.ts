/**
 * Patroni's REST status model, as pure functions of the agent's last snapshot: the `/patroni` body and the
 * 200/503 answer of each health-check path (HAProxy, load balancers and vip-manager rely on these codes).
 */
import type { AgentSnapshot } from '../ha/agent.js';
import { PGKEEL_VERSION } from '../ha/agent.js';

export type Json = Record<string, unknown>;

/** Body of GET /patroni (and of every health-check path). */
export function patroniStatus(s: AgentSnapshot): Json {
  const g = s.gathered;
  const st = g?.pgStatus ?? null;
  const cluster = g?.cluster;
  const body: Json = {
    state: s.memberState,
    role: s.role === 'primary' ? 'primary' : s.role === 'replica' ? 'replica' : s.role,
  };
  if (st) {
    if (st.postmasterStart) body['postmaster_start_time'] = st.postmasterStart;
    body['server_version'] = st.serverVersion;
    // Patroni 3.0.2 peers decide "primary" from the presence of xlog.location: only a primary reports it.
    body['xlog'] = st.inRecovery
      ? {
          received_location: st.receivedLsn ?? 0,
          replayed_location: st.replayedLsn ?? 0,
          replayed_timestamp: st.replayTimestamp,
          paused: st.replayPaused,
          ...(st.receiverSilentMs !== null ? { receiver_silent_ms: st.receiverSilentMs } : {}),
        }
      : { location: st.walPosition ?? 0 };
    if (st.timeline !== null) body['timeline'] = st.timeline;
    if (st.inRecovery) body['replication_state'] = st.streaming ? 'streaming' : 'in archive recovery';
    if (!st.inRecovery) {
      body['replication'] = st.replication.map((r) => ({
        usename: 'replicator',
        application_name: r.applicationName,
        client_addr: r.clientAddr,
        state: r.state,
        sync_state: r.syncState,
        sync_priority: r.syncState === 'sync' ? 1 : 0,
      }));
    }
    if (st.pendingRestart) body['pending_restart'] = true;
  }
  if (cluster) {
    if (!cluster.leader) body['cluster_unlocked'] = true;
    if (cluster.sync?.standbys.includes(s.name)) body['sync_standby'] = true;
  }
  if (g?.dynamic.pause) body['pause'] = true;
  if (s.memory.dcsLastSeen) body['dcs_last_seen'] = Math.floor(s.memory.dcsLastSeen / 1000);
  const tags = g?.observed.tags;
  if (tags) {
    const t = Object.fromEntries(Object.entries(tags).filter(([, v]) => v === true));
    if (Object.keys(t).length) body['tags'] = t;
  }
  // Patroni: set when watchdog.mode is required and the watchdog cannot be armed; peers then skip this member.
  const wd = g?.observed.watchdog;
  if (wd?.mode === 'required' && wd.state === 'unavailable') body['watchdog_failed'] = true;
  if (s.memory.sysid) body['database_system_identifier'] = s.memory.sysid;
  body['patroni'] = { version: PGKEEL_VERSION, scope: s.scope, name: s.name };
  body['pgkeel'] = { summary: s.decision?.summary ?? 'starting', last_error: s.memory.lastError };
  return body;
}

/** Parses Patroni's `?lag=` (bytes, or with a unit: 16MB, 1GB, 512kB). */
export function parseLag(v: string | null): number | null {
  if (v === null || v === '') return null;
  const m = /^(\d+)\s*(B|kB|KB|MB|GB|TB)?$/i.exec(v.trim());
  if (!m) return null;
  const mult: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, tb: 1024 ** 4 };
  return Number(m[1]) * (mult[(m[2] ?? 'b').toLowerCase()] ?? 1);
}

/**
 * Held the leader key at the last cycle, and that renewal is younger than the ttl (Patroni's is_leader()): an agent
 * that was frozen answers from a snapshot older than its lease, and must not claim a key that may have expired.
 */
function isLeader(s: AgentSnapshot, now: number): boolean {
  const renew = s.memory.lastRenew;
  const ttlMs = (s.gathered?.dynamic.ttl ?? 0) * 1000;
  return s.gathered?.observed.holdsLock === true && renew !== null && renew.ok && now - renew.at < ttlMs;
}

function isRunningPrimary(s: AgentSnapshot, now: number): boolean {
  const st = s.gathered?.pgStatus;
  // With the DCS down while paused, Patroni answers from the PostgreSQL role alone.
  if (!s.gathered?.cluster) return s.gathered?.dynamic.pause === true && st?.inRecovery === false;
  return isLeader(s, now) && st?.inRecovery === false;
}

/** Bytes the replica trails: max(leader optime, received) − replayed. */
export function replicaLag(s: AgentSnapshot): number | null {
  const st = s.gathered?.pgStatus;
  if (!st || !st.inRecovery) return null;
  const optime = s.gathered?.cluster?.status?.optime ?? 0;
  const top = Math.max(optime, st.receivedLsn ?? 0);
  return Math.max(0, top - (st.replayedLsn ?? top));
}

function replicaOk(s: AgentSnapshot, q: URLSearchParams): boolean {
  const st = s.gathered?.pgStatus;
  if (!st || !st.inRecovery || s.memberState !== 'running') return false;
  if (s.gathered?.observed.tags.noloadbalance) return false;
  const lagLimit = parseLag(q.get('lag'));
  const lag = replicaLag(s);
  if (lagLimit !== null && lag !== null && lag > lagLimit) return false;
  const rs = q.get('replication_state');
  if (rs && (st.streaming ? 'streaming' : 'in archive recovery') !== rs) return false;
  for (const [k, v] of q) {
    if (!k.startsWith('tag_')) continue;
    const tag = (s.gathered?.observed.tags as Record<string, unknown> | undefined)?.[k.slice(4)];
    const tv = tag === undefined ? undefined : typeof tag === 'string' ? tag : String(tag).toLowerCase();
    if (tv !== v) return false;
  }
  return true;
}

function inSync(s: AgentSnapshot): boolean {
  return s.gathered?.cluster?.sync?.standbys.includes(s.name) === true;
}

/** 200 or 503 for a health-check path; undefined when the path is not a health check. */
export function healthCode(path: string, s: AgentSnapshot, q: URLSearchParams, now: number): number | undefined {
  const ok = (b: boolean) => (b ? 200 : 503);
  switch (path) {
    case '/':
    case '/primary':
    case '/master':
    case '/read-write':
      return ok(isRunningPrimary(s, now));
    case '/leader':
      return ok(isLeader(s, now) && s.memberState === 'running');
    case '/standby-leader':
    case '/standby_leader':
      return 503;
    case '/replica':
      return ok(replicaOk(s, q));
    case '/read-only':
      return ok(isRunningPrimary(s, now) || replicaOk(s, q));
    case '/sync':
    case '/synchronous':
      return ok(replicaOk(s, q) && inSync(s));
    case '/async':
    case '/asynchronous':
      return ok(replicaOk(s, q) && !inSync(s) && !!s.gathered?.cluster);
    case '/read-only-sync':
      return ok(isRunningPrimary(s, now) || (replicaOk(s, q) && inSync(s)));
    case '/health':
      return ok(s.memberState === 'running');
    case '/liveness': {
      const ttl = s.gathered?.dynamic.ttl ?? 30;
      const limit = (s.role === 'primary' ? ttl : 2 * ttl) * 1000;
      return ok(s.gathered?.dynamic.pause === true || (s.at > 0 && now - s.at <= limit));
    }
    case '/readiness': {
      if (isLeader(s, now) && s.memberState === 'running') return 200;
      const st = s.gathered?.pgStatus;
      if (!st?.inRecovery || !st.streaming || s.memberState !== 'running') return 503;
      const limit = parseLag(q.get('lag')) ?? s.gathered?.dynamic.maximum_lag_on_failover ?? Infinity;
      return ok((replicaLag(s) ?? 0) <= limit);
    }
    default:
      return undefined;
  }
}
