/**
 * The leader key is ours and PostgreSQL accepts connections (Patroni `process_healthy_cluster`, has_lock branch):
 * renew the key, promote if PostgreSQL is still a replica, manage synchronous replication, handle `/failover`.
 */
import type { Cluster } from '../dcs/layout.js';
import { isHealthyReplica } from '../cluster/health.js';
import { decision, scheduleOf, syncActive } from './decide-common.js';
import { syncStep } from './sync.js';
import type { Action, Decision, Observed } from './view.js';

const LEADER = 'I am the leader with the lock';

type FailoverStep =
  | { readonly kind: 'demote'; readonly summary: string }
  | { readonly kind: 'clear'; readonly note: string }
  | { readonly kind: 'wait'; readonly note: string };

/** Who a switchover without a named candidate could go to; sorted for a stable summary. */
function healthyReplicas(o: Observed, c: Cluster): string[] {
  const syncOnly = syncActive(o, c);
  return [...c.members.keys()].filter((n) => n !== o.me && isHealthyReplica(c, n, syncOnly)).sort();
}

/**
 * Patroni `process_manual_failover_from_leader`: a request for another leader, for ourselves, or for a member
 * that cannot take over is deleted; a due request with a healthy target makes us demote gracefully, which
 * releases the key so the target wins the race (it clears `/failover` when it takes the key).
 */
function failoverStep(o: Observed, c: Cluster): FailoverStep | null {
  const f = c.failover;
  if (!f) return null;
  if (f.leader !== undefined && f.leader !== o.me) {
    return { kind: 'clear', note: `clearing the failover request: it names ${f.leader} as leader, not me` };
  }
  const when = scheduleOf(f, o.now, o.settings.loopWait);
  if (when === 'invalid')
    return { kind: 'clear', note: `clearing the failover request: unreadable scheduled_at "${f.scheduledAt ?? ''}"` };
  if (when === 'stale')
    return { kind: 'clear', note: `clearing a stale scheduled switchover (${f.scheduledAt ?? ''})` };
  const target = f.member !== undefined ? `switchover to ${f.member}` : 'switchover';
  if (when === 'future') return { kind: 'wait', note: `${target} scheduled at ${f.scheduledAt ?? ''}` };
  if (f.member === o.me) return { kind: 'clear', note: `clearing the failover request: ${o.me} is already the leader` };
  if (f.member !== undefined) {
    return isHealthyReplica(c, f.member, syncActive(o, c))
      ? { kind: 'demote', summary: `demoting: ${target} requested` }
      : { kind: 'clear', note: `clearing the failover request: candidate ${f.member} is not a healthy member` };
  }
  const healthy = healthyReplicas(o, c);
  return healthy.length > 0
    ? { kind: 'demote', summary: `demoting: switchover requested, ${healthy.join(', ')} can take over` }
    : { kind: 'clear', note: 'clearing the failover request: no healthy member to fail over to' };
}

function joinNotes(head: string, notes: readonly string[]): string {
  return [head, ...notes.filter((n) => n !== '')].join('; ');
}

/** Maintenance mode: keep the key (and `/sync`, as Patroni does, so commits do not stall) and change nothing else. */
function decidePausedLeader(o: Observed, c: Cluster): Decision {
  if (o.pg.inRecovery === true) {
    return decision(
      'paused: no action, I hold the leader key but PostgreSQL is a replica; not promoting',
      [{ kind: 'renew_lock' }],
      'replica',
    );
  }
  const sync = syncStep(o.me, o.settings, o.pg, c);
  return decision(
    joinNotes(`paused: no action, ${LEADER}`, [sync.note]),
    [{ kind: 'renew_lock' }, ...sync.actions],
    'primary',
  );
}

/**
 * We hold the key but PostgreSQL is still in recovery: the key was just won (take_leadership promotes in the
 * executor; this covers a promote that did not finish) or the agent restarted (Patroni `enforce_primary_role`).
 * A `nofailover` node must not become primary, so it gives the key back instead.
 */
function decideLockedReplica(o: Observed): Decision {
  if (o.tags.nofailover) {
    return decision(
      'releasing the leader key: I am tagged nofailover and PostgreSQL is a replica',
      [{ kind: 'release_lock' }],
      'replica',
    );
  }
  const reason = 'I hold the leader key but PostgreSQL is still a replica';
  return decision(`promoting: ${reason}`, [{ kind: 'renew_lock' }, { kind: 'promote', reason }], 'primary');
}

export function decideLeader(o: Observed, c: Cluster): Decision {
  if (o.settings.paused) return decidePausedLeader(o, c);
  if (o.pg.inRecovery === true) return decideLockedReplica(o);

  const step = failoverStep(o, c);
  if (step?.kind === 'demote') {
    return decision(step.summary, [{ kind: 'renew_lock' }, { kind: 'demote', mode: 'graceful' }], 'demoted');
  }
  const sync = syncStep(o.me, o.settings, o.pg, c);
  const actions: Action[] = [{ kind: 'renew_lock' }, ...sync.actions];
  if (step?.kind === 'clear') actions.push({ kind: 'clear_failover' });
  const notes = [step?.note ?? '', sync.note];
  const head = actions.length === 1 ? `no action: ${LEADER}` : LEADER;
  return decision(joinNotes(head, notes), actions, 'primary');
}
