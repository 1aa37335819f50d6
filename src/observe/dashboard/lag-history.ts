/**
 * Per-member replication lag over the last hour, kept in the agent's memory for the dashboard's chart. The
 * dashboard service samples the HA cycle's view every few seconds whether or not a page is open, so a page opened
 * after an incident still shows it.
 *
 * Bounded on both axes: a member keeps at most `windowMs / stepMs + 1` points and nothing older than `windowMs`;
 * at most `maxMembers` series are kept (past that, the member seen least recently makes room). Time is passed in.
 */

/** One sample: [epoch ms, lag bytes or null when unknown (member down, no leader)]. */
export type LagPoint = readonly [number, number | null];

export interface LagHistoryOptions {
  readonly windowMs?: number;
  readonly stepMs?: number;
  readonly maxMembers?: number;
}

export const LAG_WINDOW_MS = 60 * 60_000;
export const LAG_STEP_MS = 5_000;
const MAX_MEMBERS = 32;

export class LagHistory {
  readonly windowMs: number;
  readonly stepMs: number;
  readonly maxPoints: number;
  readonly maxMembers: number;
  readonly #series = new Map<string, LagPoint[]>();
  #lastAt = -Infinity;

  constructor(o: LagHistoryOptions = {}) {
    this.windowMs = o.windowMs ?? LAG_WINDOW_MS;
    this.stepMs = o.stepMs ?? LAG_STEP_MS;
    this.maxPoints = Math.floor(this.windowMs / this.stepMs) + 1;
    this.maxMembers = o.maxMembers ?? MAX_MEMBERS;
  }

  /**
   * Records one sample per member at `now`. Samples closer than half a step to the previous one are ignored, so a
   * timer and a page refresh do not double the density. Members absent from `lags` get no point (a gap).
   */
  record(now: number, lags: ReadonlyMap<string, number | null>): boolean {
    if (now - this.#lastAt < this.stepMs / 2) return false;
    this.#lastAt = now;
    for (const [name, lag] of lags) {
      let s = this.#series.get(name);
      if (!s) {
        if (this.#series.size >= this.maxMembers && !this.#evictOne(now)) continue;
        s = [];
        this.#series.set(name, s);
      }
      s.push([now, lag]);
      if (s.length > this.maxPoints) s.splice(0, s.length - this.maxPoints);
    }
    this.#prune(now);
    return true;
  }

  /** Every member's points within the window, oldest first (copies). */
  series(now: number): Record<string, LagPoint[]> {
    this.#prune(now);
    const out: Record<string, LagPoint[]> = {};
    for (const [name, s] of [...this.#series].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true })))
      out[name] = s.slice();
    return out;
  }

  #prune(now: number): void {
    const from = now - this.windowMs;
    for (const [name, s] of this.#series) {
      let i = 0;
      while (i < s.length && (s[i] as LagPoint)[0] < from) i++;
      if (i) s.splice(0, i);
      if (!s.length) this.#series.delete(name);
    }
  }

  /** Makes room for one series: prunes, then drops the member whose newest point is oldest. */
  #evictOne(now: number): boolean {
    this.#prune(now);
    if (this.#series.size < this.maxMembers) return true;
    let oldest: string | null = null;
    let oldestAt = Infinity;
    for (const [name, s] of this.#series) {
      const at = s.at(-1)?.[0] ?? -Infinity;
      if (at < oldestAt) [oldest, oldestAt] = [name, at];
    }
    if (oldest === null) return false;
    this.#series.delete(oldest);
    return true;
  }
}
