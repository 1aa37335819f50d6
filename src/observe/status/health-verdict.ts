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

export function healthVerdict(v: VerdictInput): HealthVerdict {
  if (!v.leader) return { verdict: 'critical', reason: 'no leader: nobody holds the leader key, writes fail' };
  const leader = v.members.find((m) => m.name === v.leader);
  if (!leader) return { verdict: 'critical', reason: `leader ${v.leader} publishes no member record` };
  if (leader.state !== 'running')
    return { verdict: 'critical', reason: `leader ${v.leader} is not running (state: ${leader.state})` };
  const problems: string[] = [];
  if (v.pause) problems.push('maintenance mode is on (no automatic failover)');
  for (const name of v.expected ?? []) if (!v.members.some((m) => m.name === name)) problems.push(`${name} is missing`);
  const replicas = v.members.filter((m) => m.name !== v.leader);
  for (const m of replicas) {
    if (m.state !== 'streaming') problems.push(`${m.name} is not streaming (state: ${m.state})`);
    else if (m.lag_bytes !== null && m.lag_bytes > v.maximumLagOnFailover)
      problems.push(
        `${m.name} lags ${size(m.lag_bytes)}, over maximum_lag_on_failover (${size(v.maximumLagOnFailover)})`,
      );
  }
  const pending = v.members.filter((m) => m.pending_restart).map((m) => m.name);
  if (pending.length) problems.push(`pending restart on ${pending.join(', ')}`);
  if (problems.length) return { verdict: 'degraded', reason: problems.join('; ') };
  const n = replicas.length;
  return {
    verdict: 'healthy',
    reason: `leader ${v.leader} running with ${n} streaming replica${n === 1 ? '' : 's'}`,
  };
}
