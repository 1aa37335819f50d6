import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, parseSince } from './since.js';

const NOW = Date.parse('2026-12-03T09:00:00Z');

describe('since', () => {
  it('durations back from now, combined units', () => {
    assert.equal(parseSince('90s', NOW), NOW - 90_000);
    assert.equal(parseSince('15m', NOW), NOW - 900_000);
    assert.equal(parseSince('1h', NOW), NOW - 3_600_000);
    assert.equal(parseSince('1h30m', NOW), NOW - 5_400_000);
    assert.equal(parseSince('2d', NOW), NOW - 172_800_000);
    assert.equal(parseDuration('250ms'), 250);
  });

  it('epoch milliseconds and ISO-8601 times', () => {
    assert.equal(parseSince('1796288400000', NOW), 1796288400000);
    assert.equal(parseSince('2026-12-03T08:30:00Z', NOW), NOW - 1_800_000);
    assert.equal(parseSince('2026-12-03T09:30:00+01:00', NOW), NOW - 1_800_000);
    assert.equal(parseSince('2026-12-03', NOW), Date.parse('2026-12-03'));
  });

  it('anything else is refused', () => {
    for (const bad of ['', 'yesterday', '1 hour', '15x', 'May 5', '-5m', 'h'])
      assert.equal(parseSince(bad, NOW), null, bad);
  });
});
