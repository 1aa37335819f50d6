import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decide } from './decide.js';
import {
  MiB,
  NOW,
  PG_EMPTY,
  PG_PRIMARY,
  PG_STOPPED,
  acts,
  cluster,
  fixture,
  leaderKey,
  member,
  members,
  type FixtureOptions,
} from '../../test/fakes/observed.js';
import type { LocalPostgres } from './view.js';

describe('decide: DCS not accessible', () => {
  it('a replica does nothing', () => {
    const d = decide(fixture({ dcsDown: true }));
    assert.deepEqual(acts(d), []);
    assert.match(d.summary, /DCS is not accessible/);
    assert.equal(d.role, 'replica');
  });

  it('a multi-line store error still gives a one-line summary', () => {
    const o = fixture({ dcsDown: true });
    const d = decide({ ...o, dcs: { ok: false, error: 'connect ECONNREFUSED\n  at etcd:2379', lastSeen: null } });
    assert.equal(d.summary, 'no action: DCS is not accessible (connect ECONNREFUSED at etcd:2379)');
  });

  it('a primary holding the lock demotes offline', () => {
    const d = decide(fixture({ dcsDown: true, holdsLock: true, pg: PG_PRIMARY }));
    assert.deepEqual(acts(d), ['demote:offline']);
    assert.equal(d.role, 'demoted');
  });

  it('failsafe mode with every member confirming keeps the primary', () => {
    const d = decide(
      fixture({
        dcsDown: true,
        holdsLock: true,
        pg: PG_PRIMARY,
        failsafeConfirmed: true,
        settings: { failsafeMode: true },
      }),
    );
    assert.deepEqual(acts(d), []);
    assert.match(d.summary, /failsafe/);
    assert.equal(d.role, 'primary');
  });

  it('failsafe mode without confirmation still demotes', () => {
    const d = decide(fixture({ dcsDown: true, holdsLock: true, pg: PG_PRIMARY, settings: { failsafeMode: true } }));
    assert.deepEqual(acts(d), ['demote:offline']);
  });

  it('a confirmation does not count when failsafe mode is off', () => {
    const d = decide(fixture({ dcsDown: true, holdsLock: true, pg: PG_PRIMARY, failsafeConfirmed: true }));
    assert.deepEqual(acts(d), ['demote:offline']);
  });

  it('paused: the primary keeps running', () => {
    const d = decide(fixture({ dcsDown: true, holdsLock: true, pg: PG_PRIMARY, settings: { paused: true } }));
    assert.deepEqual(acts(d), []);
    assert.match(d.summary, /^paused:/);
  });

  it('a starting PostgreSQL that holds the key is treated as a primary', () => {
    const d = decide(fixture({ dcsDown: true, holdsLock: true, pg: { ...PG_STOPPED, running: true } }));
    assert.deepEqual(acts(d), ['demote:offline']);
  });

  it('a long action finishes first; the demote follows', () => {
    const d = decide(
      fixture({ dcsDown: true, holdsLock: true, pg: PG_PRIMARY, busy: { what: 'restart', since: NOW - 1000 } }),
    );
    assert.deepEqual(acts(d), []);
    assert.match(d.summary, /restart in progress/);
    assert.equal(d.role, 'primary');
  });
});

describe('decide: long action in progress', () => {
  it('names the operation and only renews a key we hold', () => {
    const d = decide(
      fixture({ busy: { what: 'clone', since: NOW }, cluster: { leader: leaderKey('node2') }, holdsLock: true }),
    );
    assert.deepEqual(acts(d), ['renew_lock']);
    assert.match(d.summary, /clone in progress/);
    assert.equal(d.role, 'uninitialized');
  });

  it('does nothing without the key, even with the key free', () => {
    const d = decide(fixture({ busy: { what: 'rewind', since: NOW }, cluster: { leader: undefined } }));
    assert.deepEqual(acts(d), []);
    assert.match(d.summary, /rewind in progress/);
  });

  it('a promote in progress under our key reports primary', () => {
    const d = decide(
      fixture({ busy: { what: 'promote', since: NOW }, cluster: { leader: leaderKey('node2') }, holdsLock: true }),
    );
    assert.equal(d.role, 'primary');
  });
});

describe('decide: shutting down', () => {
  it('the leader demotes gracefully so a replica takes over at once', () => {
    const d = decide(
      fixture({ shuttingDown: true, pg: PG_PRIMARY, holdsLock: true, cluster: { leader: leaderKey('node2') } }),
    );
    assert.deepEqual(acts(d), ['demote:graceful']);
    assert.equal(d.role, 'demoted');
  });

  it('a leader whose PostgreSQL is down releases the key', () => {
    const d = decide(
      fixture({ shuttingDown: true, pg: PG_STOPPED, holdsLock: true, cluster: { leader: leaderKey('node2') } }),
    );
    assert.deepEqual(acts(d), ['release_lock']);
  });

  it('a replica does nothing', () => {
    const d = decide(fixture({ shuttingDown: true }));
    assert.deepEqual(acts(d), []);
    assert.match(d.summary, /shutting down/);
  });

  it('paused: neither PostgreSQL nor the key is touched', () => {
    const d = decide(
      fixture({
        shuttingDown: true,
        pg: PG_PRIMARY,
        settings: { paused: true },
        cluster: { leader: leaderKey('node2') },
      }),
    );
    assert.deepEqual(acts(d), []);
  });
});

describe('decide: empty data directory', () => {
  it('no initialize key: races to bootstrap', () => {
    const d = decide(fixture({ pg: PG_EMPTY, cluster: { initialize: undefined, leader: undefined } }));
    assert.deepEqual(acts(d), ['bootstrap']);
    assert.equal(d.role, 'uninitialized');
  });

  it('no initialize key but tagged nofailover: waits', () => {
    const d = decide(
      fixture({ pg: PG_EMPTY, tags: { nofailover: true }, cluster: { initialize: undefined, leader: undefined } }),
    );
    assert.deepEqual(acts(d), []);
  });

  it('clones from the leader', () => {
    const d = decide(fixture({ pg: PG_EMPTY }));
    assert.deepEqual(acts(d), ['clone:node1']);
    assert.match(d.summary, /cloning from leader node1/);
  });

  it('prefers a streaming replica tagged clonefrom', () => {
    const ms = members(member('node1', { role: 'primary' }), member('node3', { tags: { clonefrom: true } }));
    assert.deepEqual(acts(decide(fixture({ pg: PG_EMPTY, cluster: { members: ms } }))), ['clone:node3']);
  });

  it('ignores a clonefrom replica that is not streaming', () => {
    const ms = members(
      member('node1', { role: 'primary' }),
      member('node3', { tags: { clonefrom: true }, replication_state: 'in archive recovery' }),
    );
    assert.deepEqual(acts(decide(fixture({ pg: PG_EMPTY, cluster: { members: ms } }))), ['clone:node1']);
  });

  it('waits while the leader has no member record', () => {
    const d = decide(fixture({ pg: PG_EMPTY, cluster: { members: members(member('node3')) } }));
    assert.deepEqual(acts(d), []);
    assert.match(d.summary, /waiting for a leader to clone from/);
  });

  it('waits while the bootstrap winner runs initdb (initialize is empty, no leader)', () => {
    const d = decide(fixture({ pg: PG_EMPTY, cluster: { initialize: '', leader: undefined } }));
    assert.deepEqual(acts(d), []);
  });

  it('releases a leader key it holds', () => {
    const d = decide(fixture({ pg: PG_EMPTY, holdsLock: true, cluster: { leader: leaderKey('node2') } }));
    assert.deepEqual(acts(d), ['release_lock']);
  });
});

describe('decide: system identifier', () => {
  it('a data directory of another cluster: no action, explained', () => {
    const d = decide(fixture({ pg: { sysid: '111' } }));
    assert.deepEqual(acts(d), []);
    assert.match(d.summary, /belongs to another cluster/);
  });

  it('no check while initialize is empty (initdb running)', () => {
    const d = decide(fixture({ pg: { sysid: '111' }, cluster: { initialize: '' } }));
    assert.doesNotMatch(d.summary, /another cluster/);
  });
});

describe('decide: PostgreSQL not running', () => {
  const mine: FixtureOptions = {
    holdsLock: true,
    lastRenew: { ok: true, at: NOW - 10_000 },
    cluster: { leader: leaderKey('node2') },
  };

  it('leader, crashed within primary_start_timeout: restart in place, keep the key', () => {
    const d = decide(fixture({ ...mine, pg: { ...PG_STOPPED, shouldRun: true, downSince: NOW - 299_000 } }));
    assert.deepEqual(acts(d), ['renew_lock', 'restart']);
    assert.equal(d.role, 'primary');
  });

  it('leader, down for exactly primary_start_timeout: gives the key up', () => {
    const d = decide(fixture({ ...mine, pg: { ...PG_STOPPED, shouldRun: true, downSince: NOW - 300_000 } }));
    assert.deepEqual(acts(d), ['release_lock', 'start:replica:-']);
    assert.match(d.summary, /primary_start_timeout/);
  });

  it('primary_start_timeout 0 releases at once', () => {
    const d = decide(
      fixture({
        ...mine,
        settings: { primaryStartTimeout: 0 },
        pg: { ...PG_STOPPED, shouldRun: true, downSince: NOW },
      }),
    );
    assert.deepEqual(acts(d), ['release_lock', 'start:replica:-']);
  });

  it('another leader: start as its replica', () => {
    const d = decide(fixture({ pg: PG_STOPPED }));
    assert.deepEqual(acts(d), ['start:replica:node1']);
  });

  it('no leader: start as a replica without upstream, to report a WAL position', () => {
    const d = decide(fixture({ pg: PG_STOPPED, cluster: { leader: undefined } }));
    assert.deepEqual(acts(d), ['start:replica:-']);
  });

  it('paused: keeps the key, does not start PostgreSQL', () => {
    const d = decide(
      fixture({
        ...mine,
        settings: { paused: true },
        pg: { ...PG_STOPPED, shouldRun: true, downSince: NOW - 999_000 },
      }),
    );
    assert.deepEqual(acts(d), ['renew_lock']);
  });
});

describe('decide: PostgreSQL running but not accepting connections', () => {
  const starting: Partial<LocalPostgres> = { ...PG_STOPPED, running: true };

  it('the leader only renews its key', () => {
    const d = decide(fixture({ pg: starting, holdsLock: true, cluster: { leader: leaderKey('node2') } }));
    assert.deepEqual(acts(d), ['renew_lock']);
  });

  it('with the key free nobody races on an unknown position', () => {
    const d = decide(fixture({ pg: starting, cluster: { leader: undefined } }));
    assert.deepEqual(acts(d), []);
    assert.match(d.summary, /accept connections/);
  });
});

describe('decide: a failed renewal of our key', () => {
  const lost: FixtureOptions = {
    holdsLock: false,
    lastRenew: { ok: false, at: NOW - 1000 },
    cluster: { leader: leaderKey('node2') },
  };

  it('a primary demotes immediately', () => {
    const d = decide(fixture({ ...lost, pg: PG_PRIMARY }));
    assert.deepEqual(acts(d), ['demote:immediate']);
    assert.match(d.summary, /lost the leader key/);
  });

  it('a replica gives the key back instead of promoting', () => {
    assert.deepEqual(acts(decide(fixture({ ...lost }))), ['release_lock']);
  });

  it('a stopped node gives the key back and starts as a replica', () => {
    assert.deepEqual(
      acts(decide(fixture({ ...lost, pg: { ...PG_STOPPED, shouldRun: true, downSince: NOW - 1000 } }))),
      ['release_lock', 'start:replica:-'],
    );
  });

  it('paused: keeps running and keeps trying to renew', () => {
    assert.deepEqual(acts(decide(fixture({ ...lost, pg: PG_PRIMARY, settings: { paused: true } }))), ['renew_lock']);
  });

  it('a successful renewal changes nothing', () => {
    const d = decide(fixture({ ...lost, lastRenew: { ok: true, at: NOW - 1000 }, pg: PG_PRIMARY }));
    assert.deepEqual(acts(d), ['renew_lock']);
  });
});

describe('decide: purity', () => {
  it('does not modify its input and returns the same decision twice', () => {
    const o = fixture({ cluster: { leader: undefined, status: { optime: 2 * MiB, slots: null, retainSlots: [] } } });
    const before = JSON.stringify(o, (_k, v: unknown) => (v instanceof Map ? [...v.entries()] : v));
    const a = decide(o);
    const b = decide(o);
    assert.deepEqual(a, b);
    assert.equal(
      JSON.stringify(o, (_k, v: unknown) => (v instanceof Map ? [...v.entries()] : v)),
      before,
    );
  });

  it('the default fixture is a healthy replica following node1', () => {
    const d = decide(fixture());
    assert.equal(d.summary, 'no action: following node1');
    assert.equal(cluster().leader?.name, 'node1');
  });
});
