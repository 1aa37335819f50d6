/**
 * A site leader's clock against the local one, by one round trip of `SELECT clock_timestamp()`: the server read its
 * clock somewhere between sending and receiving, so the midpoint is the best local estimate of that instant and
 * the error is at most half the round trip (NTP's reasoning with one sample). Last-update-wins compares commit
 * timestamps from different hosts; an offset between two sites is the window in which the older write can win.
 */
import type { Sql } from './engine.js';

export interface ClockOffset {
  /** Server clock minus local clock at the midpoint, ms (positive: the site's clock is ahead). */
  readonly offset_ms: number;
  /** The round trip, ms: the offset is known to within half of it. */
  readonly rtt_ms: number;
}

/** Pure: the offset from the local send time `t0`, the server's reading `server` and the local receive time `t1`. */
export function clockOffset(t0: number, server: number, t1: number): ClockOffset {
  const rtt = Math.max(0, t1 - t0);
  return { offset_ms: Math.round((server - (t0 + rtt / 2)) * 10) / 10, rtt_ms: Math.round(rtt * 10) / 10 };
}

/** Measures `db`'s server clock against `now` (epoch ms, fractional allowed); the best of `samples` round trips. */
export async function measureOffset(db: Sql, now: () => number, samples = 3): Promise<ClockOffset> {
  let best: ClockOffset | null = null;
  for (let i = 0; i < samples; i++) {
    const t0 = now();
    const r = await db.query<{ us: string }>(
      `SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint::text AS us`,
    );
    const t1 = now();
    const o = clockOffset(t0, Number(r[0]?.us) / 1000, t1);
    if (best === null || o.rtt_ms < best.rtt_ms) best = o;
  }
  return best as ClockOffset;
}
