/**
 * The refusals `pgkeel ctl` gives before it asks a member to act, as pure functions of the DCS snapshot: the same
 * rules the REST API and the agents apply (src/cluster/switchover.ts), plus the lag limit (`maximum_lag_on_failover`)
 * the agents would apply to an automatic failover — a lagging candidate would lose the writes it has not received.
 */
import type { Cluster } from '../dcs/layout.js';
import { healthyCandidates, isPaused } from '../cluster/switchover.js';
import { isHealthyReplica } from '../cluster/health.js';
import { CtlError } from './errors.js';
import { maximumLagOf } from '../observe/status/health-verdict.js';

/** `maximum_lag_on_failover` from the DCS config (bytes): the same reading as the health verdict's. */
export function maxLag(c: Cluster): number {
  return maximumLagOf(c);
}

/** Bytes a member trails the last known leader position (leader record or `/status`), null when unknown. */
export function lagOf(c: Cluster, name: string): number | null {
  const r = c.members.get(name)?.record;
  if (!r) return null;
  const lead = c.leader ? c.members.get(c.leader.name)?.record.xlog_location : undefined;
  const ref = Math.max(typeof lead === 'number' ? lead : 0, c.status?.optime ?? 0);
  const pos =
    typeof r.replay_lsn === 'number' ? r.replay_lsn : typeof r.xlog_location === 'number' ? r.xlog_location : null;
  return ref === 0 || pos === null ? null : Math.max(0, ref - pos);
}

function syncOnly(c: Cluster): boolean {
  const v = c.config?.value['synchronous_mode'];
  return (v === true || v === 'on' || v === 'true') && c.sync?.leader != null;
}

export interface SwitchoverRequest {
  readonly leader?: string;
  readonly candidate?: string;
  /** Epoch ms of a scheduled switchover; health and lag are checked by the leader when it is due. */
  readonly scheduledAt?: number;
}

function checkCandidate(c: Cluster, name: string, scope: string, leader: string | undefined, kind: string): void {
  if (!c.members.has(name))
    throw new CtlError(
      'CTL_UNKNOWN_MEMBER',
      `member ${name} does not exist in cluster ${scope} (members: ${[...c.members.keys()].sort().join(', ')})`,
    );
  if (name === leader)
    throw new CtlError('CTL_SAME_MEMBER', `${kind} target and source are the same: ${name} is already the leader`);
  if (!isHealthyReplica(c, name, kind === 'switchover' && syncOnly(c))) {
    const r = c.members.get(name)?.record;
    const sync = syncOnly(c) && !(c.sync?.standbys.includes(name) ?? false) ? ', not in /sync' : '';
    throw new CtlError(
      'CTL_UNHEALTHY_CANDIDATE',
      `candidate ${name} is not healthy (role ${r?.role}, state ${r?.state}${r?.tags?.['nofailover'] === true ? ', tagged nofailover' : ''}${sync}); it must be a running replica without the nofailover tag`,
    );
  }
  const lag = lagOf(c, name);
  if (lag !== null && lag > maxLag(c)) {
    throw new CtlError(
      'CTL_CANDIDATE_LAGGING',
      `candidate ${name} lags ${lag} bytes behind the leader, more than maximum_lag_on_failover (${maxLag(c)}); wait for it to catch up or pick another member`,
    );
  }
}

/** Returns the leader to name in the request; throws a CtlError for every refusal. */
export function checkSwitchover(c: Cluster, scope: string, req: SwitchoverRequest): string {
  const current = c.leader?.name;
  if (!current)
    throw new CtlError('CTL_NO_LEADER', `cluster ${scope} has no leader; use \`pgkeel ctl failover --candidate NAME\``);
  if (req.leader !== undefined && req.leader !== current)
    throw new CtlError(
      'CTL_NOT_LEADER',
      `member ${req.leader} is not the leader of cluster ${scope} (the leader is ${current})`,
    );
  if (isPaused(c))
    throw new CtlError(
      'CTL_PAUSED',
      `cluster ${scope} is paused (maintenance mode): pgkeel moves no leadership while paused; run \`pgkeel ctl resume\` first`,
    );
  if (req.candidate !== undefined) {
    if (req.scheduledAt === undefined) checkCandidate(c, req.candidate, scope, current, 'switchover');
    else if (!c.members.has(req.candidate))
      throw new CtlError('CTL_UNKNOWN_MEMBER', `member ${req.candidate} does not exist in cluster ${scope}`);
    return current;
  }
  if (req.scheduledAt !== undefined) return current;
  const ok = healthyCandidates(c, current).filter((n) => (lagOf(c, n) ?? 0) <= maxLag(c));
  if (ok.length === 0) {
    throw new CtlError(
      'CTL_NO_CANDIDATE',
      `no healthy candidate to switch over to in cluster ${scope}: a candidate must be a running replica without the nofailover tag${syncOnly(c) ? ', listed in /sync' : ''}, lagging at most ${maxLag(c)} bytes`,
    );
  }
  return current;
}

/** Returns the current leader (if any) to name in the failover request; throws a CtlError for every refusal. */
export function checkFailover(c: Cluster, scope: string, candidate: string): string | undefined {
  if (isPaused(c))
    throw new CtlError(
      'CTL_PAUSED',
      `cluster ${scope} is paused (maintenance mode): pgkeel moves no leadership while paused; run \`pgkeel ctl resume\` first`,
    );
  checkCandidate(c, candidate, scope, c.leader?.name, 'failover');
  return c.leader?.name;
}

/**
 * `--scheduled T`: "now" (or nothing) means at once; an ISO 8601 time with a timezone, or without one in local
 * time as patronictl reads it. Returns epoch ms or undefined.
 */
export function parseScheduled(text: string | undefined, now: number): number | undefined {
  if (text === undefined || text.trim() === '' || text.trim().toLowerCase() === 'now') return undefined;
  const s = text.trim().replace(' ', 'T');
  const ms = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/i.test(s)
    ? Date.parse(s.replace(/([+-]\d{2})(\d{2})$/, '$1:$2'))
    : NaN;
  if (Number.isNaN(ms))
    throw new CtlError(
      'CTL_BAD_TIME',
      `cannot read --scheduled "${text}": expected an ISO 8601 time such as 2026-01-14T10:00+01:00 (local time without an offset), or "now"`,
    );
  if (ms < now) throw new CtlError('CTL_BAD_TIME', `--scheduled ${text} is in the past`);
  return ms;
}
