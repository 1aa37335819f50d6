import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BackupRecord } from './catalog.js';
import { dueBackup, RETRY_AFTER_MS } from './schedule.js';

const weekly = { full: '0 1 * * 0', incr: '0 1 * * 1-6', diff: '' };
const at = (s: string) => Date.parse(s);
const full = (start: string): BackupRecord =>
  ({ id: start, type: 'full', parent: null, status: 'ok', start_time: start, stop_time: start }) as BackupRecord;

test('no backup at all: a full backup is due at once', () => {
  assert.equal(dueBackup(weekly, [], at('2026-12-03T05:00:00Z'), { failedAt: {} }), 'full');
});

test('a full backup newer than the last scheduled time: nothing due; after the next one: due', () => {
  const recs = [full('2026-11-29T01:00:05.000Z')];
  assert.equal(dueBackup(weekly, recs, at('2026-12-03T05:00:00Z'), { failedAt: {} }), null);
  assert.equal(dueBackup(weekly, recs, at('2026-12-06T01:00:00Z'), { failedAt: {} }), 'full');
});

test('incremental schedules wait until incremental backups exist (only full is supported)', () => {
  const recs = [full('2026-11-29T01:00:05.000Z')];
  assert.equal(dueBackup(weekly, recs, at('2026-12-03T05:00:00Z'), { failedAt: {} }, ['full']), null);
  assert.equal(dueBackup(weekly, recs, at('2026-12-03T05:00:00Z'), { failedAt: {} }, ['full', 'incr']), 'incr');
});

test('a failed attempt is retried after the pause, not before', () => {
  const now = at('2026-12-03T05:00:00Z');
  assert.equal(dueBackup(weekly, [], now, { failedAt: { full: now - 1000 } }), null);
  assert.equal(dueBackup(weekly, [], now, { failedAt: { full: now - RETRY_AFTER_MS } }), 'full');
});

test('an empty schedule never runs, even without backups', () => {
  assert.equal(dueBackup({ full: '', incr: '', diff: '' }, [], at('2026-12-03T05:00:00Z'), { failedAt: {} }), null);
});
