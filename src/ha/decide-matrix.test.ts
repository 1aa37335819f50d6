import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decide } from './decide.js';
import {
  NOW,
  PG_EMPTY,
  PG_PRIMARY,
  PG_REPLICA,
  PG_STOPPED,
  acts,
  fixture,
  fmt,
  leaderKey,
  member,
  members,
  peer,
  type FixtureOptions,
} from '../../test/fakes/observed.js';
import type { LocalPostgres, Observed } from './view.js';

// The product role × DCS × PostgreSQL × pause × tags, checked against invariants that must hold everywhere.

type KeyCase = 'holds lock' | 'other leader' | 'no leader' | 'no initialize';
type DcsCase = 'ok' | 'down' | 'down+failsafe';
type PgCase =
  | 'empty'
  | 'stopped'
  | 'primary'
  | 'replica streaming'
  | 'replica not streaming'
  | 'crashed within timeout'
  | 'crashed after timeout';

const KEY_CASES: readonly KeyCase[] = ['holds lock', 'other leader', 'no leader', 'no initialize'];
const DCS_CASES: readonly DcsCase[] = ['ok', 'down', 'down+failsafe'];
const PG_CASES: readonly PgCase[] = [
  'empty',
  'stopped',
  'primary',
  'replica streaming',
  'replica not streaming',
  'crashed within timeout',
  'crashed after timeout',
];

function pgFor(c: PgCase, key: KeyCase): LocalPostgres {
  const following = key === 'other leader' ? 'node1' : null;
  switch (c) {
    case 'empty':
      return PG_EMPTY;
    case 'stopped':
      return PG_STOPPED;
    case 'primary':
      return PG_PRIMARY;
    case 'replica streaming':
      return { ...PG_REPLICA, following, streaming: following !== null };
    case 'replica not streaming':
      return { ...PG_REPLICA, following, streaming: false };
    case 'crashed within timeout':
      return { ...PG_STOPPED, shouldRun: true, downSince: NOW - 60_000 };
    case 'crashed after timeout':
      return { ...PG_STOPPED, shouldRun: true, downSince: NOW - 400_000 };
  }
}

function keyOptions(k: KeyCase): FixtureOptions {
  switch (k) {
    case 'holds lock':
      return {
        holdsLock: true,
        lastRenew: { ok: true, at: NOW - 10_000 },
        cluster: {
          leader: leaderKey('node2'),
          members: members(member('node1'), member('node2', { role: 'primary' }), member('node3')),
        },
      };
    case 'other leader':
      return {};
    case 'no leader':
      return { cluster: { leader: undefined }, peerMap: { node1: { reachable: false }, node3: peer() } };
    case 'no initialize':
      return {
        cluster: { leader: undefined, initialize: undefined },
        peerMap: { node1: { reachable: false }, node3: peer() },
      };
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
const LIFECYCLE = new Set([
  'start',
  'restart',
  'demote',
  'follow',
  'rewind',
  'reclone',
  'bootstrap',
  'clone',
  'take_leadership',
  'promote',
]);

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
      if (c.paused)
        assert.ok(!kinds.some((k) => LIFECYCLE.has(k)), `paused must not change PostgreSQL: ${acts(d).join(' ')}`);
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
    empty: ['release_lock'],
    stopped: ['renew_lock', 'start:primary:-'],
    primary: ['renew_lock'],
    'replica streaming': ['renew_lock', 'promote'],
    'replica not streaming': ['renew_lock', 'promote'],
    'crashed within timeout': ['renew_lock', 'restart'],
    'crashed after timeout': ['release_lock', 'start:replica:-'],
  },
  'other leader': {
    empty: ['clone:node1'],
    stopped: ['start:replica:node1'],
    primary: ['demote:immediate'],
    'replica streaming': [],
    'replica not streaming': [],
    'crashed within timeout': ['start:replica:node1'],
    'crashed after timeout': ['start:replica:node1'],
  },
  'no leader': {
    empty: [],
    stopped: ['start:replica:-'],
    primary: ['take_leadership'],
    'replica streaming': ['take_leadership'],
    'replica not streaming': ['take_leadership'],
    'crashed within timeout': ['start:replica:-'],
    'crashed after timeout': ['start:replica:-'],
  },
  'no initialize': {
    empty: ['bootstrap'],
    stopped: ['start:replica:-'],
    primary: ['take_leadership'],
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

// --- permanent logical slots (issue 14): the promotion guard across the product. ---
describe('decide: the permanent-logical-slot guard across the product', () => {
  const published = { pgl_app_site1_sub: 2000 };
  const barred = (copies: boolean): Observed['logicalSlots'] => ({
    permanent: ['pgl_app_site1_sub'],
    local: new Set(copies ? ['pgl_app_site1_sub'] : []),
  });
  for (const c of combos()) {
    for (const copies of [false, true]) {
      const name = `${c.key} | dcs ${c.dcs} | pg ${c.pg}${c.paused ? ' | paused' : ''}${c.nofailover ? ' | nofailover' : ''} | ${copies ? 'copies behind' : 'no copies'}`;
      it(name, () => {
        const o = observe(c);
        const cl = o.dcs.ok ? { ...o.dcs.cluster, status: { optime: 1000, slots: published, retainSlots: [] } } : null;
        const guarded: Observed = {
          ...o,
          logicalSlots: barred(copies),
          ...(cl ? { dcs: { ok: true as const, cluster: cl } } : {}),
        };
        const d = decide(guarded);
        const kinds = d.actions.map((a) => a.kind);
        // A replica behind the peers' confirmed position (replay 1000 < 2000), or without the copies, never races;
        // only a running primary may take the key back (it has every change the peers confirmed).
        if (kinds.includes('take_leadership')) assert.equal(c.pg, 'primary', d.summary);
        if (c.key === 'no leader' && c.dcs === 'ok' && !c.paused && !c.nofailover && c.pg.startsWith('replica'))
          assert.match(d.summary, copies ? /replay position .* is behind .*patroni#1749/ : /no copy of .*patroni#1749/);
        // Without the guard's input the same combination decides the same as before, except for the race.
        const plain = decide({ ...guarded, logicalSlots: undefined });
        if (!plain.actions.some((a) => a.kind === 'take_leadership')) assert.deepEqual(acts(d), acts(plain));
      });
    }
  }
});
// --- end permanent logical slots ---
