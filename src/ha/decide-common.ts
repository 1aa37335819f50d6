/**
 * Small pure helpers shared by the decide-*.ts situations: building a Decision, reading the local PostgreSQL
 * state, and reading facts out of the cluster snapshot (timelines, healthy members, the `/failover` schedule).
 */
import type { Cluster, FailoverRequest, Member } from '../dcs/layout.js';
import type { Action, Decision, LocalPostgres, Observed } from './view.js';

export type Role = Decision['role'];

export function decision(summary: string, actions: readonly Action[], role: Role): Decision {
  return { summary, actions, role };
}

/** Accepting connections and not in recovery: a writable primary. */
export function isPrimary(pg: LocalPostgres): boolean {
  return pg.running && pg.accepting && pg.inRecovery === false;
}

/** The role to report when the cycle changes nothing: what PostgreSQL is right now. */
export function currentRole(o: Observed): Role {
  if (o.pg.dataDir === 'empty') return 'uninitialized';
  return isPrimary(o.pg) ? 'primary' : 'replica';
}

export function seconds(ms: number): string {
  return `${Math.round(ms / 1000)}s`;
}

export function hasTag(m: Member | undefined, tag: string): boolean {
  return m?.record.tags?.[tag] === true;
}

/**
 * Why this node may not lead: `watchdog.mode` is required and the watchdog cannot be armed (Patroni
 * `Watchdog.is_healthy` in `_is_healthiest_node`, and `enforce_primary_role`); null when nothing bars it.
 */
export function watchdogBar(o: Observed): string | null {
  const w = o.watchdog;
  if (w?.mode !== 'required' || w.state !== 'unavailable') return null;
  return `watchdog.mode is required and the watchdog cannot be armed (${w.problem ?? 'unknown reason'})`;
}

/**
 * The last renewal of a leader key we hold failed. `lastRenew` is per leadership term ("null if never attempted
 * while leader"), so a failure is never older than the current term. Patroni demotes at once when
 * `update_lock` fails (`demote('immediate-nolock')`); our lease step renews before `decide`, so this cycle acts on it.
 */
export function renewFailed(o: Observed): boolean {
  return o.lastRenew !== null && !o.lastRenew.ok;
}

/**
 * The cluster's latest timeline as far as the snapshot shows: one past the last switched-away timeline in
 * `/history` (Patroni's `Cluster.timeline`), or the highest timeline another member publishes, whichever is higher.
 */
export function clusterTimeline(c: Cluster, exclude: string): number | undefined {
  let best: number | undefined;
  for (const [tl] of c.history) best = Math.max(best ?? 0, tl + 1);
  for (const m of c.members.values()) {
    const tl = m.record.timeline;
    if (m.name !== exclude && typeof tl === 'number') best = Math.max(best ?? 0, tl);
  }
  return best;
}

export function memberTimeline(c: Cluster, name: string): number | undefined {
  const tl = c.members.get(name)?.record.timeline;
  return typeof tl === 'number' ? tl : undefined;
}

/** Synchronous mode is in force once `/sync` names a leader (Patroni: an empty `/sync` restricts nobody). */
export function syncActive(o: Observed, c: Cluster): boolean {
  return o.settings.synchronousMode && c.sync !== undefined && c.sync.leader !== null;
}

export type Schedule = 'now' | 'future' | 'stale' | 'invalid';

/**
 * When a `/failover` request is due. Patroni (`should_run_scheduled_action`) runs it within `loop_wait` of its
 * time and deletes it as stale once it is more than 1.5 × `loop_wait` overdue; we cannot sleep, so "due" means
 * the time has come.
 */
export function scheduleOf(f: FailoverRequest, now: number, loopWait: number): Schedule {
  if (f.scheduledAt === undefined) return 'now';
  const at = Date.parse(f.scheduledAt);
  if (Number.isNaN(at)) return 'invalid';
  if (at > now) return 'future';
  return now - at > 1.5 * loopWait * 1000 ? 'stale' : 'now';
}

/** Names in a stable order, so "who is better" in a summary does not depend on map insertion order. */
export function sortedEntries<V>(m: ReadonlyMap<string, V>): [string, V][] {
  return [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
