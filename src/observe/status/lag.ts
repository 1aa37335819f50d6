/**
 * Replication lag in seconds on a replica, as postgres_exporter's `pg_replication_lag_seconds` computes it:
 * 0 when everything received is replayed, else the age of the last replayed transaction
 * (now − pg_last_xact_replay_timestamp()). The agent publishes it in its member record as `lag_seconds`.
 */
import type { PgStatus } from '../../postgres/local-instance.js';

/** PostgreSQL's `timestamptz::text` ("2026-12-03 08:30:01.123456+00") as epoch ms; NaN when unreadable. */
export function parsePgTimestamp(text: string): number {
  return Date.parse(
    text
      .trim()
      .replace(' ', 'T')
      .replace(/([+-]\d{2})$/, '$1:00'),
  );
}

/** Seconds (millisecond precision), or null on a primary or while no transaction has been replayed yet. */
export function lagSeconds(
  st: Pick<PgStatus, 'inRecovery' | 'receivedLsn' | 'replayedLsn' | 'replayTimestamp'>,
  now: number,
): number | null {
  if (!st.inRecovery) return null;
  if (st.receivedLsn !== null && st.receivedLsn === st.replayedLsn) return 0;
  if (st.replayTimestamp === null) return null;
  const at = parsePgTimestamp(st.replayTimestamp);
  if (Number.isNaN(at)) return null;
  return Math.round(Math.max(0, now - at)) / 1000;
}
