/**
 * `since` as `GET /events?since=` and `pgkeel ctl events --since` take it: epoch milliseconds, an ISO-8601 time,
 * or a duration back from now (`90s`, `15m`, `1h`, `2d`, combinations such as `1h30m`).
 */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a duration such as "1h30m" or "90s"; null when it is not one. */
export function parseDuration(text: string): number | null {
  const s = text.trim();
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(s)) return null;
  let total = 0;
  for (const [, n, , unit] of s.matchAll(/(\d+(\.\d+)?)(ms|s|m|h|d)/g))
    total += Number(n) * (UNIT_MS[unit as string] ?? 0);
  return total;
}

/** Epoch ms for `since`, relative to `now`; null when it is none of the three forms. */
export function parseSince(text: string, now: number): number | null {
  const s = text.trim();
  if (/^\d+$/.test(s)) return Number(s);
  const d = parseDuration(s);
  if (d !== null) return now - d;
  // An ISO-8601 date or date-time (Date.parse alone would take "May 5" and such).
  if (!/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}(:?\d{2})?)?)?$/i.test(s)) return null;
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : t;
}
