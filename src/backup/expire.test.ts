import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BackupRecord } from './catalog.js';
import { planExpiry } from './expire.js';

function rec(id: string, day: number, over: Partial<BackupRecord> = {}): BackupRecord {
  const t = new Date(Date.UTC(2026, 11, day, 1, 0, 0));
  return {
    id,
    type: 'full',
    parent: null,
    member: 'n2',
    timeline: 1,
    start_lsn: '0/0',
    stop_lsn: '0/0',
    start_time: t.toISOString(),
    stop_time: new Date(t.getTime() + 60_000).toISOString(),
    bytes: 0,
    repo_bytes: 0,
    duration_s: 60,
    status: 'ok',
    system_identifier: '1',
    pg_version: 150000,
    compression: 'lz4',
    wal_start: `00000001000000000000000${day}`,
    wal_stop: null,
    files: [],
    ...over,
  };
}

const records = [
  rec('F1', 1),
  rec('F1_I2', 2, { type: 'incr', parent: 'F1' }),
  rec('F3', 3),
  rec('X4', 4, { status: 'failed' }),
  rec('F5', 5),
  rec('F5_I6', 6, { type: 'incr', parent: 'F5' }),
  rec('R7', 7, { status: 'running' }),
];

test('full: N keeps the newest N full backups and everything after (a failed record after them too)', () => {
  const p = planExpiry(records, { full: 2 }, new Date('2026-12-08T00:00:00Z'));
  assert.deepEqual(p.remove.sort(), ['F1', 'F1_I2']);
  assert.deepEqual(p.keep.sort(), ['F3', 'F5', 'F5_I6', 'R7', 'X4']);
  assert.equal(p.walBefore, '0000000000000003');
});

test('window: keeps the full backup a restore to the window start needs, and everything after', () => {
  // Window start = Dec 6 00:00 → newest full finished before it is F5 (Dec 5): F1, F1_I2, F3 go.
  const p = planExpiry(records, { full: 99, window: '2d' }, new Date('2026-12-08T00:00:00Z'));
  assert.deepEqual(p.remove.sort(), ['F1', 'F1_I2', 'F3', 'X4']);
  assert.equal(p.walBefore, '0000000000000005');
  // A window reaching before every backup keeps them all.
  const all = planExpiry(records, { full: 1, window: '30d' }, new Date('2026-12-08T00:00:00Z'));
  assert.deepEqual(all.remove, []);
});

test('nothing usable: nothing removed, no WAL removed', () => {
  const p = planExpiry([rec('X', 1, { status: 'failed' })], { full: 1 }, new Date('2026-12-08T00:00:00Z'));
  assert.deepEqual(p.remove, []);
  assert.equal(p.walBefore, null);
});
