/**
 * The lease step: the first thing a cycle does after reading the DCS, before it looks at anything else or
 * decides. Every member keeps its lease alive (its member record hangs on it, and a leader's key); a leader key
 * that names us but hangs on another lease — the agent restarted while PostgreSQL kept running — is adopted with
 * a compare-and-swap on what was read (Patroni `update_leader`).
 *
 * It comes first because the rest of the cycle depends on its outcome: a leader must never act as one on a lease
 * it could not renew (Patroni renews in `update_lock` before `_run_cycle` acts on having the lock). `decide`
 * sees that outcome as `Observed.holdsLock` and `lastRenew`; a store error here makes the cycle see the DCS as not
 * accessible, as a failed read does. Pure: `decideLease` picks the actions, `leaseOutcome` reads their result.
 */
import type { DcsView, LeaseAction, LeaseView, Renewal } from './view.js';

/** What running the lease actions gave (execute-dcs.ts): per action its result, null if not run; or the store error. */
export type LeaseRun =
  | {
      /** true: the lease was still alive; false: it was gone, a new one was granted. */
      readonly renewed: boolean | null;
      /** The compare-and-swap onto our lease succeeded. */
      readonly adopted: boolean | null;
    }
  | { readonly error: string };

export interface LeaseOutcome {
  /** The DCS as `decide` sees it: after a store error in the lease step, not accessible, as after a failed read. */
  readonly dcs: DcsView;
  /** The leader key names me and hangs on my live lease. */
  readonly holdsLock: boolean;
  /** `Observed.lastRenew` from now on. */
  readonly lastRenew: Renewal | null;
}

export function decideLease(v: LeaseView): readonly LeaseAction[] {
  // Nothing to renew against; failsafe mode (gather.ts) decides whether a primary may stay one.
  if (!v.dcs.ok) return [];
  const renew: LeaseAction = { kind: 'renew_lease', ttl: v.ttl };
  const leader = v.dcs.cluster.leader;
  // A key on the lease we renew is kept by the renewal itself. If that lease turns out to be gone, so is the key
  // (the store deletes a lease's keys with it), and there is nothing left to adopt.
  if (leader?.name !== v.me || leader.lease === v.lease) return [renew];
  return [renew, { kind: 'adopt_leader_key', modRevision: leader.modRevision }];
}

/**
 * Whether we hold the leader key after the step. `lastRenew` is per leadership term: it changes only while the key
 * names me, and after a store error only if there was a term to fail.
 */
export function leaseOutcome(v: LeaseView, r: LeaseRun): LeaseOutcome {
  if ('error' in r) {
    // The read at `now` worked, so that is when the DCS was last seen.
    const dcs: DcsView = { ok: false, error: r.error, lastSeen: v.dcs.ok ? v.now : v.dcs.lastSeen };
    return { dcs, holdsLock: false, lastRenew: v.lastRenew === null ? null : { ok: false, at: v.now } };
  }
  const mine = v.dcs.ok && v.dcs.cluster.leader?.name === v.me;
  if (!mine) return { dcs: v.dcs, holdsLock: false, lastRenew: v.lastRenew };
  const holdsLock = r.adopted ?? r.renewed === true;
  return { dcs: v.dcs, holdsLock, lastRenew: { ok: holdsLock, at: v.now } };
}
