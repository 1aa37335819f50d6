import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cronProblem, nextRun, parseCron, parseDuration, prevRun } from './cron.js';

const at = (s: string) => new Date(s);

test('nextRun: weekly, daily, steps, ranges and lists', () => {
  const cases: [string, string, string][] = [
    ['0 1 * * 0', '2026-12-03T05:00:00Z', '2026-12-06T01:00:00.000Z'], // next Sunday 01:00
    ['0 1 * * 1-6', '2026-12-03T05:00:00Z', '2026-12-04T01:00:00.000Z'],
    ['0 1 * * 1-6', '2026-12-05T01:00:00Z', '2026-12-07T01:00:00.000Z'], // Saturday 01:00 → Monday
    ['*/15 * * * *', '2026-12-03T05:07:30Z', '2026-12-03T05:15:00.000Z'],
    ['30 2,14 * * *', '2026-12-03T14:30:00Z', '2026-12-04T02:30:00.000Z'],
    ['0 0 1 * *', '2026-12-03T00:00:00Z', '2027-01-01T00:00:00.000Z'],
    ['0 0 29 2 *', '2026-12-03T00:00:00Z', '2028-02-29T00:00:00.000Z'],
    ['0 0 * * 7', '2026-12-03T00:00:00Z', '2026-12-06T00:00:00.000Z'], // 7 = Sunday
    ['0 12 13 * 5', '2026-12-03T00:00:00Z', '2026-12-04T12:00:00.000Z'], // day 13 OR Friday: Friday the 4th
  ];
  for (const [cron, after, want] of cases) assert.equal(nextRun(parseCron(cron), at(after))?.toISOString(), want, cron);
});

test('nextRun is strictly after: a run at the exact minute is not repeated', () => {
  assert.equal(nextRun(parseCron('5 * * * *'), at('2026-12-03T05:05:00Z'))?.toISOString(), '2026-12-03T06:05:00.000Z');
});

test('invalid schedules name the field; empty means none', () => {
  assert.equal(cronProblem(''), undefined);
  assert.equal(cronProblem('0 1 * * 0'), undefined);
  assert.match(cronProblem('0 25 * * *') ?? '', /hour "25" is outside 0-23/);
  assert.match(cronProblem('0 1 * *') ?? '', /five fields/);
  assert.match(cronProblem('x 1 * * *') ?? '', /minute "x"/);
  assert.equal(nextRun(parseCron('0 0 31 2 *'), at('2026-01-01T00:00:00Z')), null);
});

test('durations', () => {
  assert.equal(parseDuration('7d'), 7 * 86400);
  assert.equal(parseDuration('36h'), 36 * 3600);
  assert.equal(parseDuration('2w'), 14 * 86400);
  assert.throws(() => parseDuration('7 days'), /expected a duration/);
});

test('prevRun: the last scheduled minute at or before a time', () => {
  const cases: [string, string, string][] = [
    ['0 1 * * 0', '2026-12-03T05:00:00Z', '2026-11-29T01:00:00.000Z'],
    ['0 1 * * 0', '2026-11-29T01:00:30Z', '2026-11-29T01:00:00.000Z'], // at the minute itself
    ['0 1 * * 1-6', '2026-12-03T00:30:00Z', '2026-12-02T01:00:00.000Z'],
    ['*/15 * * * *', '2026-12-03T05:07:30Z', '2026-12-03T05:00:00.000Z'],
    ['30 2,14 * * *', '2026-12-03T14:29:00Z', '2026-12-03T02:30:00.000Z'],
    ['0 0 1 * *', '2026-12-03T00:00:00Z', '2026-12-01T00:00:00.000Z'],
  ];
  for (const [cron, at, want] of cases) assert.equal(prevRun(parseCron(cron), new Date(at))?.toISOString(), want, cron);
});
