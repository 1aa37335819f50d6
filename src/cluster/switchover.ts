/**
 * The preconditions of POST /switchover and POST /failover, as a pure function of the cluster, the request body
 * and the time (Patroni `do_POST_failover`, `parse_schedule`, `is_failover_possible`). It answers either with the
 * refusal Patroni would send (code + text) or with the `/failover` value to write. The agents do the rest: the
 * leader named in `/failover` demotes gracefully and only the named member may take the free key
 * (src/ha/decide-leader.ts, decide-race.ts).
 */
import type { Cluster } from '../dcs/layout.js';
import { isHealthyReplica } from './health.js';

export type SwitchoverKind = 'switchover' | 'failover';

export interface Refusal {
  readonly refused: true;
  readonly code: number;
  readonly body: string;
}

export interface SwitchoverPlan {
  readonly refused: false;
  /** The value of the `/failover` key, in Patroni's field names. */
  readonly value: { leader?: string; member?: string; scheduled_at?: string };
  /** The leader when the request was accepted; a different leader afterwards means it worked. */
  readonly fromLeader: string | undefined;
  readonly candidate: string | undefined;
  readonly scheduled: boolean;
}

const refuse = (code: number, body: string): Refusal => ({ refused: true, code, body });
const title = (k: SwitchoverKind) => (k === 'switchover' ? 'Switchover' : 'Failover');

/** Patroni accepts `null` for an absent field (patronictl 3.0.2 sends `"scheduled_at": null`). */
function optionalString(body: Record<string, unknown>, key: string): string | undefined | Error {
  const v = body[key];
  if (v === undefined || v === null || v === '') return undefined;
  return typeof v === 'string' ? v : new Error(`"${key}" must be a string, got ${JSON.stringify(v)}`);
}

const ISO = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * An ISO 8601 time with a timezone, e.g. "2026-01-14T10:09:57+00:00"; returns epoch ms or the refusal Patroni
 * sends (400 without a timezone, 422 unreadable or in the past).
 */
export function parseScheduledAt(s: string, now: number, kind: SwitchoverKind): number | Refusal {
  const m = ISO.exec(s.trim());
  if (!m)
    return refuse(422, 'Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601');
  const [, date, time, tz] = m;
  if (tz === undefined) return refuse(400, `Timezone information is mandatory for the scheduled ${kind}`);
  const offset = /^[+-]\d{2}$/.test(tz)
    ? `${tz}:00`
    : /^[+-]\d{4}$/.test(tz)
      ? `${tz.slice(0, 3)}:${tz.slice(3)}`
      : tz.toUpperCase();
  const at = Date.parse(`${date}T${time}${offset}`);
  if (Number.isNaN(at))
    return refuse(422, 'Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601');
  if (at < now) return refuse(422, `Cannot schedule ${kind} in the past`);
  return at;
}

/** Patroni's `datetime.isoformat()` in UTC: "2026-01-14T10:09:57+00:00". */
export function formatScheduledAt(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/\.000Z$/, 'Z')
    .replace(/Z$/, '+00:00');
}

function syncMode(c: Cluster): boolean {
  const v = c.config?.value['synchronous_mode'];
  return (v === true || v === 'on' || v === 'true') && c.sync !== undefined && c.sync.leader !== null;
}

export function isPaused(c: Cluster): boolean {
  return c.config?.value['pause'] === true;
}

function whyUnhealthy(c: Cluster, name: string): string {
  const r = c.members.get(name)?.record;
  if (!r) return 'it is not a member';
  const bits = [`role ${r.role}`, `state ${r.state}`];
  if (r.tags?.['nofailover'] === true) bits.push('tagged nofailover');
  return bits.join(', ');
}

/** The members a request without a named candidate could go to (sorted). */
export function healthyCandidates(c: Cluster, exclude: string | undefined): string[] {
  const sync = syncMode(c);
  return [...c.members.keys()].filter((n) => n !== exclude && isHealthyReplica(c, n, sync)).sort();
}

/** Checks a POST /switchover or /failover body against the cluster; `now` in epoch ms. */
export function planSwitchover(
  kind: SwitchoverKind,
  c: Cluster,
  body: Record<string, unknown>,
  now: number,
): Refusal | SwitchoverPlan {
  const leader = optionalString(body, 'leader');
  let candidate = optionalString(body, 'candidate');
  if (candidate === undefined) candidate = optionalString(body, 'member');
  const scheduledRaw = optionalString(body, 'scheduled_at');
  for (const v of [leader, candidate, scheduledRaw]) if (v instanceof Error) return refuse(400, v.message);
  const L = leader as string | undefined;
  const C = candidate as string | undefined;
  const S = scheduledRaw as string | undefined;

  if (kind === 'failover' && !C) return refuse(400, 'Failover could be performed only to a specific candidate');
  if (kind === 'switchover' && !L) return refuse(400, 'Switchover could be performed only from a specific leader');
  if (kind === 'failover' && S) return refuse(400, "Failover can't be scheduled");
  if (isPaused(c)) {
    return refuse(
      412,
      `${title(kind)} is not possible: the cluster is paused (maintenance mode); pgkeel moves no leadership while paused, resume first`,
    );
  }
  let at: number | undefined;
  if (S) {
    const r = parseScheduledAt(S, now, kind);
    if (typeof r !== 'number') return r;
    at = r;
  }

  const current = c.leader?.name;
  if (L && L !== current)
    return refuse(
      412,
      `leader name does not match: ${L} is not the leader (the leader is ${current ?? 'nobody: the leader key is free'})`,
    );
  if (C && C === current)
    return refuse(412, `${title(kind)} target and source are the same: ${C} is already the leader`);
  const sync = syncMode(c);
  if (C) {
    if (!c.members.has(C)) return refuse(412, `candidate does not exists: ${C} is not a member of the cluster`);
    if (kind === 'switchover' && sync && !(c.sync?.standbys.includes(C) ?? false)) {
      return refuse(
        412,
        `candidate name does not match with sync_standby: ${C} is not in /sync (${c.sync?.standbys.join(', ') || 'none'})`,
      );
    }
    // A scheduled request is checked again by the leader when it is due; health can change until then.
    if (at === undefined && !isHealthyReplica(c, C, kind === 'switchover' && sync)) {
      return refuse(
        412,
        `${kind} is not possible: candidate ${C} is not healthy (${whyUnhealthy(c, C)}); it must be a running replica without the nofailover tag`,
      );
    }
  } else if (at === undefined && healthyCandidates(c, current).length === 0) {
    const rule = sync
      ? 'a running replica listed in /sync without the nofailover tag'
      : 'a running replica without the nofailover tag';
    return refuse(412, `${kind} is not possible: no good candidates have been found (a candidate must be ${rule})`);
  }

  const value: SwitchoverPlan['value'] = {};
  if (current) value.leader = current;
  if (C) value.member = C;
  if (at !== undefined) value.scheduled_at = formatScheduledAt(at);
  return { refused: false, value, fromLeader: current, candidate: C, scheduled: at !== undefined };
}
