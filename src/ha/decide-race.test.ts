import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decide } from './decide.js';
import {
  MiB,
  NOW,
  PG_PRIMARY,
  UNREACHABLE,
  acts,
  member,
  members,
  peer,
  racerFixture,
} from '../../test/fakes/observed.js';
import type { HistoryEntry } from '../dcs/layout.js';

const status = (optime: number) => ({ optime, slots: null, retainSlots: [] });

describe('decide: leader key free — who races', () => {
  it('the healthiest replica takes leadership', () => {
    const d = decide(racerFixture({ peerMap: { node1: UNREACHABLE, node3: peer({ walPosition: 900 }) } }));
    assert.deepEqual(acts(d), ['take_leadership']);
    assert.equal(d.summary, 'taking leadership: leader key was free and I had the highest WAL position');
    assert.equal(d.role, 'primary');
  });

  it('ties are fine: both race, etcd picks one', () => {
    assert.deepEqual(acts(decide(racerFixture({ peerMap: { node3: peer({ walPosition: 1000 }) } }))), [
      'take_leadership',
    ]);
  });

  it('a peer with a higher WAL position wins: I wait and say who', () => {
    const d = decide(racerFixture({ peerMap: { node3: peer({ walPosition: 1001 }) } }));
    assert.deepEqual(acts(d), []);
    assert.match(d.summary, /node3 has a higher WAL position/);
  });

  it('unreachable peers are ignored', () => {
    assert.deepEqual(acts(decide(racerFixture({ peerMap: { node1: UNREACHABLE, node3: UNREACHABLE } }))), [
      'take_leadership',
    ]);
  });

  it('a peer tagged nofailover that is ahead is no rival', () => {
    assert.deepEqual(
      acts(decide(racerFixture({ peerMap: { node3: peer({ walPosition: 5000, nofailover: true }) } }))),
      ['take_leadership'],
    );
  });

  it('a peer still running as primary stops the race', () => {
    const d = decide(racerFixture({ peerMap: { node1: peer({ role: 'primary', walPosition: 10 }), node3: peer() } }));
    assert.deepEqual(acts(d), []);
    assert.match(d.summary, /node1 is still running as primary/);
  });

  it('tagged nofailover: never races', () => {
    const d = decide(racerFixture({ tags: { nofailover: true } }));
    assert.deepEqual(acts(d), []);
    assert.match(d.summary, /nofailover/);
  });

  it('lagging more than maximum_lag_on_failover: out', () => {
    const d = decide(racerFixture({ cluster: { leader: undefined, status: status(1000 + MiB + 1) } }));
    assert.deepEqual(acts(d), []);
    assert.match(d.summary, /maximum_lag_on_failover/);
  });

  it('lagging exactly maximum_lag_on_failover: still in', () => {
    assert.deepEqual(acts(decide(racerFixture({ cluster: { leader: undefined, status: status(1000 + MiB) } }))), [
      'take_leadership',
    ]);
  });

  it('no /status: the lag check is skipped', () => {
    assert.deepEqual(
      acts(
        decide(
          racerFixture({ pg: { walPosition: 1 }, peerMap: {}, cluster: { leader: undefined, status: undefined } }),
        ),
      ),
      ['take_leadership'],
    );
  });

  it('an unknown WAL position cannot race', () => {
    assert.deepEqual(acts(decide(racerFixture({ pg: { walPosition: null } }))), []);
  });

  it('within ttl after releasing the key on purpose: backs off', () => {
    const d = decide(racerFixture({ releasedLockAt: NOW - 29_000 }));
    assert.deepEqual(acts(d), []);
    assert.match(d.summary, /released the leader key/);
  });

  it('after ttl the backoff is over', () => {
    assert.deepEqual(acts(decide(racerFixture({ releasedLockAt: NOW - 30_000 }))), ['take_leadership']);
  });

  it('paused: nobody takes leadership', () => {
    const d = decide(racerFixture({ settings: { paused: true } }));
    assert.deepEqual(acts(d), []);
    assert.match(d.summary, /nobody takes leadership/);
  });
});

describe('decide: leader key free in synchronous mode', () => {
  const on = { synchronousMode: true };
  const sync = (leader: string, standbys: string[]) => ({ leader, standbys, modRevision: 3 });

  it('a member not in /sync may not race', () => {
    const d = decide(racerFixture({ settings: on, cluster: { leader: undefined, sync: sync('node1', ['node3']) } }));
    assert.deepEqual(acts(d), []);
    assert.match(d.summary, /not listed in \/sync/);
  });

  it('a member in /sync races', () => {
    assert.deepEqual(
      acts(decide(racerFixture({ settings: on, cluster: { leader: undefined, sync: sync('node1', ['node2']) } }))),
      ['take_leadership'],
    );
  });

  it('the former leader named in /sync races', () => {
    assert.deepEqual(
      acts(decide(racerFixture({ settings: on, cluster: { leader: undefined, sync: sync('node2', ['node3']) } }))),
      ['take_leadership'],
    );
  });

  it('a former leader that is ahead does not block a synchronous standby', () => {
    const d = decide(
      racerFixture({
        settings: on,
        cluster: { leader: undefined, sync: sync('node1', ['node2']) },
        peerMap: { node1: peer({ walPosition: 2000 }) },
      }),
    );
    assert.deepEqual(acts(d), ['take_leadership']);
  });

  it('an asynchronous peer that is ahead does not block a synchronous standby', () => {
    const d = decide(
      racerFixture({
        settings: on,
        cluster: { leader: undefined, sync: sync('node1', ['node2']) },
        peerMap: { node3: peer({ walPosition: 2000 }) },
      }),
    );
    assert.deepEqual(acts(d), ['take_leadership']);
  });

  it('without sync mode the same async peer wins', () => {
    const d = decide(
      racerFixture({
        cluster: { leader: undefined, sync: sync('node1', ['node2']) },
        peerMap: { node3: peer({ walPosition: 2000 }) },
      }),
    );
    assert.deepEqual(acts(d), []);
  });

  it('an empty /sync restricts nobody', () => {
    assert.deepEqual(acts(decide(racerFixture({ settings: on, cluster: { leader: undefined, sync: undefined } }))), [
      'take_leadership',
    ]);
  });
});

describe('decide: leader key free with a /failover request', () => {
  const failover = (f: { leader?: string; member?: string; scheduledAt?: string }) => ({ modRevision: 9, ...f });

  it('the named candidate races even when others are ahead', () => {
    const d = decide(
      racerFixture({
        cluster: { leader: undefined, failover: failover({ leader: 'node1', member: 'node2' }) },
        peerMap: { node3: peer({ walPosition: 9000 }) },
      }),
    );
    assert.deepEqual(acts(d), ['take_leadership']);
    assert.match(d.summary, /switchover to node2 was requested/);
  });

  it('others wait for a healthy candidate', () => {
    const d = decide(
      racerFixture({ cluster: { leader: undefined, failover: failover({ leader: 'node1', member: 'node3' }) } }),
    );
    assert.deepEqual(acts(d), []);
    assert.match(d.summary, /waiting for switchover candidate node3/);
  });

  it('an unreachable candidate: ordinary race without the lag limit', () => {
    const d = decide(
      racerFixture({
        cluster: {
          leader: undefined,
          failover: failover({ leader: 'node1', member: 'node3' }),
          status: status(100 * MiB),
        },
        peerMap: { node3: UNREACHABLE },
      }),
    );
    assert.deepEqual(acts(d), ['take_leadership']);
  });

  it('the former leader named in the request is no rival', () => {
    const d = decide(
      racerFixture({
        cluster: { leader: undefined, failover: failover({ leader: 'node1' }) },
        peerMap: { node1: peer({ walPosition: 5000 }) },
      }),
    );
    assert.deepEqual(acts(d), ['take_leadership']);
  });

  it('a request scheduled for later does not change the race', () => {
    const later = new Date(NOW + 3_600_000).toISOString();
    const d = decide(
      racerFixture({
        cluster: { leader: undefined, failover: failover({ leader: 'node1', member: 'node3', scheduledAt: later }) },
      }),
    );
    assert.deepEqual(acts(d), ['take_leadership']);
  });

  it('a candidate request does not override nofailover', () => {
    const d = decide(
      racerFixture({
        tags: { nofailover: true },
        cluster: { leader: undefined, failover: failover({ member: 'node2' }) },
      }),
    );
    assert.deepEqual(acts(d), []);
  });
});

describe('decide: leader key free while I run as primary', () => {
  const history: HistoryEntry[] = [
    [1, 500, 'failover'],
    [2, 900, 'failover'],
  ];

  it('on the latest timeline: takes the key back', () => {
    const d = decide(racerFixture({ pg: PG_PRIMARY }));
    assert.deepEqual(acts(d), ['take_leadership']);
    assert.match(d.summary, /running primary on the latest timeline/);
  });

  it('on an older timeline: demotes, someone was promoted meanwhile', () => {
    const d = decide(racerFixture({ pg: { ...PG_PRIMARY, timeline: 2 }, cluster: { leader: undefined, history } }));
    assert.deepEqual(acts(d), ['demote:immediate']);
    assert.match(d.summary, /my timeline 2 is behind the cluster's 3/);
  });

  it('a member record on a newer timeline also counts', () => {
    const ms = members(member('node1', { timeline: 2 }), member('node2', { role: 'primary' }));
    assert.deepEqual(acts(decide(racerFixture({ pg: PG_PRIMARY, cluster: { leader: undefined, members: ms } }))), [
      'demote:immediate',
    ]);
  });

  it('tagged nofailover: demotes', () => {
    assert.deepEqual(acts(decide(racerFixture({ pg: PG_PRIMARY, tags: { nofailover: true } }))), ['demote:immediate']);
  });

  it('paused: keeps running, does not take the key', () => {
    assert.deepEqual(acts(decide(racerFixture({ pg: PG_PRIMARY, settings: { paused: true } }))), []);
  });
});

describe('decide: a member that just released the key', () => {
  it('does not race within ttl, unless it is the named switchover candidate', () => {
    const recently = { releasedLockAt: NOW - 2000 };
    assert.deepEqual(acts(decide(racerFixture(recently))), []);
    const named = decide(
      racerFixture({ ...recently, cluster: { leader: undefined, failover: { member: 'node2', modRevision: 1 } } }),
    );
    assert.deepEqual(acts(named), ['take_leadership']);
  });
});
