import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { lagSeconds, parsePgTimestamp } from './lag.js';
import { lastFailover } from './last-failover.js';

const NOW = Date.parse('2026-12-03T08:30:05.500Z');
const replica = { inRecovery: true, receivedLsn: 200, replayedLsn: 100, replayTimestamp: '2026-12-03 08:30:01.25+00' };

describe('lagSeconds (pg_replication_lag_seconds)', () => {
  it('0 when everything received is replayed, however old the last transaction', () => {
    assert.equal(lagSeconds({ ...replica, replayedLsn: 200, replayTimestamp: '2020-01-01 00:00:00+00' }, NOW), 0);
  });

  it('else the age of the last replayed transaction', () => {
    assert.equal(lagSeconds(replica, NOW), 4.25);
    assert.equal(lagSeconds({ ...replica, receivedLsn: null }, NOW), 4.25, 'archive recovery: no receiver');
    assert.equal(lagSeconds({ ...replica, replayTimestamp: '2026-12-03 09:30:01.25+01' }, NOW), 4.25);
  });

  it('null on a primary or before any transaction was replayed; never negative', () => {
    assert.equal(lagSeconds({ ...replica, inRecovery: false }, NOW), null);
    assert.equal(lagSeconds({ ...replica, replayTimestamp: null }, NOW), null);
    assert.equal(lagSeconds({ ...replica, replayTimestamp: '2026-12-03 08:31:00+00' }, NOW), 0);
    assert.ok(Number.isNaN(parsePgTimestamp('yesterday')));
  });
});

describe('lastFailover (the history key)', () => {
  it('the newest row: new timeline, new leader, and the one before from the previous row', () => {
    const history = [
      [1, 100, 'no recovery target specified', '2026-12-03T08:00:00Z', 'node2'],
      [2, 200, 'no recovery target specified', '2026-12-03T08:10:00Z', 'node3'],
    ] as const;
    assert.deepEqual(lastFailover({ history, leader: undefined }), {
      time: '2026-12-03T08:10:00Z',
      from: 'node2',
      to: 'node3',
      timeline: 3,
      reason: 'no recovery target specified',
    });
  });

  it('the first change after bootstrap does not know who led before; none at all is null', () => {
    const first = lastFailover({ history: [[1, 100, 'r', '2026-12-03T08:00:00Z', 'node2']], leader: undefined });
    assert.equal(first?.from, null);
    assert.equal(first?.to, 'node2');
    assert.equal(lastFailover({ history: [], leader: undefined }), null);
  });
});
