/**
 * When the leader's agent starts a scheduled backup. Pure.
 *
 * Stateless on purpose: a backup of a type is due when the most recent time its schedule names (at or before now)
 * is later than the newest usable backup of that type started. So a leader that just took over, or an agent that
 * was down at 01:00, or a schedule run that failed (a switchover mid-backup) catches up at once — and a cluster with
 * no backup at all takes its first full backup as soon as it has a leader. A failed attempt waits `retryAfterMs`.
 */
import type { BackupRecord, BackupType } from './catalog.js';
import { usable } from './catalog.js';
import type { BackupConfig } from './config.js';
import { parseCron, prevRun } from './cron.js';

export interface ScheduleState {
  /** When the last scheduled attempt failed (ms), per type. */
  readonly failedAt: Partial<Record<BackupType, number>>;
}

export const RETRY_AFTER_MS = 5 * 60_000;

/** The backup type due now (full before diff before incr), or null. */
export function dueBackup(
  schedule: BackupConfig['schedule'],
  records: readonly BackupRecord[],
  now: number,
  state: ScheduleState,
  supported: readonly BackupType[] = ['full'],
): BackupType | null {
  const ok = usable(records);
  const hasFull = ok.some((r) => r.type === 'full');
  for (const type of ['full', 'diff', 'incr'] as const) {
    const cron = schedule[type];
    if (!cron.trim() || !supported.includes(type)) continue;
    if (type !== 'full' && !hasFull) continue; // the full one comes first
    const failed = state.failedAt[type];
    if (failed !== undefined && now - failed < RETRY_AFTER_MS) continue;
    const last = prevRun(parseCron(cron), new Date(now));
    if (!last) continue;
    // A full backup also satisfies a due incr/diff (it is newer than everything they would depend on).
    const newest = ok
      .filter((r) => r.type === type || r.type === 'full')
      .reduce((m, r) => Math.max(m, Date.parse(r.start_time)), 0);
    if (type === 'full' && !hasFull) return 'full';
    if (last.getTime() > newest) return type;
  }
  return null;
}
