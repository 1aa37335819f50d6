import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decide } from './decide.js';
import {
  MiB, NOW, PG_EMPTY, PG_PRIMARY, PG_REPLICA, PG_STOPPED, acts, cluster, fixture, fmt, leaderKey, member, members, peer,
  type FixtureOptions,
} from './decide-fixture.js';
import type { LocalPostgres, Observed } from './view.js';

// ---------------------------------------------------------------------------------------------------------------
// The product role × DCS × PostgreSQL × pause × tags, checked against invariants that must hold everywhere.

type KeyCase = 'holds lock' | 'other leader' | 'no leader' | 'no initialize';
type DcsCase = 'ok' | 'down' | 'down+failsafe';
type PgCase = 'empty' | 'stopped' | 'primary' | 'replica streaming' | 'replica not streaming' | 'crashed within timeout' | 'crashed after timeout';

const KEY_CASES: readonly KeyCase[] = ['holds lock', 'other leader', 'no leader', 'no initialize'];
const DCS_CASES: readonly DcsCase[] = ['ok', 'down', 'down+failsafe'];
const PG_CASES: readonly PgCase[] = ['empty', 'stopped', 'primary', 'replica streaming', 'replica not streaming', 'crashed within timeout', 'crashed after timeout'];

function pgFor(c: PgCase, key: KeyCase): LocalPostgres {
  const following = key === 'other leader' ? 'node1' : null;
  switch (c) {
    case 'empty': return PG_EMPTY;
    case 'stopped': return PG_STOPPED;
    case 'primary': return PG_PRIMARY;
    case 'replica streaming': return { ...PG_REPLICA, following, streaming: following !== null };
    case 'replica not streaming': return { ...PG_REPLICA, following, streaming: false };
    case 'crashed within timeout': return { ...PG_STOPPED, shouldRun: true, downSince: NOW - 60_000 };
    case 'crashed after timeout': return { ...PG_STOPPED, shouldRun: true, downSince: NOW - 400_000 };
  }
}

function keyOptions(k: KeyCase): FixtureOptions {
  switch (k) {
    case 'holds lock':
      return {
        holdsLock: true,
        lastRenew: { ok: true, at: NOW - 10_000 },
        cluster: { leader: leaderKey('node2'), members: members(member('node1'), member('node2', { role: 'primary' }), member('node3')) },
      };
    case 'other leader':
      return {};
    case 'no leader':
      return { cluster: { leader: undefined }, peerMap: { node1: { reachable: false }, node3: peer() } };
    case 'no initialize':
      return { cluster: { leader: undefined, initialize: undefined }, peerMap: { node1: { reachable: false }, node3: peer() } };
  }
}

interface Combo {
  readonly key: KeyCase;
  readonly dcs: DcsCase;
  readonly pg: PgCase;
  readonly paused: boolean;
  readonly nofailover: boolean;
}

function combos(): Combo[] {
  const out: Combo[] = [];
  for (const key of KEY_CASES)
    for (const dcs of DCS_CASES)
      for (const pg of PG_CASES)
        for (const paused of [false, true])
          for (const nofailover of [false, true]) out.push({ key, dcs, pg, paused, nofailover });
  return out;
}

function observe(c: Combo): Observed {
  const k = keyOptions(c.key);
  return fixture({
    ...k,
    pg: pgFor(c.pg, c.key),
    dcsDown: c.dcs !== 'ok',
    failsafeConfirmed: c.dcs === 'down+failsafe',
    settings: { paused: c.paused, failsafeMode: c.dcs === 'down+failsafe' },
    tags: { nofailover: c.nofailover },
  });
}

const isPrimaryPg = (p: PgCase): boolean => p === 'primary';
const LEADERSHIP = new Set(['take_leadership', 'promote']);
const LIFECYCLE = new Set(['start', 'restart', 'demote', 'follow', 'rewind', 'reclone', 'bootstrap', 'clone', 'take_leadership', 'promote']);

describe('decide: every role × DCS × PostgreSQL × pause × tag combination', () => {
  for (const c of combos()) {
    const name = `${c.key} | dcs ${c.dcs} | pg ${c.pg}${c.paused ? ' | paused' : ''}${c.nofailover ? ' | nofailover' : ''}`;
    it(name, () => {
      const d = decide(observe(c));
      const kinds = d.actions.map((a) => a.kind);
      assert.ok(d.summary.trim().length > 0, 'summary must not be empty');
      assert.ok(!d.summary.includes('\n'), 'summary is one line');
      if (c.dcs !== 'ok' || c.paused || c.nofailover || c.key === 'other leader') {
        assert.ok(!kinds.some((k) => LEADERSHIP.has(k)), `no leadership change expected, got ${acts(d).join(' ')}`);
      }
      if (c.dcs === 'ok' && !c.paused && c.key === 'other leader' && isPrimaryPg(c.pg)) {
        assert.deepEqual(acts(d), ['demote:immediate']);
      }
      assert.ok(kinds.filter((k) => k === 'take_leadership' || k === 'promote' || k === 'demote').length <= 1);
      if (c.dcs !== 'ok') {
        const demotes = isPrimaryPg(c.pg) && !c.paused && !(c.dcs === 'down+failsafe' && c.key === 'holds lock');
        assert.deepEqual(acts(d), demotes ? ['demote:offline'] : []);
      }
      if (c.paused) assert.ok(!kinds.some((k) => LIFECYCLE.has(k)), `paused must not change PostgreSQL: ${acts(d).join(' ')}`);
      assert.equal(d.role === 'uninitialized', c.pg === 'empty', `role ${d.role}`);
      for (const a of d.actions) {
        if ((a.kind === 'start' && a.as === 'primary') || a.kind === 'restart' || a.kind === 'renew_lock') {
          assert.equal(c.key, 'holds lock', `${fmt(a)} without the leader key`);
        }
      }
    });
  }
});

/** What the unpaused, healthy-DCS, untagged rows of the product must do (the table in transitions.md). */
const EXPECTED: Readonly<Record<KeyCase, Readonly<Record<PgCase, readonly string[]>>>> = {
  'holds lock': {
    'empty': ['release_lock'],
    'stopped': ['renew_lock', 'start:primary:-'],
    'primary': ['renew_lock'],
    'replica streaming': ['renew_lock', 'promote'],
    'replica not streaming': ['renew_lock', 'promote'],
    'crashed within timeout': ['renew_lock', 'restart'],
    'crashed after timeout': ['release_lock', 'start:replica:-'],
  },
  'other leader': {
    'empty': ['clone:node1'],
    'stopped': ['start:replica:node1'],
    'primary': ['demote:immediate'],
    'replica streaming': [],
    'replica not streaming': [],
    'crashed within timeout': ['start:replica:node1'],
    'crashed after timeout': ['start:replica:node1'],
  },
  'no leader': {
    'empty': [],
    'stopped': ['start:replica:-'],
    'primary': ['take_leadership'],
    'replica streaming': ['take_leadership'],
    'replica not streaming': ['take_leadership'],
    'crashed within timeout': ['start:replica:-'],
    'crashed after timeout': ['start:replica:-'],
  },
  'no initialize': {
    'empty': ['bootstrap'],
    'stopped': ['start:replica:-'],
    'primary': ['take_leadership'],
    'replica streaming': ['take_leadership'],
    'replica not streaming': ['take_leadership'],
    'crashed within timeout': ['start:replica:-'],
    'crashed after timeout': ['start:replica:-'],
  },
};

describe('decide: the decision table (DCS ok, not paused, no tags)', () => {
  for (const key of KEY_CASES) {
    for (const pg of PG_CASES) {
      it(`${key} | pg ${pg} → ${EXPECTED[key][pg].join(', ') || 'no action'}`, () => {
        const d = decide(observe({ key, pg, dcs: 'ok', paused: false, nofailover: false }));
        assert.deepEqual(acts(d), EXPECTED[key][pg], d.summary);
      });
    }
  }
});

// ---------------------------------------------------------------------------------------------------------------

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
    const d = decide(fixture({ dcsDown: true, holdsLock: true, pg: PG_PRIMARY, failsafeConfirmed: true, settings: { failsafeMode: true } }));
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
    const d = decide(fixture({ dcsDown: true, holdsLock: true, pg: PG_PRIMARY, busy: { what: 'restart', since: NOW - 1000 } }));
    assert.deepEqual(acts(d), []);
    assert.match(d.summary, /restart in progress/);
    assert.equal(d.role, 'primary');
  });
});

describe('decide: long action in progress', () => {
  it('names the operation and only renews a key we hold', () => {
    const d = decide(fixture({ busy: { what: 'clone', since: NOW }, cluster: { leader: leaderKey('node2') }, holdsLock: true }));
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
    const d = decide(fixture({ busy: { what: 'promote', since: NOW }, cluster: { leader: leaderKey('node2') }, holdsLock: true }));
    assert.equal(d.role, 'primary');
  });
});

describe('decide: shutting down', () => {
  it('the leader demotes gracefully so a replica takes over at once', () => {
    const d = decide(fixture({ shuttingDown: true, pg: PG_PRIMARY, holdsLock: true, cluster: { leader: leaderKey('node2') } }));
    assert.deepEqual(acts(d), ['demote:graceful']);
    assert.equal(d.role, 'demoted');
  });

  it('a leader whose PostgreSQL is down releases the key', () => {
    const d = decide(fixture({ shuttingDown: true, pg: PG_STOPPED, holdsLock: true, cluster: { leader: leaderKey('node2') } }));
    assert.deepEqual(acts(d), ['release_lock']);
  });

  it('a replica does nothing', () => {
    const d = decide(fixture({ shuttingDown: true }));
    assert.deepEqual(acts(d), []);
    assert.match(d.summary, /shutting down/);
  });

  it('paused: neither PostgreSQL nor the key is touched', () => {
    const d = decide(fixture({ shuttingDown: true, pg: PG_PRIMARY, settings: { paused: true }, cluster: { leader: leaderKey('node2') } }));
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
    const d = decide(fixture({ pg: PG_EMPTY, tags: { nofailover: true }, cluster: { initialize: undefined, leader: undefined } }));
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
    const ms = members(member('node1', { role: 'primary' }), member('node3', { tags: { clonefrom: true }, replication_state: 'in archive recovery' }));
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
  const mine: FixtureOptions = { holdsLock: true, lastRenew: { ok: true, at: NOW - 10_000 }, cluster: { leader: leaderKey('node2') } };

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
    const d = decide(fixture({ ...mine, settings: { primaryStartTimeout: 0 }, pg: { ...PG_STOPPED, shouldRun: true, downSince: NOW } }));
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
    const d = decide(fixture({ ...mine, settings: { paused: true }, pg: { ...PG_STOPPED, shouldRun: true, downSince: NOW - 999_000 } }));
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
  const lost: FixtureOptions = { holdsLock: false, lastRenew: { ok: false, at: NOW - 1000 }, cluster: { leader: leaderKey('node2') } };

  it('a primary demotes immediately', () => {
    const d = decide(fixture({ ...lost, pg: PG_PRIMARY }));
    assert.deepEqual(acts(d), ['demote:immediate']);
    assert.match(d.summary, /lost the leader key/);
  });

  it('a replica gives the key back instead of promoting', () => {
    assert.deepEqual(acts(decide(fixture({ ...lost }))), ['release_lock']);
  });

  it('a stopped node gives the key back and starts as a replica', () => {
    assert.deepEqual(acts(decide(fixture({ ...lost, pg: { ...PG_STOPPED, shouldRun: true, downSince: NOW - 1000 } }))), ['release_lock', 'start:replica:-']);
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
    assert.equal(JSON.stringify(o, (_k, v: unknown) => (v instanceof Map ? [...v.entries()] : v)), before);
  });

  it('the default fixture is a healthy replica following node1', () => {
    const d = decide(fixture());
    assert.equal(d.summary, 'no action: following node1');
    assert.equal(cluster().leader?.name, 'node1');
  });
});
