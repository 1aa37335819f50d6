/**
 * The dashboard's red/amber states, as a pure function of the cluster view: what the person on call must see
 * first. Red: writes are down or a replica is down (no leader, leader not running, replica stopped/crashed).
 * Amber: the cluster works but is exposed (replica not streaming yet or from the archive only, lag over
 * `maximum_lag_on_failover` — it would not be promoted —, maintenance mode, pending restart, a member's API not
 * answering, WAL archiving failing). The banner is the most severe problem's sentence.
 */
import type { MemberView } from '../../cluster/view.js';

export type Level = 'ok' | 'amber' | 'red';

export interface Problem {
  readonly level: Exclude<Level, 'ok'>;
  /** The member concerned, when there is one (the page colours its card). */
  readonly member?: string;
  readonly text: string;
}

export interface HealthInput {
  readonly leader: string | null;
  readonly members: readonly Pick<MemberView, 'name' | 'role' | 'state' | 'lag_bytes' | 'pending_restart'>[];
  readonly pause: boolean;
  readonly maxLagBytes: number;
  /** Members whose `/patroni` did not answer (their DCS record may still be alive). */
  readonly unreachable: readonly string[];
  /** WAL archiving failed more recently than it succeeded (this agent's archiver). */
  readonly archiveFailing?: string | null;
  /** The DCS could not be read: the whole view is stale. */
  readonly dcsError?: string | null;
}

export interface Health {
  readonly level: Level;
  /** One line for the banner. */
  readonly text: string;
  readonly problems: readonly Problem[];
}

/** Replica states on the way to streaming (src/ha/agent.ts memberState): amber, not red. */
const TRANSITIONAL = new Set([
  'starting',
  'restarting',
  'creating replica',
  'running pg_rewind',
  'stopping',
  'promoting',
  'initializing new cluster',
]);

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} kB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

function memberProblems(m: HealthInput['members'][number], h: HealthInput): Problem[] {
  const out: Problem[] = [];
  const p = (level: Problem['level'], text: string) => out.push({ level, member: m.name, text });
  if (m.role === 'leader') {
    if (m.state !== 'running') p('red', `leader ${m.name} is ${m.state}`);
  } else if (m.state === 'running') p('amber', `${m.name} is not streaming (replaying from the archive only)`);
  else if (TRANSITIONAL.has(m.state)) p('amber', `${m.name} is not streaming yet (${m.state})`);
  else if (m.state !== 'streaming') p('red', `${m.name} is ${m.state}: not streaming`);
  if (m.role !== 'leader' && m.lag_bytes !== null && m.lag_bytes > h.maxLagBytes)
    p(
      'amber',
      `${m.name} lags ${formatBytes(m.lag_bytes)}, over maximum_lag_on_failover (${formatBytes(h.maxLagBytes)})`,
    );
  if (m.pending_restart) p('amber', `${m.name} needs a restart (pending_restart)`);
  if (h.unreachable.includes(m.name)) p('amber', `${m.name}'s REST API does not answer`);
  return out;
}

export function clusterHealth(h: HealthInput): Health {
  const problems: Problem[] = [];
  if (h.dcsError) problems.push({ level: 'red', text: `the DCS does not answer: ${h.dcsError}` });
  if (!h.leader) problems.push({ level: 'red', text: 'no leader: writes are down' });
  if (h.pause) problems.push({ level: 'amber', text: 'maintenance mode (paused): no automatic failover' });
  for (const m of h.members) problems.push(...memberProblems(m, h));
  if (h.archiveFailing) problems.push({ level: 'amber', text: `WAL archiving fails: ${h.archiveFailing}` });
  problems.sort((a, b) => (a.level === b.level ? 0 : a.level === 'red' ? -1 : 1));
  const first = problems[0];
  if (!first) {
    const replicas = h.members.filter((m) => m.role !== 'leader');
    const lags = replicas.map((m) => m.lag_bytes ?? 0);
    const worst = lags.length ? Math.max(...lags) : 0;
    return {
      level: 'ok',
      text: `healthy: ${h.leader} leads, ${replicas.length} replica${replicas.length === 1 ? '' : 's'} streaming, max lag ${formatBytes(worst)}`,
      problems,
    };
  }
  const more = problems.length - 1;
  return { level: first.level, text: more ? `${first.text} (+${more} more)` : first.text, problems };
}

/** The level of one member's card: its worst problem. */
export function memberLevel(problems: readonly Problem[], name: string): Level {
  const mine = problems.filter((p) => p.member === name);
  return mine.some((p) => p.level === 'red') ? 'red' : mine.length ? 'amber' : 'ok';
}
