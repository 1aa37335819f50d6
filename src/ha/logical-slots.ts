/**
 * Permanent logical slots across a physical failover (Patroni's permanent `slots`, PostgreSQL 11–16), pure.
 *
 * - The leader never drops a permanent slot and publishes each permanent logical slot's `confirmed_flush_lsn` in
 *   `/status` `slots`. It does NOT create a missing one: a logical slot created now starts at the current position
 *   and would silently skip every change its subscriber has not received yet (Patroni creates it; we report it).
 * - A replica copies each published slot it lacks (the leader's `pg_replslot/<name>/state`, read with
 *   `pg_read_binary_file`), restarts once to load the copies, and then advances each copy to the published
 *   position with `pg_replication_slot_advance` once its replay has reached it. `hot_standby_feedback` stays on,
 *   so the leader keeps the catalog rows the copies still need.
 * - Promotion guard (patroni#1749): a replica replaying behind what the peers confirmed, or without the copies, is
 *   not promoted automatically — its peers would have changes it never had, or no slot to resume from.
 */
import type { DynamicConfig, SlotMatcher } from '../config/node.js';
import { formatLsn } from '../postgres/lsn.js';

export interface PermanentLogicalSlot {
  readonly name: string;
  readonly database: string;
  readonly plugin: string;
}

/** A logical slot as pg_replication_slots shows it. */
export interface LogicalSlotRow {
  readonly name: string;
  readonly database: string;
  readonly plugin: string;
  readonly confirmedFlush: number | null;
}

/** The permanent logical slots of the dynamic config, by name. */
export function permanentLogicalSlots(d: Pick<DynamicConfig, 'slots'>): PermanentLogicalSlot[] {
  return Object.entries(d.slots ?? {})
    .filter(([, s]) => s.type === 'logical' && s.database !== undefined && s.plugin !== undefined)
    .map(([name, s]) => ({ name, database: s.database as string, plugin: s.plugin as string }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The permanent physical slots of the dynamic config. */
export function permanentPhysicalSlots(d: Pick<DynamicConfig, 'slots'>): string[] {
  return Object.entries(d.slots ?? {})
    .filter(([, s]) => s.type === 'physical')
    .map(([name]) => name)
    .sort();
}

/** Patroni `ignore_slots`: a slot matches a matcher when every key the matcher gives is equal. */
export function ignored(
  slot: { name: string; type: 'physical' | 'logical'; database?: string; plugin?: string },
  matchers: readonly SlotMatcher[],
): boolean {
  return matchers.some((m) =>
    (['name', 'type', 'database', 'plugin'] as const).every((k) => m[k] === undefined || m[k] === slot[k]),
  );
}

/**
 * postgresql.parameters with `hot_standby_feedback = on` when the site has permanent logical slots: a replica's
 * copies need the leader to keep the catalog rows they still decode with.
 */
export function withSlotFeedback(d: DynamicConfig): DynamicConfig['postgresql']['parameters'] {
  const p = d.postgresql.parameters;
  return permanentLogicalSlots(d).length ? { ...p, hot_standby_feedback: 'on' } : p;
}

function matches(row: LogicalSlotRow, want: PermanentLogicalSlot): boolean {
  return row.database === want.database && row.plugin === want.plugin;
}

export interface LeaderSlotReport {
  /** `/status` slots entries: each permanent logical slot's confirmed_flush_lsn. */
  readonly positions: Readonly<Record<string, number>>;
  /** Permanent logical slots missing here (reported; never created, see the module comment). */
  readonly missing: readonly string[];
  /** A slot with the name but another database or plugin (reported; left alone). */
  readonly mismatched: readonly string[];
}

/** The leader's side: what to publish, and what to report. */
export function leaderSlotReport(
  permanent: readonly PermanentLogicalSlot[],
  existing: readonly LogicalSlotRow[],
): LeaderSlotReport {
  const byName = new Map(existing.map((r) => [r.name, r]));
  const positions: Record<string, number> = {};
  const missing: string[] = [];
  const mismatched: string[] = [];
  for (const want of permanent) {
    const row = byName.get(want.name);
    if (!row) missing.push(want.name);
    else if (!matches(row, want)) mismatched.push(want.name);
    else if (row.confirmedFlush !== null) positions[want.name] = row.confirmedFlush;
  }
  return { positions, missing, mismatched };
}

export interface ReplicaSlotInput {
  readonly permanent: readonly PermanentLogicalSlot[];
  /** `/status` slots as the leader last published them (null: never). */
  readonly published: Readonly<Record<string, number>> | null;
  /** Logical slots on this replica now. */
  readonly local: readonly LogicalSlotRow[];
  readonly replayLsn: number | null;
  readonly hotStandbyFeedback: boolean;
}

export interface ReplicaSlotPlan {
  /** Slots to copy from the leader, then one restart for all of them. */
  readonly copy: readonly PermanentLogicalSlot[];
  /** Copies to advance to the leader's published position (replay has reached it). */
  readonly advance: readonly { readonly name: string; readonly database: string; readonly lsn: number }[];
  /** Copies ahead of the leader's published position. Right after a copy that is normal for a cycle (the file is
   *  newer than the last publication); a copy that stays ahead is stale (kept from another timeline, e.g. a former
   *  leader rejoined with pg_rewind) and must be dropped and copied again: promoted, it would start its peers past
   *  changes they never received. Not a valid copy for the promotion guard meanwhile. */
  readonly ahead: readonly string[];
  /** Why something cannot be done (logged once per change by the caller). */
  readonly problems: readonly string[];
}

/** The replica's side, each cycle. */
export function planReplicaSlots(i: ReplicaSlotInput): ReplicaSlotPlan {
  const byName = new Map(i.local.map((r) => [r.name, r]));
  const copy: PermanentLogicalSlot[] = [];
  const advance: { name: string; database: string; lsn: number }[] = [];
  const problems: string[] = [];
  const ahead: string[] = [];
  for (const want of i.permanent) {
    const target = i.published?.[want.name];
    if (target === undefined) continue; // the leader does not have it (yet): nothing to copy from
    const row = byName.get(want.name);
    if (!row) {
      copy.push(want);
      continue;
    }
    if (!matches(row, want)) {
      problems.push(
        `logical slot ${want.name} here is for ${row.database}/${row.plugin}, the permanent slot for ${want.database}/${want.plugin}; left alone`,
      );
      continue;
    }
    if (row.confirmedFlush !== null && row.confirmedFlush > target) ahead.push(want.name);
    if (row.confirmedFlush !== null && row.confirmedFlush >= target) continue;
    if (i.replayLsn !== null && i.replayLsn >= target)
      advance.push({ name: want.name, database: want.database, lsn: target });
  }
  if (copy.length && !i.hotStandbyFeedback) {
    problems.push(
      `not copying logical slots ${copy.map((s) => s.name).join(', ')}: hot_standby_feedback is off here (the leader could remove catalog rows the copies need); set it on`,
    );
    return { copy: [], advance, ahead, problems };
  }
  return { copy, advance, ahead, problems };
}

/** What decide needs to know about the permanent logical slots (Observed.logicalSlots). */
export interface LogicalSlotsView {
  /** The permanent logical slots of the dynamic config. */
  readonly permanent: readonly string[];
  /** Which of them exist on this node (as last seen). */
  readonly local: ReadonlySet<string>;
}

/**
 * The promotion guard: why this replica may not be promoted automatically, or null. Only slots the leader published
 * count (a slot it never had has nothing to lose). `replayLsn` is the local replay position.
 */
export function logicalSlotBar(
  view: LogicalSlotsView | undefined,
  published: Readonly<Record<string, number>> | null | undefined,
  replayLsn: number | null,
): string | null {
  if (!view || !published) return null;
  const needed = view.permanent.filter((n) => published[n] !== undefined);
  if (!needed.length) return null;
  const missing = needed.filter((n) => !view.local.has(n));
  if (missing.length)
    return `I have no copy of the permanent logical slot(s) ${missing.join(', ')} the mesh peers consume (patroni#1749)`;
  let worst: string | null = null;
  for (const n of needed) if (worst === null || (published[n] as number) > (published[worst] as number)) worst = n;
  const need = published[worst as string] as number;
  if (replayLsn === null || replayLsn < need)
    return `my replay position ${replayLsn === null ? 'unknown' : formatLsn(replayLsn)} is behind ${formatLsn(need)}, what a peer confirmed on logical slot ${worst} (patroni#1749)`;
  return null;
}
