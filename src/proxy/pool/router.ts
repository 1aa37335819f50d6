/**
 * Where a new server connection goes: pure functions of the topology (from the DCS or the command line) and the
 * current connection counts. The proxy never decides who is primary — it only reads `Topology.leader`.
 */
import type { Cluster, Member } from '../../dcs/layout.js';
import { ProxyError, ProxyErrorCode } from '../errors.js';

export interface NodeAddr {
  /** The member name (DCS) or "host:port" (static). */
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

export interface ReplicaInfo extends NodeAddr {
  /** Bytes behind the leader; null when unknown. */
  readonly lagBytes: number | null;
  readonly noloadbalance: boolean;
}

export interface Topology {
  readonly leader: NodeAddr | null;
  readonly replicas: readonly ReplicaInfo[];
  /**
   * A switchover or failover is under way (failover key present, or no leader key): new transactions on the
   * read-write side queue until a leader is named again.
   */
  readonly switching: boolean;
  /** One sentence for logs and SHOW: why the topology is what it is. */
  readonly reason: string;
  /**
   * The member the leader key names, writable yet or not (absent: static topology or no key). Read-write server
   * connections on any other member are cut at once, in-flight transactions included: once another member holds
   * the key the old primary is demoting or gone, and a statement waiting on a vanished host would otherwise hang
   * until TCP gives up.
   */
  readonly keyHolder?: string | null;
}

export interface RouteSettings {
  readonly maxLagBytes: number;
  readonly roFallbackToLeader: boolean;
}

/** postgres://host:port/db → host and port; null when not a usable URL. */
export function parseConnUrl(url: string): { host: string; port: number } | null {
  try {
    const u = new URL(url);
    if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') return null;
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = u.port ? Number(u.port) : 5432;
    return host ? { host, port } : null;
  } catch {
    return null;
  }
}

function lsnOf(m: Member, ...fields: string[]): number | null {
  for (const f of fields) {
    const v = m.record[f];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return null;
}

const REPLICA_ROLES = new Set(['replica', 'standby_leader', 'sync_standby']);
/** Roles a member reports once its PostgreSQL accepts writes (Patroni 3 writes 'master', Patroni 4 'primary'). */
const PRIMARY_ROLES = new Set(['master', 'primary']);
const RUNNING_STATES = new Set(['running', 'streaming']);

/**
 * The routing view of a Patroni-layout cluster. Writes go to the member that holds the leader key *and* reports
 * itself primary in its member record: the key is taken before `pg_ctl promote` finishes (and survives an etcd
 * restart while its holder has demoted), and a write sent in that window fails with 25006 "read-only transaction".
 * Until the holder reports role master/primary the read-write side holds new transactions (`switching`).
 * Replica lag is the leader's WAL position (its member record's
 * xlog_location, or the /status optime when newer) minus the replica's replay_lsn (or xlog_location).
 * `now` decides whether a scheduled failover is already due.
 */
export function topologyFromCluster(c: Cluster, now: Date): Topology {
  const leaderMember = c.leader ? c.members.get(c.leader.name) : undefined;
  const leaderAddr = leaderMember ? parseConnUrl(leaderMember.record.conn_url) : null;
  const writable = leaderMember !== undefined && PRIMARY_ROLES.has(leaderMember.record.role);
  const leader = c.leader && leaderAddr && writable ? { name: c.leader.name, ...leaderAddr } : null;
  const f = c.failover;
  const failoverDue = f !== undefined && (f.scheduledAt === undefined || Date.parse(f.scheduledAt) <= now.getTime());
  const leaderLsn =
    Math.max(leaderMember ? (lsnOf(leaderMember, 'xlog_location') ?? 0) : 0, c.status?.optime ?? 0) || null;
  const replicas: ReplicaInfo[] = [];
  for (const m of c.members.values()) {
    if (m.name === c.leader?.name || !REPLICA_ROLES.has(m.record.role) || !RUNNING_STATES.has(m.record.state)) continue;
    const addr = parseConnUrl(m.record.conn_url);
    if (!addr) continue;
    const own = lsnOf(m, 'replay_lsn', 'xlog_location');
    const lagBytes = own === null ? null : leaderLsn === null ? 0 : Math.max(0, leaderLsn - own);
    const tag = m.record.tags?.['noloadbalance'];
    replicas.push({ name: m.name, ...addr, lagBytes, noloadbalance: tag === true || tag === 'true' });
  }
  replicas.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let reason: string;
  if (!c.leader) reason = 'no leader key: waiting for the cluster to elect a leader';
  else if (!leaderAddr) reason = `leader "${c.leader.name}" has no member record with a conn_url yet`;
  else if (!leader)
    reason = `leader "${c.leader.name}" holds the key but does not report itself primary yet (role ${leaderMember?.record.role ?? 'unknown'}, state ${leaderMember?.record.state ?? 'unknown'}): holding new transactions`;
  else if (failoverDue)
    reason = `failover requested (leader "${leader.name}"${f?.member ? `, candidate "${f.member}"` : ''}): pausing new transactions`;
  else reason = `leader "${leader.name}" at ${leader.host}:${leader.port}, ${replicas.length} replica(s)`;
  return { leader, replicas, switching: !leader || failoverDue, reason, keyHolder: c.leader?.name ?? null };
}

/** True when a read-write server connection on `node` must be cut now: the leader key names another member. */
export function cutInFlight(t: Topology, node: string): boolean {
  return typeof t.keyHolder === 'string' && t.keyHolder !== node;
}

/** A static topology from --primary/--replica: no lag information, always eligible. */
export function staticTopology(primary: NodeAddr, replicas: readonly NodeAddr[]): Topology {
  return {
    leader: primary,
    replicas: replicas.map((r) => ({ ...r, lagBytes: 0, noloadbalance: false })),
    switching: false,
    reason: `static: primary ${primary.host}:${primary.port}, ${replicas.length} replica(s)`,
  };
}

export function eligibleReplicas(t: Topology, s: RouteSettings): ReplicaInfo[] {
  return t.replicas.filter((r) => !r.noloadbalance && r.lagBytes !== null && r.lagBytes <= s.maxLagBytes);
}

/** The read-write target: the leader, unless a switchover is under way or there is none. */
export function chooseReadWrite(t: Topology): NodeAddr | ProxyError {
  if (t.leader && !t.switching) return t.leader;
  return new ProxyError(ProxyErrorCode.NoLeader, `no leader to route to: ${t.reason}`);
}

/**
 * The read-only target: the eligible replica with the fewest server connections (ties: by name), else the leader
 * when fallback is on.
 */
export function chooseReadOnly(
  t: Topology,
  s: RouteSettings,
  connections: (name: string) => number,
): NodeAddr | ProxyError {
  let best: ReplicaInfo | null = null;
  let bestCount = Infinity;
  for (const r of eligibleReplicas(t, s)) {
    const n = connections(r.name);
    if (n < bestCount) {
      best = r;
      bestCount = n;
    }
  }
  if (best) return best;
  if (s.roFallbackToLeader && t.leader) return t.leader;
  return new ProxyError(
    ProxyErrorCode.NoReplica,
    `no replica eligible for reads (max_lag ${s.maxLagBytes} bytes, noloadbalance excluded) and ro_fallback_to_leader is off: ${t.reason}`,
  );
}

/** True when a server on `node` may keep serving `role` under topology `t` (else it is fenced). */
export function stillValid(t: Topology, s: RouteSettings, role: 'rw' | 'ro', node: string): boolean {
  if (role === 'rw') return t.leader?.name === node;
  if (eligibleReplicas(t, s).some((r) => r.name === node)) return true;
  return s.roFallbackToLeader && t.leader?.name === node && eligibleReplicas(t, s).length === 0;
}
