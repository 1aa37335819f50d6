import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clockProblems, clockText, offsetFrom } from './clock.js';

describe('clock offsets', () => {
  it('takes the midpoint of the sample with the smallest round trip', () => {
    const o = offsetFrom('s1', [
      { sentMs: 1000, serverMs: 1400, receivedMs: 1100 },
      { sentMs: 2000, serverMs: 2260, receivedMs: 2020 },
      { sentMs: 3000, serverMs: 3300, receivedMs: 3050 },
    ]);
    assert.deepEqual(o, { site: 's1', offsetMs: 250, rttMs: 20 });
  });

  it('refuses no samples', () => {
    assert.throws(() => offsetFrom('s1', []), /no clock samples from site s1/);
  });

  it('flags the two sites furthest apart when beyond the bound, and only then', () => {
    const offsets = [
      { site: 'a', offsetMs: -300, rttMs: 2 },
      { site: 'b', offsetMs: 10, rttMs: 4 },
      { site: 'c', offsetMs: 250, rttMs: 1 },
    ];
    assert.deepEqual(clockProblems(offsets, 550), []);
    const p = clockProblems(offsets, 500);
    assert.equal(p.length, 1);
    assert.equal(p[0]?.code, 'MESH_CLOCK_SKEW');
    assert.match(
      p[0]?.message ?? '',
      /sites c and a are 550 ms apart \(bound 500 ms; a -300\.0 ms ±1\.0, b \+10\.0 ms ±2\.0, c \+250\.0 ms ±0\.5\)/,
    );
    assert.deepEqual(clockProblems([offsets[0] as (typeof offsets)[0]], 0), []);
  });

  it('prints every site with its offset and uncertainty', () => {
    assert.equal(clockText([{ site: 'x', offsetMs: 1.25, rttMs: 3 }]), 'x +1.3 ms ±1.5');
  });
});
