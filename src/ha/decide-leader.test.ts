import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decide } from './decide.js';
import { NOW, acts, leaderFixture, member, members, type FixtureOptions } from '../../test/fakes/observed.js';
import type { FailoverRequest } from '../dcs/layout.js';

const iso = (ms: number): string => new Date(ms).toISOString();

function withFailover(f: Omit<FailoverRequest, 'modRevision'>, opts: FixtureOptions = {}) {
  return leaderFixture({ ...opts, cluster: { failover: { modRevision: 9, ...f }, ...opts.cluster } });
}

describe('decide: leader with the lock', () => {
  it('renews and reports', () => {
    const d = decide(leaderFixture());
    assert.deepEqual(acts(d), ['renew_lock']);
    assert.equal(d.summary, 'no action: I am the leader with the lock');
    assert.equal(d.role, 'primary');
  });

  it('holding the key as a replica: promote, not take_leadership', () => {
    const d = decide(leaderFixture({ pg: { inRecovery: true, streaming: false } }));
    assert.deepEqual(acts(d), ['renew_lock', 'promote']);
    assert.match(d.summary, /^promoting:/);
    assert.equal(d.role, 'primary');
  });

  it('a nofailover node holding the key as a replica gives it back', () => {
    const d = decide(leaderFixture({ tags: { nofailover: true }, pg: { inRecovery: true } }));
    assert.deepEqual(acts(d), ['release_lock']);
  });

  it('a key naming me under an older lease is still mine (renew re-attaches it)', () => {
    const d = decide(leaderFixture({ holdsLock: false }));
    assert.deepEqual(acts(d), ['renew_lock']);
  });

  it('paused: renews, does not promote a replica', () => {
    const d = decide(leaderFixture({ settings: { paused: true }, pg: { inRecovery: true } }));
    assert.deepEqual(acts(d), ['renew_lock']);
    assert.match(d.summary, /^paused:/);
  });
});

describe('decide: switchover and failover requests at the leader', () => {
  it('a switchover to a healthy member demotes gracefully', () => {
    const d = decide(withFailover({ leader: 'node2', member: 'node3' }));
    assert.deepEqual(acts(d), ['renew_lock', 'demote:graceful']);
    assert.match(d.summary, /^demoting: switchover to node3 requested/);
    assert.equal(d.role, 'demoted');
  });

  it('a request for myself is done already', () => {
    const d = decide(withFailover({ leader: 'node2', member: 'node2' }));
    assert.match(d.summary, /node2 is already the leader/);
  });

  it('a failover request without a leader name applies to us too', () => {
    assert.deepEqual(acts(decide(withFailover({ member: 'node3' }))), ['renew_lock', 'demote:graceful']);
  });

  it('no candidate: demotes if some member is healthy', () => {
    const d = decide(withFailover({ leader: 'node2' }));
    assert.deepEqual(acts(d), ['renew_lock', 'demote:graceful']);
    assert.match(d.summary, /node1, node3 can take over/);
  });

  it('no candidate and no healthy member: clears the request', () => {
    const ms = members(
      member('node2', { role: 'primary' }),
      member('node3', { state: 'stopped' }),
      member('node1', { tags: { nofailover: true } }),
    );
    assert.deepEqual(acts(decide(withFailover({ leader: 'node2' }, { cluster: { members: ms } }))), [
      'renew_lock',
      'clear_failover',
    ]);
  });

  for (const [why, f, ms] of [
    ['an unknown candidate', { leader: 'node2', member: 'node9' }, undefined],
    ['a request naming another leader', { leader: 'node1', member: 'node3' }, undefined],
    ['a request for myself', { leader: 'node2', member: 'node2' }, undefined],
    [
      'a stopped candidate',
      { leader: 'node2', member: 'node3' },
      members(member('node2', { role: 'primary' }), member('node3', { state: 'stopped' })),
    ],
    [
      'a nofailover candidate',
      { leader: 'node2', member: 'node3' },
      members(member('node2', { role: 'primary' }), member('node3', { tags: { nofailover: true } })),
    ],
  ] as const) {
    it(`clears ${why}`, () => {
      const d = decide(withFailover(f, ms ? { cluster: { members: ms } } : {}));
      assert.deepEqual(acts(d), ['renew_lock', 'clear_failover']);
      assert.match(d.summary, /clearing/);
    });
  }

  it('a switchover scheduled in the future is not acted on yet', () => {
    const d = decide(withFailover({ leader: 'node2', member: 'node3', scheduledAt: iso(NOW + 60_000) }));
    assert.deepEqual(acts(d), ['renew_lock']);
    assert.match(d.summary, /scheduled at/);
  });

  it('a scheduled switchover whose time has come runs', () => {
    const d = decide(withFailover({ leader: 'node2', member: 'node3', scheduledAt: iso(NOW - 5_000) }));
    assert.deepEqual(acts(d), ['renew_lock', 'demote:graceful']);
  });

  it('a scheduled switchover long overdue is stale and cleared (Patroni: 1.5 × loop_wait)', () => {
    const d = decide(withFailover({ leader: 'node2', member: 'node3', scheduledAt: iso(NOW - 16_000) }));
    assert.deepEqual(acts(d), ['renew_lock', 'clear_failover']);
    assert.match(d.summary, /stale/);
  });

  it('an unreadable schedule is cleared', () => {
    assert.deepEqual(acts(decide(withFailover({ leader: 'node2', member: 'node3', scheduledAt: 'tomorrow' }))), [
      'renew_lock',
      'clear_failover',
    ]);
  });

  it('synchronous mode: only a synchronous standby can be the candidate', () => {
    const sync = { leader: 'node2', standbys: ['node1'], modRevision: 4 };
    const settings = { synchronousMode: true };
    const pg = { syncStandbys: ['node1'] };
    const toNode3 = decide(withFailover({ leader: 'node2', member: 'node3' }, { settings, pg, cluster: { sync } }));
    assert.ok(acts(toNode3).includes('clear_failover'), toNode3.summary);
    const toNode1 = decide(withFailover({ leader: 'node2', member: 'node1' }, { settings, pg, cluster: { sync } }));
    assert.deepEqual(acts(toNode1), ['renew_lock', 'demote:graceful']);
  });

  it('paused: requests are not honoured', () => {
    const d = decide(withFailover({ leader: 'node2', member: 'node3' }, { settings: { paused: true } }));
    assert.deepEqual(acts(d), ['renew_lock']);
  });
});

describe('decide: synchronous replication at the leader', () => {
  const on = { synchronousMode: true };

  it('sync mode without /sync: picks a streaming standby', () => {
    const ms = members(
      member('node1', { xlog_location: 900 }),
      member('node2', { role: 'primary' }),
      member('node3', { xlog_location: 1000 }),
    );
    const d = decide(leaderFixture({ settings: on, cluster: { members: ms } }));
    assert.deepEqual(acts(d), ['renew_lock', 'set_sync:node3']);
    assert.match(d.summary, /synchronous standbys: node3/);
  });

  it('nothing to do when /sync, the plan and PostgreSQL agree', () => {
    const d = decide(
      leaderFixture({
        settings: on,
        pg: { syncStandbys: ['node1'] },
        cluster: { sync: { leader: 'node2', standbys: ['node1'], modRevision: 4 } },
      }),
    );
    assert.deepEqual(acts(d), ['renew_lock']);
    assert.equal(d.summary, 'no action: I am the leader with the lock');
  });

  it('a /sync written by the former leader is rewritten', () => {
    const d = decide(
      leaderFixture({
        settings: on,
        pg: { syncStandbys: ['node1'] },
        cluster: { sync: { leader: 'node1', standbys: ['node2'], modRevision: 4 } },
      }),
    );
    assert.deepEqual(acts(d), ['renew_lock', 'set_sync:node1']);
  });

  it('sync mode off with /sync present: clears it', () => {
    const d = decide(leaderFixture({ cluster: { sync: { leader: 'node2', standbys: ['node1'], modRevision: 4 } } }));
    assert.deepEqual(acts(d), ['renew_lock', 'clear_sync']);
  });

  it('strict mode without candidates: sets the placeholder once, then stays', () => {
    const strict = { synchronousMode: true, synchronousModeStrict: true };
    const sync = { leader: 'node2', standbys: [], modRevision: 4 };
    const first = decide(
      leaderFixture({
        settings: strict,
        pg: { streamingStandbys: [], synchronousStandbyNames: [] },
        cluster: { sync },
      }),
    );
    assert.deepEqual(acts(first), ['renew_lock', 'set_sync:']);
    assert.match(first.summary, /commits wait/);
    const then = decide(
      leaderFixture({
        settings: strict,
        pg: { streamingStandbys: [], synchronousStandbyNames: ['*'] },
        cluster: { sync },
      }),
    );
    assert.deepEqual(acts(then), ['renew_lock']);
  });

  it('switchover beats sync housekeeping', () => {
    const d = decide(withFailover({ leader: 'node2', member: 'node3' }, { settings: on }));
    assert.deepEqual(acts(d), ['renew_lock', 'demote:graceful']);
  });

  it('paused: keeps /sync up to date, as Patroni does', () => {
    const d = decide(leaderFixture({ settings: { ...on, paused: true } }));
    assert.deepEqual(acts(d), ['renew_lock', 'set_sync:node1']);
  });
});
