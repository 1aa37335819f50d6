import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LagHistory } from './lag-history.js';

const lags = (o: Record<string, number | null>) => new Map(Object.entries(o));

describe('LagHistory', () => {
  it('keeps one point per member per step, in order, with null as a gap', () => {
    const h = new LagHistory({ windowMs: 60_000, stepMs: 5_000 });
    assert.equal(h.record(1_000, lags({ node2: 0, node3: 10 })), true);
    assert.equal(h.record(2_000, lags({ node2: 99 })), false, 'closer than half a step: ignored');
    assert.equal(h.record(6_000, lags({ node2: 5, node3: null })), true);
    assert.deepEqual(h.series(6_000), {
      node2: [
        [1_000, 0],
        [6_000, 5],
      ],
      node3: [
        [1_000, 10],
        [6_000, null],
      ],
    });
  });

  it('forgets points older than the window and members with none left', () => {
    const h = new LagHistory({ windowMs: 60_000, stepMs: 5_000 });
    h.record(0, lags({ node1: 1, node2: 2 }));
    h.record(30_000, lags({ node1: 3 }));
    assert.deepEqual(h.series(65_000), { node1: [[30_000, 3]] });
    assert.deepEqual(h.series(100_000), {});
  });

  it('holds at most window/step + 1 points per member however often it is fed', () => {
    const h = new LagHistory({ windowMs: 60_000, stepMs: 5_000 });
    assert.equal(h.maxPoints, 13);
    // Fed every 2.5 s (the minimum accepted) for ten minutes: the window alone would keep 25 points.
    for (let t = 0; t <= 600_000; t += 2_500) h.record(t, lags({ node2: t }));
    const s = h.series(600_000)['node2'] ?? [];
    assert.equal(s.length, 13);
    assert.deepEqual(s.at(-1), [600_000, 600_000]);
    assert.ok(s.every(([t]) => t >= 540_000));
  });

  it('keeps at most maxMembers series; the one seen least recently makes room', () => {
    const h = new LagHistory({ windowMs: 60_000, stepMs: 5_000, maxMembers: 2 });
    h.record(0, lags({ a: 1, b: 1 }));
    h.record(5_000, lags({ b: 2 }));
    h.record(10_000, lags({ c: 3 }));
    assert.deepEqual(Object.keys(h.series(10_000)), ['b', 'c']);
  });

  it('returns copies: a caller cannot change the history', () => {
    const h = new LagHistory({ windowMs: 60_000, stepMs: 5_000 });
    h.record(0, lags({ a: 1 }));
    h.series(0)['a']?.push([1, 1]);
    assert.equal(h.series(0)['a']?.length, 1);
  });
});
