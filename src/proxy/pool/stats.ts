/**
 * Counters per pool, as pgBouncer's SHOW STATS reports them per database (src/stats.c): totals since start and
 * per-second averages over the last stats period. Times are microseconds.
 */
export const STAT_FIELDS = [
  'server_assignment_count',
  'xact_count',
  'query_count',
  'received',
  'sent',
  'xact_time',
  'query_time',
  'wait_time',
  'client_parse_count',
  'server_parse_count',
  'bind_count',
  'client_login_count',
] as const;
export type StatField = (typeof STAT_FIELDS)[number];

export class PoolStats {
  server_assignment_count = 0;
  xact_count = 0;
  query_count = 0;
  received = 0;
  sent = 0;
  xact_time = 0;
  query_time = 0;
  wait_time = 0;
  client_parse_count = 0;
  server_parse_count = 0;
  bind_count = 0;
  client_login_count = 0;
}

export type StatValues = Record<StatField, number>;

export function statValues(s: PoolStats): StatValues {
  const out = {} as StatValues;
  for (const f of STAT_FIELDS) out[f] = s[f];
  return out;
}

export function addStats(into: StatValues, s: StatValues): void {
  for (const f of STAT_FIELDS) into[f] += s[f];
}

export function zeroStats(): StatValues {
  const out = {} as StatValues;
  for (const f of STAT_FIELDS) out[f] = 0;
  return out;
}

/**
 * Per-second averages between two snapshots, except the time fields, which pgBouncer averages per transaction
 * (xact_time), per query (query_time) and per assignment (wait_time).
 */
export function averages(prev: StatValues, cur: StatValues, seconds: number): StatValues {
  const d = zeroStats();
  for (const f of STAT_FIELDS) d[f] = cur[f] - prev[f];
  const out = zeroStats();
  const per = (n: number): number => (seconds > 0 ? Math.round(n / seconds) : 0);
  for (const f of STAT_FIELDS) out[f] = per(d[f]);
  out.xact_time = d.xact_count > 0 ? Math.round(d.xact_time / d.xact_count) : 0;
  out.query_time = d.query_count > 0 ? Math.round(d.query_time / d.query_count) : 0;
  out.wait_time = d.server_assignment_count > 0 ? Math.round(d.wait_time / d.server_assignment_count) : 0;
  return out;
}
