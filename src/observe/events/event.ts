/**
 * One cluster event, as `GET /events` returns it and `pgkeel ctl events` merges it (docs/events.md). An event is a
 * transition this agent saw or caused — never a cycle that changed nothing — with the sentence the HA loop gave
 * for it. The shape is a contract shared with the dashboard: fields are added, never renamed.
 */

/** Every kind an agent records; a const list so docs and tests can walk it. */
export const EVENT_KINDS = [
  'leader_acquired',
  'leader_lost',
  'promote',
  'demote',
  'start',
  'restart',
  'stop',
  'crash',
  'rewind',
  'reclone',
  'clone',
  'bootstrap',
  'failover_requested',
  'switchover_requested',
  'failover_done',
  'switchover_done',
  'config_changed',
  'backup_done',
  'backup_failed',
  'dcs_lost',
  'dcs_regained',
  'pending_restart',
] as const;

export type EventKind = (typeof EVENT_KINDS)[number];

export interface ClusterEvent {
  /** ISO-8601 UTC, the same instant as `at`. */
  readonly time: string;
  /** Epoch milliseconds. */
  readonly at: number;
  /** The member the event is about (the old leader for a lost leader key, else the recording agent). */
  readonly member: string;
  /** The recording agent's PostgreSQL timeline at the time; null when unknown. */
  readonly timeline: number | null;
  readonly kind: EventKind;
  /** One sentence: the HA loop's decision summary, or what was observed. */
  readonly reason: string;
  readonly from?: string;
  readonly to?: string;
  /** Always has `observer`: the agent that recorded it (merging drops the same happening seen by several). */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** An event before the recorder stamps it: `at` comes from the snapshot, `time` is derived from it. */
export type EventDraft = Omit<ClusterEvent, 'time'>;

export function stamp(d: EventDraft): ClusterEvent {
  const e: ClusterEvent = { time: new Date(d.at).toISOString(), ...d };
  // Keep the contract's field order (time, at, member, …) in the JSON: readers and diffs are easier.
  return {
    time: e.time,
    at: e.at,
    member: e.member,
    timeline: e.timeline,
    kind: e.kind,
    reason: e.reason,
    ...(e.from !== undefined ? { from: e.from } : {}),
    ...(e.to !== undefined ? { to: e.to } : {}),
    ...(e.details !== undefined ? { details: e.details } : {}),
  };
}

/** A parsed JSON value that has the contract's shape (files and other members' answers are checked with it). */
export function isClusterEvent(v: unknown): v is ClusterEvent {
  if (v === null || typeof v !== 'object') return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o['time'] === 'string' &&
    typeof o['at'] === 'number' &&
    Number.isFinite(o['at']) &&
    typeof o['member'] === 'string' &&
    (o['timeline'] === null || typeof o['timeline'] === 'number') &&
    typeof o['kind'] === 'string' &&
    typeof o['reason'] === 'string'
  );
}
