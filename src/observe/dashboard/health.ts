/**
 * The dashboard's health, as a pure function of the cluster view. The banner is the verdict `pgkeel status` and
 * `pgkeel ctl list` print (src/observe/status/health-verdict.ts: healthy, degraded or critical, with its reason),
 * so the three never disagree; this file adds only what the serving agent knows beyond the DCS and the colours:
 * - the DCS not answering (the view shown is the last cycle's): critical;
 * - a member's REST API not answering, WAL archiving failing: amber in the problem list and on the member's card
 *   (they leave the verdict as it is — `pgkeel status` cannot see them);
 * - a member's card colour: red when it concerns a critical problem or a replica whose PostgreSQL is down
 *   (stopped, crashed…), amber for a replica on its way (starting, rewinding…) or any other problem.
 */
import type { MemberView } from '../../cluster/view.js';
import {
  type HealthVerdict,
  type Verdict,
  type VerdictInput,
  type VerdictProblem,
  verdictOf,
  verdictProblems,
} from '../status/health-verdict.js';

export type Level = 'ok' | 'amber' | 'red';

export interface Problem {
  readonly level: Exclude<Level, 'ok'>;
  /** The members concerned (the page colours their cards); empty for a cluster-wide problem. */
  readonly members: readonly string[];
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

export interface Health extends HealthVerdict {
  /** The banner's colour: the verdict's (critical red, degraded amber, healthy ok). */
  readonly level: Level;
  /** Everything wrong, red first: the verdict's problems and the dashboard's own. */
  readonly problems: readonly Problem[];
}

const LEVEL: Record<Verdict, Level> = { healthy: 'ok', degraded: 'amber', critical: 'red' };

/** Replica states on the way to streaming (src/ha/agent.ts memberState), or running from the archive: not down. */
const NOT_DOWN = new Set([
  'running',
  'streaming',
  'starting',
  'restarting',
  'creating replica',
  'running pg_rewind',
  'stopping',
  'promoting',
  'initializing new cluster',
]);

function levelOf(p: VerdictProblem, h: HealthInput): Problem['level'] {
  if (p.severity === 'critical') return 'red';
  const down = (name: string) => {
    const m = h.members.find((x) => x.name === name);
    return m !== undefined && m.name !== h.leader && !NOT_DOWN.has(m.state);
  };
  return p.rule === 'not_streaming' && p.members.some(down) ? 'red' : 'amber';
}

export function clusterHealth(h: HealthInput): Health {
  const input: VerdictInput = {
    leader: h.leader,
    members: h.members,
    pause: h.pause,
    maximumLagOnFailover: h.maxLagBytes,
  };
  const found = verdictProblems(input);
  const verdict: HealthVerdict = h.dcsError
    ? { verdict: 'critical', reason: `the DCS does not answer (${h.dcsError}): showing the last view it gave` }
    : verdictOf(found, input);
  const problems: Problem[] = found.map((p) => ({ level: levelOf(p, h), members: p.members, text: p.text }));
  if (h.dcsError) problems.unshift({ level: 'red', members: [], text: verdict.reason });
  for (const name of h.unreachable)
    problems.push({ level: 'amber', members: [name], text: `${name}'s REST API does not answer` });
  if (h.archiveFailing)
    problems.push({ level: 'amber', members: [], text: `WAL archiving fails: ${h.archiveFailing}` });
  problems.sort((a, b) => (a.level === b.level ? 0 : a.level === 'red' ? -1 : 1));
  return { ...verdict, level: LEVEL[verdict.verdict], problems };
}

/** The level of one member's card: its worst problem. */
export function memberLevel(problems: readonly Problem[], name: string): Level {
  const mine = problems.filter((p) => p.members.includes(name));
  return mine.some((p) => p.level === 'red') ? 'red' : mine.length ? 'amber' : 'ok';
}
