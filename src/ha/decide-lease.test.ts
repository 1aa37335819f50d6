import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decide } from './decide.js';
import { decideLease, leaseOutcome, type LeaseRun } from './decide-lease.js';
import { NOW, PG_PRIMARY, PG_REPLICA, acts, cluster, fixture, leaderKey } from '../../test/fakes/observed.js';
import type { Cluster } from '../dcs/layout.js';
import type { LeaseView } from './view.js';

/** node2's view right after the DCS read: node1 leads (on lease-node1), node2's lease is lease-node2. */
function view(over: Partial<LeaseView> & { readonly cluster?: Partial<Cluster> } = {}): LeaseView {
  const { cluster: c, ...rest } = over;
  return {
    now: NOW,
    me: 'node2',
    ttl: 30,
    dcs: { ok: true, cluster: cluster(c) },
    lease: 'lease-node2',
    lastRenew: null,
    ...rest,
  };
}

const DCS_DOWN: LeaseView['dcs'] = { ok: false, error: 'etcd: no endpoint answered', lastSeen: NOW - 5000 };
const MY_KEY = { leader: leaderKey('node2') }; // the key names node2 and hangs on lease-node2
const MY_KEY_OLD_LEASE = { leader: { name: 'node2', modRevision: 42, lease: 'lease-of-my-last-run' } };
const run = (renewed: boolean | null, adopted: boolean | null = null): LeaseRun => ({ renewed, adopted });
/** The outcome without the DCS view (the same as read unless the step failed). */
function held(v: LeaseView, r: LeaseRun) {
  const o = leaseOutcome(v, r);
  if (!('error' in r)) assert.equal(o.dcs, v.dcs, 'the DCS view stays as read');
  return { holdsLock: o.holdsLock, lastRenew: o.lastRenew };
}

describe('decideLease: what the lease step does', () => {
  it('a replica keeps its lease alive (its member record hangs on it)', () => {
    assert.deepEqual(decideLease(view()), [{ kind: 'renew_lease', ttl: 30 }]);
  });

  it('a new lease is granted with the ttl in force', () => {
    assert.deepEqual(decideLease(view({ ttl: 20, lease: null })), [{ kind: 'renew_lease', ttl: 20 }]);
  });

  it('the leader whose key hangs on its lease only renews: the renewal keeps the key', () => {
    assert.deepEqual(decideLease(view({ cluster: MY_KEY })), [{ kind: 'renew_lease', ttl: 30 }]);
  });

  it('my key on another lease (the agent restarted): renew, then adopt it on the revision read', () => {
    assert.deepEqual(decideLease(view({ cluster: MY_KEY_OLD_LEASE })), [
      { kind: 'renew_lease', ttl: 30 },
      { kind: 'adopt_leader_key', modRevision: 42 },
    ]);
  });

  it('my key and no lease yet (first cycle after a restart): the new lease adopts it', () => {
    assert.deepEqual(
      decideLease(view({ lease: null, cluster: MY_KEY_OLD_LEASE })).map((a) => a.kind),
      ['renew_lease', 'adopt_leader_key'],
    );
  });

  it("another member's key is never adopted, whatever lease it hangs on", () => {
    assert.deepEqual(
      decideLease(view({ cluster: { leader: { name: 'node1', modRevision: 7, lease: 'lease-node2' } } })).map(
        (a) => a.kind,
      ),
      ['renew_lease'],
    );
    assert.deepEqual(
      decideLease(view({ cluster: { leader: undefined } })).map((a) => a.kind),
      ['renew_lease'],
    );
  });

  it('DCS not readable: nothing to do (failsafe decides for a primary)', () => {
    assert.deepEqual(decideLease(view({ dcs: DCS_DOWN })), []);
  });
});

describe('leaseOutcome: what decide sees of it (holdsLock, lastRenew)', () => {
  it('renewal ok with my key on my lease: I hold the lock, renewed now', () => {
    assert.deepEqual(held(view({ cluster: MY_KEY }), run(true)), { holdsLock: true, lastRenew: { ok: true, at: NOW } });
  });

  it('renewal failed (my lease had expired, and my key with it): not held, the renewal failed now', () => {
    const prev = { ok: true, at: NOW - 10_000 };
    assert.deepEqual(held(view({ cluster: MY_KEY, lastRenew: prev }), run(false)), {
      holdsLock: false,
      lastRenew: { ok: false, at: NOW },
    });
  });

  it('adoption won: held, even though the lease is new', () => {
    assert.deepEqual(held(view({ cluster: MY_KEY_OLD_LEASE }), run(false, true)), {
      holdsLock: true,
      lastRenew: { ok: true, at: NOW },
    });
  });

  it('adoption lost (the key changed since it was read): not held, failed', () => {
    assert.deepEqual(held(view({ cluster: MY_KEY_OLD_LEASE }), run(true, false)), {
      holdsLock: false,
      lastRenew: { ok: false, at: NOW },
    });
  });

  it('not my key: not held, lastRenew as it was', () => {
    const prev = { ok: true, at: NOW - 60_000 };
    assert.deepEqual(held(view({ lastRenew: prev }), run(true)), { holdsLock: false, lastRenew: prev });
  });

  it('a store error: the cycle sees the DCS down since the read; a leadership term in progress counts as a failed renewal', () => {
    const err = { error: 'etcd: request timed out' };
    const o = leaseOutcome(view({ cluster: MY_KEY, lastRenew: { ok: true, at: NOW - 10_000 } }), err);
    assert.deepEqual(o, {
      dcs: { ok: false, error: 'etcd: request timed out', lastSeen: NOW },
      holdsLock: false,
      lastRenew: { ok: false, at: NOW },
    });
    assert.deepEqual(held(view(), err), { holdsLock: false, lastRenew: null });
  });

  it('DCS not readable: nothing held, nothing changed', () => {
    const prev = { ok: true, at: NOW - 10_000 };
    assert.deepEqual(held(view({ dcs: DCS_DOWN, lastRenew: prev }), run(null)), { holdsLock: false, lastRenew: prev });
  });
});

describe('decide after the lease step (the safety rule: never lead on a lease that was not renewed)', () => {
  const mine = { cluster: MY_KEY };

  it('renewal ok: the leader leads', () => {
    const o = leaseOutcome(view(mine), run(true));
    const d = decide(fixture({ ...mine, holdsLock: o.holdsLock, lastRenew: o.lastRenew, pg: PG_PRIMARY }));
    assert.equal(d.summary, 'no action: I am the leader with the lock');
  });

  it('renewal failed: the primary demotes in this same cycle', () => {
    const o = leaseOutcome(view({ ...mine, lastRenew: { ok: true, at: NOW - 10_000 } }), run(false));
    const d = decide(fixture({ ...mine, holdsLock: o.holdsLock, lastRenew: o.lastRenew, pg: PG_PRIMARY }));
    assert.deepEqual(acts(d), ['demote:immediate']);
    assert.match(
      d.summary,
      /^demoting: lost the leader key \(the last renewal of the leader key failed at 2026-01-14T10:00:00.000Z\)/,
    );
  });

  it('adoption lost while PostgreSQL is a replica: the key is given back, not promoted', () => {
    const o = leaseOutcome(view({ cluster: MY_KEY_OLD_LEASE }), run(false, false));
    const d = decide(
      fixture({ cluster: MY_KEY_OLD_LEASE, holdsLock: o.holdsLock, lastRenew: o.lastRenew, pg: PG_REPLICA }),
    );
    assert.deepEqual(acts(d), ['release_lock']);
  });

  it('adoption won while PostgreSQL is a replica: promote under the adopted key', () => {
    const o = leaseOutcome(view({ cluster: MY_KEY_OLD_LEASE }), run(false, true));
    const d = decide(
      fixture({ cluster: MY_KEY_OLD_LEASE, holdsLock: o.holdsLock, lastRenew: o.lastRenew, pg: PG_REPLICA }),
    );
    assert.deepEqual(acts(d), ['renew_lock', 'promote']);
  });

  it('a store error in the step: no leadership action this cycle', () => {
    const o = leaseOutcome(view({ ...mine, lastRenew: { ok: true, at: NOW - 10_000 } }), {
      error: 'etcd: request timed out',
    });
    const d = decide(fixture({ dcsDown: true, holdsLock: o.holdsLock, lastRenew: o.lastRenew, pg: PG_PRIMARY }));
    assert.deepEqual(acts(d), ['demote:offline']);
  });
});
