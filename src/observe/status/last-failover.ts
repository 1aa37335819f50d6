/**
 * The last change of leader, from the DCS `history` key: each row is
 * [timeline left, switch LSN, reason, ISO time, new leader] (Patroni's layout). The member that led the timeline
 * left is the previous row's new leader; for the first change (leaving the bootstrap timeline) it is not recorded.
 */
import type { Cluster } from '../../dcs/layout.js';

export interface LastFailover {
  /** ISO-8601, when the new leader wrote the row; null when the row has none. */
  time: string | null;
  /** Who led before; null when the history does not say (the first change after bootstrap). */
  from: string | null;
  to: string | null;
  /** The timeline the new leader started. */
  timeline: number;
  /** PostgreSQL's reason from the timeline history file. */
  reason: string;
}

export function lastFailover(c: Pick<Cluster, 'history' | 'leader'>): LastFailover | null {
  const h = c.history;
  const last = h.at(-1);
  if (!last) return null;
  const [tl, , reason, time, to] = last;
  const before = h.at(-2);
  return {
    time: time ?? null,
    from: before?.[4] ?? null,
    to: to ?? c.leader?.name ?? null,
    timeline: tl + 1,
    reason,
  };
}
