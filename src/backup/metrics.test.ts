/** The backup schedule metric: the period the current moment falls in, per type. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { backupMetrics, scheduleIntervalSeconds } from './metrics.js';

const DAY = 86_400;

describe('scheduleIntervalSeconds', () => {
  it('is the gap between the run before now and the next one; 0 when not scheduled', () => {
    const wed = Date.parse('2026-12-02T12:00:00Z'); // a Wednesday
    assert.equal(scheduleIntervalSeconds('0 1 * * *', wed), DAY);
    assert.equal(scheduleIntervalSeconds('0 1 * * 0', wed), 7 * DAY);
    assert.equal(scheduleIntervalSeconds('*/15 * * * *', wed), 900);
    assert.equal(scheduleIntervalSeconds('', wed), 0);
    // Mon-Sat at 01:00: on a Sunday the period runs from Saturday to Monday.
    assert.equal(scheduleIntervalSeconds('0 1 * * 1-6', Date.parse('2026-12-06T12:00:00Z')), 2 * DAY);
  });
});

describe('backupMetrics', () => {
  it('exports the schedule interval per type beside the last success', () => {
    const now = Date.parse('2026-12-02T12:00:00Z');
    const lines = backupMetrics(
      {
        repo: '/r',
        schedule: { full: '0 1 * * 0', incr: '0 1 * * 1-6', diff: '' },
        archiver: null,
        running: null,
        report: null,
        lastVerify: null,
        lastBackup: null,
      },
      'scope="s",name="n1"',
      now,
    );
    assert.ok(lines.includes('# TYPE pgkeel_backup_schedule_interval_seconds gauge'));
    assert.ok(lines.includes(`pgkeel_backup_schedule_interval_seconds{scope="s",name="n1",type="full"} ${7 * DAY}`));
    assert.ok(lines.includes(`pgkeel_backup_schedule_interval_seconds{scope="s",name="n1",type="incr"} ${DAY}`));
    assert.ok(lines.includes('pgkeel_backup_schedule_interval_seconds{scope="s",name="n1",type="diff"} 0'));
  });
});
