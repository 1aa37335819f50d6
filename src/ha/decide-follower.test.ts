import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decide } from './decide.js';
import { PG_PRIMARY, acts, cluster, fixture, member, members } from '../../test/fakes/observed.js';
import type { HistoryEntry } from '../dcs/layout.js';

/** node1 leads on timeline 2; timeline 1 ended at LSN 500. */
const AFTER_FAILOVER = {
  members: members(
    member('node1', { role: 'primary', timeline: 2 }),
    member('node2'),
    member('node3', { timeline: 2 }),
  ),
  history: [[1, 500, 'no recovery target specified']] as HistoryEntry[],
};

describe('decide: another member holds the leader key', () => {
  it('a streaming replica of the leader does nothing', () => {
    const d = decide(fixture());
    assert.deepEqual(acts(d), []);
    assert.match(d.summary, /following node1/);
    assert.equal(d.role, 'replica');
  });

  it('a replica without upstream starts following the leader', () => {
    const d = decide(fixture({ pg: { following: null, streaming: false } }));
    assert.deepEqual(acts(d), ['follow:node1']);
  });

  it('a replica of a former leader switches to the new one', () => {
    const d = decide(fixture({ pg: { following: 'node3' } }));
    assert.deepEqual(acts(d), ['follow:node1']);
    assert.match(d.summary, /was following node3/);
  });

  it('a running primary demotes immediately', () => {
    const d = decide(fixture({ pg: PG_PRIMARY }));
    assert.deepEqual(acts(d), ['demote:immediate']);
    assert.match(d.summary, /^demoting: node1 holds the leader key/);
    assert.equal(d.role, 'demoted');
  });

  it('paused: a running primary is left alone', () => {
    const d = decide(fixture({ pg: PG_PRIMARY, settings: { paused: true } }));
    assert.deepEqual(acts(d), []);
    assert.equal(d.role, 'primary');
  });

  it('paused: a replica is not repointed', () => {
    assert.deepEqual(acts(decide(fixture({ pg: { following: 'node3' }, settings: { paused: true } }))), []);
  });
});

describe('decide: diverged timelines', () => {
  it('a timeline ahead of the leader’s is rewound', () => {
    const d = decide(fixture({ pg: { timeline: 3, streaming: false }, cluster: AFTER_FAILOVER }));
    assert.deepEqual(acts(d), ['rewind:node1']);
    assert.match(d.summary, /my timeline 3 is ahead of node1's 2/);
  });

  it('WAL past the end of my old timeline is rewound', () => {
    const d = decide(fixture({ pg: { timeline: 1, walPosition: 800, streaming: false }, cluster: AFTER_FAILOVER }));
    assert.deepEqual(acts(d), ['rewind:node1']);
    assert.match(d.summary, /past the end of timeline 1/);
  });

  it('WAL up to the switch point is not diverged', () => {
    for (const walPosition of [400, 500]) {
      const d = decide(fixture({ pg: { timeline: 1, walPosition, streaming: false }, cluster: AFTER_FAILOVER }));
      assert.deepEqual(acts(d), [], `at ${walPosition}`);
    }
  });

  it('a streaming replica is never considered diverged', () => {
    const d = decide(fixture({ pg: { timeline: 1, walPosition: 800, streaming: true }, cluster: AFTER_FAILOVER }));
    assert.deepEqual(acts(d), []);
  });

  it('without use_pg_rewind: re-clone', () => {
    const d = decide(
      fixture({ settings: { usePgRewind: false }, pg: { timeline: 3, streaming: false }, cluster: AFTER_FAILOVER }),
    );
    assert.deepEqual(acts(d), ['reclone:node1']);
    assert.match(d.summary, /use_pg_rewind is off/);
  });

  it('after a failed rewind: re-clone', () => {
    const d = decide(fixture({ rewindFailed: true, pg: { timeline: 3, streaming: false }, cluster: AFTER_FAILOVER }));
    assert.deepEqual(acts(d), ['reclone:node1']);
  });

  it('the leader’s timeline falls back to /history when its record has none', () => {
    const c = cluster({
      ...AFTER_FAILOVER,
      members: members(member('node1', { role: 'primary', timeline: undefined }), member('node2')),
    });
    const d = decide(fixture({ pg: { timeline: 3, streaming: false }, cluster: c }));
    assert.deepEqual(acts(d), ['rewind:node1']);
  });

  it('paused: no rewind', () => {
    assert.deepEqual(
      acts(
        decide(fixture({ settings: { paused: true }, pg: { timeline: 3, streaming: false }, cluster: AFTER_FAILOVER })),
      ),
      [],
    );
  });
});

describe('decide: a provably dead leader (docs/failover.md)', () => {
  it('a replica whose stream broke removes the key of a leader whose ports both refuse connections', () => {
    const d = decide(fixture({ pg: { streaming: false }, leaderDown: true }));
    assert.deepEqual(acts(d), ['remove_dead_leader']);
    const a = d.actions[0];
    assert.ok(a && a.kind === 'remove_dead_leader');
    assert.equal(a.leader, 'node1');
    assert.match(d.summary, /refuse connections/);
  });

  it('paused: the key is left alone', () => {
    assert.deepEqual(
      acts(decide(fixture({ pg: { streaming: false }, leaderDown: true, settings: { paused: true } }))),
      [],
    );
  });

  it('a running primary that sees another leader still demotes first', () => {
    assert.deepEqual(acts(decide(fixture({ pg: PG_PRIMARY, leaderDown: true }))), ['demote:immediate']);
  });

  it('without the proof the replica keeps waiting for the lease', () => {
    assert.deepEqual(acts(decide(fixture({ pg: { streaming: false }, leaderDown: false }))), []);
  });
});
