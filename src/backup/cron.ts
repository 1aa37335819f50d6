/**
 * Cron schedules (the five classic fields: minute hour day-of-month month day-of-week, in UTC) and durations
 * ("7d", "36h", "2w") for backup.schedule and backup.retention.window. Pure.
 *
 * Field syntax: `*`, a number, a range `a-b`, a list `a,b,c`, and steps `*\/n` or `a-b/n`. Day-of-week 0-7 (0 and 7
 * are Sunday). As in Vixie cron, when both day-of-month and day-of-week are restricted, either matching is enough.
 */
export interface Cron {
  readonly source: string;
  readonly minute: ReadonlySet<number>;
  readonly hour: ReadonlySet<number>;
  readonly dom: ReadonlySet<number>;
  readonly month: ReadonlySet<number>;
  readonly dow: ReadonlySet<number>;
  readonly domStar: boolean;
  readonly dowStar: boolean;
}

const FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'day of week', min: 0, max: 7 },
] as const;

export const CRON_EXPECTED =
  'a cron schedule of five fields in UTC, e.g. "0 1 * * 0" (Sundays at 01:00), or "" for none';

function field(text: string, f: (typeof FIELDS)[number]): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
    if (!m) throw new Error(`${f.name} "${part}" is not a number, range, list or step`);
    const lo = m[1] === '*' ? f.min : Number(m[2]);
    const hi = m[1] === '*' ? f.max : m[3] !== undefined ? Number(m[3]) : m[4] !== undefined ? f.max : lo;
    const step = m[4] !== undefined ? Number(m[4]) : 1;
    if (lo < f.min || hi > f.max || lo > hi || step < 1)
      throw new Error(`${f.name} "${part}" is outside ${f.min}-${f.max}`);
    for (let v = lo; v <= hi; v += step) out.add(f.name === 'day of week' && v === 7 ? 0 : v);
  }
  return out;
}

/** Parses a schedule; throws an Error saying which field is wrong. */
export function parseCron(source: string): Cron {
  const parts = source.trim().split(/\s+/);
  if (parts.length !== 5) throw new Error(`expected five fields (minute hour day month weekday), got ${parts.length}`);
  const [mi, h, dom, mo, dow] = parts.map((p, i) => field(p, FIELDS[i] as (typeof FIELDS)[number])) as Set<number>[];
  return {
    source,
    minute: mi as Set<number>,
    hour: h as Set<number>,
    dom: dom as Set<number>,
    month: mo as Set<number>,
    dow: dow as Set<number>,
    domStar: parts[2] === '*',
    dowStar: parts[4] === '*',
  };
}

/** The problem with a schedule string, for the config schema (undefined when valid or empty). */
export function cronProblem(v: string): string | undefined {
  if (v.trim() === '') return undefined;
  try {
    parseCron(v);
    return undefined;
  } catch (err) {
    return `expected ${CRON_EXPECTED}, got "${v}": ${(err as Error).message}`;
  }
}

function matches(c: Cron, d: Date): boolean {
  if (!c.minute.has(d.getUTCMinutes()) || !c.hour.has(d.getUTCHours()) || !c.month.has(d.getUTCMonth() + 1))
    return false;
  const domOk = c.dom.has(d.getUTCDate());
  const dowOk = c.dow.has(d.getUTCDay());
  if (c.domStar || c.dowStar) return domOk && dowOk;
  return domOk || dowOk;
}

/** The first minute strictly after `after` that the schedule names (searches up to ~5 years ahead), or null. */
export function nextRun(c: Cron, after: Date): Date | null {
  const d = new Date(after.getTime());
  d.setUTCSeconds(0, 0);
  d.setUTCMinutes(d.getUTCMinutes() + 1);
  for (let i = 0; i < 5 * 366 * 24 * 60; ) {
    if (!c.month.has(d.getUTCMonth() + 1)) {
      d.setUTCMonth(d.getUTCMonth() + 1, 1);
      d.setUTCHours(0, 0, 0, 0);
      i += 28 * 24 * 60;
      continue;
    }
    if (matches(c, d)) return d;
    if (!c.hour.has(d.getUTCHours())) {
      d.setUTCHours(d.getUTCHours() + 1, 0, 0, 0);
      i += 60;
      continue;
    }
    d.setUTCMinutes(d.getUTCMinutes() + 1);
    i++;
  }
  return null;
}

/**
 * The last minute at or before `at` that the schedule names (searches back up to 366 days), or null. Used to ask
 * "was a run due since the last backup?".
 */
export function prevRun(c: Cron, at: Date): Date | null {
  const d = new Date(at.getTime());
  d.setUTCSeconds(0, 0);
  for (let i = 0; i < 366 * 24 * 60; i++) {
    if (matches(c, d)) return d;
    if (!c.month.has(d.getUTCMonth() + 1) || !(c.domStar || c.dom.has(d.getUTCDate()) || c.dow.has(d.getUTCDay()))) {
      // Jump to the last minute of the previous day.
      d.setUTCHours(0, 0, 0, 0);
      d.setUTCMinutes(-1);
      i += 24 * 60 - 1;
      continue;
    }
    if (!c.hour.has(d.getUTCHours())) {
      d.setUTCMinutes(0);
      d.setUTCMinutes(-1);
      i += 59;
      continue;
    }
    d.setUTCMinutes(d.getUTCMinutes() - 1);
  }
  return null;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400 };
export const DURATION_EXPECTED = 'a duration such as "7d", "36h", "2w" or "90m"';

/** "7d" → seconds; throws on anything else. */
export function parseDuration(v: string): number {
  const m = /^(\d+)\s*([smhdw])$/.exec(v.trim());
  if (!m) throw new Error(`expected ${DURATION_EXPECTED}, got "${v}"`);
  return Number(m[1]) * (UNITS[m[2] as string] as number);
}

export function durationProblem(v: string): string | undefined {
  try {
    parseDuration(v);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
