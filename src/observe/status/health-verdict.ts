/**
 * The one-line health verdict `pgkeel status`, `pgkeel ctl list` and the dashboard show, from the cluster view
 * alone (pure, so all three agree):
 * - critical: no leader, or the leader's PostgreSQL is not running — writes fail;
 * - degraded: a replica not streaming, a replica lagging over maximum_lag_on_failover, maintenance mode, a pending
 *   restart, an expected member missing — writes work but a failover would be slower, lossy or impossible;
 * - healthy otherwise.
 */
import type { Cluster } from '../../dcs/layout.js';

export type Verdict = 'healthy' | 'degraded' | 'critical';

export interface HealthVerdict {
  verdict: Verdict;
  reason: string;
}

export interface VerdictMember {
  readonly name: string;
  readonly role: 'leader' | 'sync_standby' | 'replica';
  /** As clusterView reports it: "streaming" for a running replica that streams. */
  readonly state: string;
  readonly lag_bytes: number | null;
  readonly pending_restart: boolean;
}

export interface VerdictInput {
  readonly leader: string | null;
  readonly members: readonly VerdictMember[];
  readonly pause: boolean;
  /** Bytes (the DCS config's maximum_lag_on_failover). */
  readonly maximumLagOnFailover: number;
  /** Members that should be there (a local cluster's nodes); missing ones degrade. Omitted: not checked. */
  readonly expected?: readonly string[];
}

/** Patroni's default, also pgkeel's (docs/config.md). */
export const DEFAULT_MAXIMUM_LAG_ON_FAILOVER = 1_048_576;

/** maximum_lag_on_failover as the DCS config sets it, else the default. */
export function maximumLagOf(c: Pick<Cluster, 'config'>): number {
  const v = c.config?.value['maximum_lag_on_failover'];
  return typeof v === 'number' && v >= 0 ? v : DEFAULT_MAXIMUM_LAG_ON_FAILOVER;
}

const MiB = 1024 * 1024;
const size = (n: number) => (n >= MiB ? `${(n / MiB).toFixed(1)} MB` : `${n} bytes`);

/** One thing wrong, as the verdict's reason names it; the dashboard colours the members' cards from these. */
export interface VerdictProblem {
  readonly severity: 'critical' | 'degraded';
  /** Which rule found it. */
  readonly rule:
    | 'no_leader'
    | 'leader_unpublished'
    | 'leader_down'
    | 'paused'
    | 'missing'
    | 'not_streaming'
    | 'lagging'
    | 'pending_restart';
  /** The members concerned; empty for a cluster-wide problem (no leader, maintenance mode). */
  readonly members: readonly string[];
  readonly text: string;
}

/** Every problem in the view, the critical ones first (the rules behind `healthVerdict`, one place for each). */
export function verdictProblems(v: VerdictInput): VerdictProblem[] {
  const out: VerdictProblem[] = [];
  const add = (
    severity: VerdictProblem['severity'],
    rule: VerdictProblem['rule'],
    text: string,
    members: readonly string[] = [],
  ) => out.push({ severity, rule, members, text });
  const leader = v.leader ? v.members.find((m) => m.name === v.leader) : undefined;
  if (!v.leader) add('critical', 'no_leader', 'no leader: nobody holds the leader key, writes fail');
  else if (!leader) add('critical', 'leader_unpublished', `leader ${v.leader} publishes no member record`);
  else if (leader.state !== 'running')
    add('critical', 'leader_down', `leader ${v.leader} is not running (state: ${leader.state})`, [v.leader]);
  if (v.pause) add('degraded', 'paused', 'maintenance mode is on (no automatic failover)');
  for (const name of v.expected ?? [])
    if (!v.members.some((m) => m.name === name)) add('degraded', 'missing', `${name} is missing`, [name]);
  for (const m of v.members) {
    if (m.name === v.leader) continue;
    if (m.state !== 'streaming')
      add('degraded', 'not_streaming', `${m.name} is not streaming (state: ${m.state})`, [m.name]);
    else if (m.lag_bytes !== null && m.lag_bytes > v.maximumLagOnFailover)
      add(
        'degraded',
        'lagging',
        `${m.name} lags ${size(m.lag_bytes)}, over maximum_lag_on_failover (${size(v.maximumLagOnFailover)})`,
        [m.name],
      );
  }
  const pending = v.members.filter((m) => m.pending_restart).map((m) => m.name);
  if (pending.length) add('degraded', 'pending_restart', `pending restart on ${pending.join(', ')}`, pending);
  return out;
}

/** The verdict from `verdictProblems(v)`: the first critical problem, else every degraded one, else healthy. */
export function verdictOf(problems: readonly VerdictProblem[], v: VerdictInput): HealthVerdict {
  const critical = problems.find((p) => p.severity === 'critical');
  if (critical) return { verdict: 'critical', reason: critical.text };
  if (problems.length) return { verdict: 'degraded', reason: problems.map((p) => p.text).join('; ') };
  const n = v.members.filter((m) => m.name !== v.leader).length;
  return {
    verdict: 'healthy',
    reason: `leader ${v.leader} running with ${n} streaming replica${n === 1 ? '' : 's'}`,
  };
}

export function healthVerdict(v: VerdictInput): HealthVerdict {
  return verdictOf(verdictProblems(v), v);
}
