import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { stamp, type ClusterEvent, type EventDraft } from './event.js';
import { eventsText, mergeEvents, writesDown, writesDownText } from './merge.js';

const T0 = Date.parse('2026-12-03T03:00:00Z');

function ev(s: number, member: string, kind: EventDraft['kind'], o: Partial<EventDraft> = {}): ClusterEvent {
  return stamp({
    at: T0 + s * 1000,
    member,
    timeline: 1,
    kind,
    reason: `${kind} on ${member}`,
    ...o,
    details: { observer: member, ...o.details },
  });
}

describe('merging every member’s events', () => {
  it('one time line, oldest first, exact duplicates dropped', () => {
    const a = [ev(1, 'node1', 'restart'), ev(5, 'node1', 'start')];
    const b = [ev(3, 'node2', 'clone')];
    const m = mergeEvents([a, b, a]);
    assert.deepEqual(
      m.map((e) => [e.at - T0, e.kind]),
      [
        [1000, 'restart'],
        [3000, 'clone'],
        [5000, 'start'],
      ],
    );
  });

  it('the same happening seen by several agents is kept once, as first seen', () => {
    const lostBy = (s: number, observer: string) =>
      ev(s, 'node1', 'leader_lost', {
        from: 'node1',
        reason: `seen by ${observer}`,
        details: { observer, scope: 'cluster' },
      });
    const m = mergeEvents([[lostBy(12, 'node2')], [lostBy(11, 'node3')], [lostBy(200, 'node3')]]);
    assert.deepEqual(
      m.map((e) => [e.at - T0, e.reason]),
      [
        [11_000, 'seen by node3'],
        [200_000, 'seen by node3'],
      ],
    );
  });

  it('the same kind from one observer twice is two happenings', () => {
    const m = mergeEvents([[ev(1, 'node1', 'restart'), ev(2, 'node1', 'restart', { reason: 'again' })]]);
    assert.equal(m.length, 2);
  });

  it('writes down: from the leader lost to the end of the promote', () => {
    const events = mergeEvents([
      [ev(0, 'node1', 'crash')],
      [
        ev(7.5, 'node1', 'leader_lost', { details: { observer: 'node2', scope: 'cluster' } }),
        ev(8, 'node2', 'promote', { details: { outcome: 'started' } }),
        ev(9.25, 'node2', 'promote', { details: { outcome: 'done' } }),
      ],
    ]);
    const [w] = writesDown(events);
    assert.deepEqual(w, {
      seconds: 9.25,
      downAt: T0,
      downBy: 'crash',
      lostAt: T0 + 7500,
      oldLeader: 'node1',
      promotedAt: T0 + 9250,
      newLeader: 'node2',
    });
    assert.equal(
      writesDownText(w as NonNullable<typeof w>),
      'derived: writes were down for 9.3 s (node1 crashed at 2026-12-03 03:00:00.000, leader lost at 2026-12-03 03:00:07.500 on node1, node2 promoted at 2026-12-03 03:00:09.250)',
    );
    const text = eventsText(events);
    assert.match(text, /^Time \(UTC\)\s+Member\s+TL\s+Kind\s+Reason/);
    assert.match(text, /node2\s+1\s+promote done\s+promote on node2/);
    assert.match(text, /derived: writes were down for 9\.3 s/);
  });

  it('a switchover counts from the demote; without a lead-up, from the lost key', () => {
    const switchover = [
      ev(0, 'node1', 'demote', { details: { outcome: 'started' } }),
      ev(0.5, 'node1', 'leader_lost'),
      ev(0.6, 'node2', 'promote', { details: { outcome: 'started' } }),
    ];
    assert.deepEqual(
      writesDown(switchover).map((w) => [w.seconds, w.downBy]),
      [[0.6, 'demote']],
    );
    assert.match(
      writesDownText(writesDown(switchover)[0] as never),
      /\(node1 began to demote at 2026-12-03 03:00:00\.000, leader lost/,
    );
    const late = [ev(0, 'node1', 'crash'), ...switchover.slice(1).map((e) => ({ ...e, at: e.at + 120_000 }))];
    assert.deepEqual(
      writesDown(late).map((w) => [w.downBy, w.seconds]),
      [['leader_lost', 0.1]],
    );
  });

  it('a leader_lost in the same millisecond as the promote counts, although it sorts after it', () => {
    const tie = mergeEvents([
      [ev(0, 'node3', 'demote', { details: { outcome: 'started' } }), ev(0.2, 'node3', 'leader_lost')],
      [ev(0.2, 'node1', 'promote', { details: { outcome: 'started' } })],
    ]);
    assert.deepEqual(
      tie.map((e) => `${e.member} ${e.kind}`),
      ['node3 demote', 'node1 promote', 'node3 leader_lost'],
    );
    assert.deepEqual(
      writesDown(tie).map((w) => [w.oldLeader, w.newLeader, w.downBy]),
      [['node3', 'node1', 'demote']],
    );
    assert.equal(writesDown([...tie, ev(5, 'node2', 'promote', { details: { outcome: 'started' } })]).length, 1);
  });

  it('no story without a promote on another member', () => {
    assert.deepEqual(
      writesDown([ev(1, 'node1', 'leader_lost'), ev(2, 'node1', 'promote', { details: { outcome: 'started' } })]),
      [],
    );
    assert.equal(eventsText([]), 'no events');
  });
});
