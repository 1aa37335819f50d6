import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  exitCode,
  healVerdict,
  measureRound,
  median,
  memberHealth,
  rtoMs,
  summarize,
  type Ack,
  type MemberHealth,
  type RoundResult,
} from './measure.js';

/** Acks every 20 ms from `from` to `to` (exclusive), ids from `id`. */
function acks(id: number, from: number, to: number): Ack[] {
  const out: Ack[] = [];
  for (let t = from; t < to; t += 20) out.push({ id: id++, at: t });
  return out;
}

describe('rtoMs', () => {
  it('is the longest gap that ends after the fault', () => {
    // a 300 ms hiccup before the fault does not count; the 4 s gap across the fault does
    const timeline = [...acks(1, 0, 1000), { id: 60, at: 1300 }, ...acks(61, 1320, 2000), ...acks(200, 6000, 6100)];
    assert.equal(rtoMs(timeline, 1990), 6000 - 1980);
  });

  it('counts a later, longer gap after the fault too', () => {
    const timeline = [...acks(1, 0, 2000), ...acks(200, 2500, 2600), ...acks(300, 9000, 9100)];
    assert.equal(rtoMs(timeline, 2000), 9000 - 2580);
  });

  it('is null when nothing was acknowledged after the fault', () => {
    assert.equal(rtoMs(acks(1, 0, 2000), 2000), null);
    assert.equal(rtoMs([], 5), null);
  });

  it('measures from the fault when the first ack of all came after it', () => {
    assert.equal(rtoMs([{ id: 1, at: 700 }], 200), 500);
  });
});

describe('measureRound', () => {
  it('counts acknowledged ids the leader does not have, and the window back to the last kept one', () => {
    const timeline = acks(1, 0, 2000); // ids 1..100, at 0..1980
    const present = new Set(timeline.map((a) => a.id).filter((id) => id < 96)); // 96..100 lost (1900..1980)
    const m = measureRound(
      [...timeline, { id: 150, at: 5000 }, { id: 151, at: 5020 }],
      2000,
      new Set([...present, 150, 151]),
    );
    assert.equal(m.lost, 5);
    assert.deepEqual(m.lostIds, [96, 97, 98, 99, 100]);
    assert.equal(m.rpoMs, 2000 - 1880); // id 95 (at 1880) is the last the leader kept
    assert.equal(m.acked, 102);
    assert.equal(m.rtoMs, 5000 - 1980);
  });

  it('a lost ack after the fault stretches the window to it; one lost write is not a 0 ms window', () => {
    const m = measureRound(
      [
        { id: 1, at: 900 },
        { id: 2, at: 1500 },
      ],
      1000,
      new Set(),
    );
    assert.equal(m.rpoMs, 1500 - 900);
    // acknowledged by the old leader while the kill was on its way: lost, and the writes since id 1 gone
    const one = measureRound(
      [
        { id: 1, at: 980 },
        { id: 2, at: 1000 },
        { id: 3, at: 1020 },
      ],
      990,
      new Set([1]),
    );
    assert.deepEqual([one.lost, one.rpoMs], [2, 1020 - 980]);
  });

  it('nothing lost: RPO 0', () => {
    const t = acks(1, 0, 100);
    const m = measureRound(t, 50, new Set(t.map((a) => a.id)));
    assert.deepEqual([m.lost, m.rpoMs, m.lostIds], [0, 0, []]);
  });
});

const primary = (streaming: string[]): MemberHealth => ({
  state: 'running',
  role: 'primary',
  replicationState: null,
  streaming,
});
const replica = (rs = 'streaming', state = 'running'): MemberHealth => ({
  state,
  role: 'replica',
  replicationState: rs,
  streaming: [],
});

describe('healVerdict', () => {
  const members = ['node1', 'node2', 'node3'];

  it('healed: one running primary, every other member streaming from it', () => {
    const h = new Map([
      ['node1', replica()],
      ['node2', primary(['node1', 'node3'])],
      ['node3', replica()],
    ]);
    assert.deepEqual(healVerdict(members, 'node2', h), { healed: true, why: '' });
  });

  it('names what is missing', () => {
    const base = (): Map<string, MemberHealth | null> =>
      new Map([
        ['node1', replica()],
        ['node2', primary(['node1', 'node3'])],
        ['node3', replica()],
      ]);
    assert.match(healVerdict(members, undefined, base()).why, /no member holds the leader key/);
    const down = base().set('node1', null);
    assert.match(healVerdict(members, 'node2', down).why, /member node1 does not answer/);
    const promoting = base().set('node2', { ...primary(['node1', 'node3']), role: 'replica', state: 'promoting' });
    assert.match(healVerdict(members, 'node2', promoting).why, /leader node2 is not a running primary/);
    const crashed = base().set('node1', replica('streaming', 'crashed'));
    assert.match(healVerdict(members, 'node2', crashed).why, /node1 is not a running replica/);
    const archive = base().set('node3', replica('in archive recovery'));
    assert.match(healVerdict(members, 'node2', archive).why, /node3 is not streaming from node2/);
    const notListed = base().set('node2', primary(['node3']));
    assert.match(healVerdict(members, 'node2', notListed).why, /node1 is not streaming from node2/);
    assert.equal(healVerdict(members, 'node2', base()).healed, true);
  });
});

describe('memberHealth', () => {
  it('reads /patroni: role master as primary, the streaming standbys by application_name', () => {
    const h = memberHealth(
      JSON.stringify({
        state: 'running',
        role: 'master',
        replication: [
          { application_name: 'node1', state: 'streaming' },
          { application_name: 'node3', state: 'catchup' },
        ],
      }),
    );
    assert.deepEqual(h, { state: 'running', role: 'primary', replicationState: null, streaming: ['node1'] });
    assert.equal(memberHealth('not json'), null);
    assert.equal(memberHealth('null'), null);
  });
});

const round = (over: Partial<RoundResult>): RoundResult => ({
  round: 1,
  scenario: 'kill-leader',
  oldLeader: 'node1',
  newLeader: 'node2',
  healed: true,
  healMs: 20_000,
  note: '',
  rtoMs: 10_000,
  acked: 500,
  lost: 0,
  rpoMs: 0,
  lostIds: [],
  ...over,
});

describe('summary and exit code', () => {
  it('median, max, lost and healed count', () => {
    const s = summarize([
      round({ rtoMs: 3000 }),
      round({ rtoMs: 1000, lost: 2, rpoMs: 40 }),
      round({ rtoMs: null, healed: false }),
    ]);
    assert.deepEqual(s, { rounds: 3, healed: 2, medianRtoMs: 2000, maxRtoMs: 3000, lost: 2, maxRpoMs: 40 });
    assert.equal(median([5, 1, 3]), 3);
    assert.equal(median([]), null);
  });

  it('0 only when every round healed; lost writes fail only under synchronous_mode', () => {
    assert.equal(exitCode([round({}), round({ lost: 3 })], false), 0);
    assert.equal(exitCode([round({}), round({ lost: 3 })], true), 1);
    assert.equal(exitCode([round({ healed: false })], false), 1);
    assert.equal(exitCode([round({ rtoMs: null })], false), 1);
    assert.equal(exitCode([], false), 1);
  });
});
