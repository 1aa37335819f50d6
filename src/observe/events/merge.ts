/**
 * `pgkeel ctl events`: every member's events in one time line. The same happening seen by several agents (a leader
 * key gone, a switchover requested — derive.ts records those on every agent that sees them) is kept once, as its
 * first observer recorded it; then the story's one derived fact: how long writes were down around each change of
 * leader.
 */
import { renderTable } from '../../cli/table.js';
import type { ClusterEvent } from './event.js';

/** Two agents see one change of the cluster's keys at most a lease apart (a cycle each, plus the watch). */
export const SAME_HAPPENING_MS = 30_000;

/** What the merge reads of an event (the dashboard passes its own, looser, event type). */
type Mergeable = Pick<ClusterEvent, 'at' | 'member' | 'from' | 'details'> & { readonly kind: string };

const observer = (e: Mergeable) => String(e.details?.['observer'] ?? e.member);

/** Stable: events of one member at the same millisecond keep the order the agent recorded them in. */
function order(a: Mergeable, b: Mergeable): number {
  return a.at - b.at || a.member.localeCompare(b.member);
}

/** All events of all members, oldest first, without exact duplicates and without the same happening twice. */
export function mergeEvents<E extends Mergeable>(lists: readonly (readonly E[])[]): E[] {
  const all = lists.flat().sort(order);
  const seen = new Set<string>();
  const kept: E[] = [];
  for (const e of all) {
    const key = JSON.stringify(e);
    if (seen.has(key)) continue;
    seen.add(key);
    const twin = kept.some(
      (k) =>
        k.kind === e.kind &&
        k.member === e.member &&
        k.from === e.from &&
        observer(k) !== observer(e) &&
        e.at - k.at <= SAME_HAPPENING_MS,
    );
    if (!twin) kept.push(e);
  }
  return kept;
}

export interface WritesDown {
  readonly seconds: number;
  /** When writes stopped: the old leader's demote or crash just before it lost the key, else the loss itself. */
  readonly downAt: number;
  /** What happened at `downAt` on the old leader: "demote", "crash" or "leader_lost". */
  readonly downBy: string;
  readonly lostAt: number;
  readonly oldLeader: string;
  readonly promotedAt: number;
  readonly newLeader: string;
}

/** A demote or crash further back than this is not the same outage. */
const LEAD_UP_MS = 60_000;

/** A promote's end (or its start when the end is not recorded): when the new leader took writes. */
function promotedAt(events: readonly ClusterEvent[], i: number): number {
  const p = events[i] as ClusterEvent;
  const done = events.find(
    (e, j) => j > i && e.member === p.member && e.kind === 'promote' && e.details?.['outcome'] === 'done',
  );
  return done?.at ?? p.at;
}

/** The old leader's demote or crash that led up to losing the key, if recorded. */
function leadUp(events: readonly ClusterEvent[], lost: ClusterEvent): ClusterEvent | undefined {
  return events.find(
    (e) =>
      e.member === lost.member &&
      ((e.kind === 'demote' && e.details?.['outcome'] === 'started') || e.kind === 'crash') &&
      e.at <= lost.at &&
      lost.at - e.at <= LEAD_UP_MS,
  );
}

/**
 * Each leader_lost followed by a promote on another member: writes were down from the old leader's demote or crash
 * (or, without one, the loss of its key) to the end of the promote. Derived from the events alone, so only as
 * precise as the agents' cycles.
 */
export function writesDown(events: readonly ClusterEvent[]): WritesDown[] {
  const out: WritesDown[] = [];
  let lost: ClusterEvent | null = null;
  // A leader_lost recorded in the same millisecond as the promote may sort after it (ties go by member name).
  const consumed = new Set<ClusterEvent>();
  events.forEach((e, i) => {
    if (e.kind === 'leader_lost' && !consumed.has(e)) lost ??= e;
    if (e.kind !== 'promote' || e.details?.['outcome'] !== 'started') return;
    if (!lost) {
      const tie = events.find((x, j) => j > i && x.at === e.at && x.kind === 'leader_lost' && x.member !== e.member);
      if (tie) {
        consumed.add(tie);
        lost = tie;
      }
    }
    if (!lost || lost.member === e.member) return;
    const at = promotedAt(events, i);
    const before = leadUp(events, lost);
    const downAt = before?.at ?? lost.at;
    out.push({
      seconds: (at - downAt) / 1000,
      downAt,
      downBy: before?.kind ?? 'leader_lost',
      lostAt: lost.at,
      oldLeader: lost.member,
      promotedAt: at,
      newLeader: e.member,
    });
    lost = null;
  });
  return out;
}

const clock = (at: number) => new Date(at).toISOString().replace('T', ' ').slice(0, 23);

export function writesDownText(w: WritesDown): string {
  const began =
    w.downBy === 'crash'
      ? `${w.oldLeader} crashed at ${clock(w.downAt)}, `
      : w.downBy === 'demote'
        ? `${w.oldLeader} began to demote at ${clock(w.downAt)}, `
        : '';
  return (
    `derived: writes were down for ${w.seconds.toFixed(1)} s ` +
    `(${began}leader lost at ${clock(w.lostAt)} on ${w.oldLeader}, ${w.newLeader} promoted at ${clock(w.promotedAt)})`
  );
}

/** The readable story: a table, then the derived lines. */
export function eventsText(events: readonly ClusterEvent[]): string {
  if (!events.length) return 'no events';
  const rows = events.map((e) => [
    clock(e.at),
    e.member,
    e.timeline === null ? '' : String(e.timeline),
    e.kind + (e.details?.['outcome'] && e.details['outcome'] !== 'started' ? ` ${String(e.details['outcome'])}` : ''),
    e.reason,
  ]);
  const lines = [renderTable([['Time (UTC)', 'Member', 'TL', 'Kind', 'Reason'], ...rows])];
  for (const w of writesDown(events)) lines.push(writesDownText(w));
  return lines.join('\n');
}
