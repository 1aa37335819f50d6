/**
 * Synchronous replication, the leader's half (pure). Patroni's order, from `patroni/ha.py`
 * `process_sync_replication` and `patroni/postgresql/sync.py` `current_state`:
 *
 * 1. pick the wanted synchronous standbys among the replicas streaming from us right now;
 * 2. set `synchronous_standby_names` to them (PostgreSQL first);
 * 3. write `/sync` — but only with the standbys PostgreSQL *already* reports as synchronous, because `/sync` is
 *    the promise "these members have every committed transaction" that the failover race relies on.
 *
 * decide() calls `syncStep`; the executor may call `writableSyncStandbys` after changing the setting.
 */
import type { Cluster, Member } from '../dcs/layout.js';
import type { Action, HaSettings, LocalPostgres } from './view.js';

/** Patroni's strict-mode value: `synchronous_standby_names = '*'` matches any standby, so commits wait for one. */
export const STRICT_PLACEHOLDER = '*';

export interface SyncInput {
  readonly me: string;
  readonly settings: Pick<HaSettings, 'synchronousModeStrict' | 'synchronousNodeCount'>;
  /** Standbys streaming from this node now (pg_stat_replication, state 'streaming'). */
  readonly streamingStandbys: readonly string[];
  /** Standbys PostgreSQL reports as `sync`/`quorum`. */
  readonly pgSync: readonly string[];
  readonly members: ReadonlyMap<string, Member>;
}

export interface SyncPlan {
  /** What `synchronous_standby_names` should name (member names, best first). */
  readonly desired: readonly string[];
  /** The subset of `desired` that may be written to `/sync` now (PostgreSQL already treats it as synchronous). */
  readonly writable: readonly string[];
  /** Strict mode without any candidate: the setting holds the placeholder so commits block rather than go async. */
  readonly placeholder: boolean;
}

function tagged(m: Member, tag: string): boolean {
  return m.record.tags?.[tag] === true;
}

/** Highest WAL position a replica published in its member record; a proxy for "lowest lag". */
function position(m: Member): number {
  const r = m.record;
  return Math.max(r.xlog_location ?? 0, r.receive_lsn ?? 0, r.replay_lsn ?? 0);
}

/**
 * Members that may be synchronous: streaming from us per pg_stat_replication, not tagged `nosync`, and — when the
 * member publishes `replication_state` — reporting 'streaming' themselves (Patroni < 3.0 members omit the field,
 * so its absence does not disqualify; pg_stat_replication already said they stream).
 */
function candidates(input: SyncInput): Member[] {
  const out: Member[] = [];
  for (const name of new Set(input.streamingStandbys)) {
    const m = input.members.get(name);
    if (!m || name === input.me || tagged(m, 'nosync')) continue;
    const state = m.record.replication_state;
    if (state !== undefined && state !== 'streaming') continue;
    out.push(m);
  }
  return out;
}

/**
 * Order as Patroni does (stable sorts in `current_state`): members without `nofailover` first — a sync standby
 * that may not be promoted protects no failover — then the ones PostgreSQL already has as sync (no needless
 * swaps), then the least lagging, then by name so the result is deterministic.
 */
function compareCandidates(pgSync: ReadonlySet<string>) {
  return (a: Member, b: Member): number =>
    Number(tagged(a, 'nofailover')) - Number(tagged(b, 'nofailover')) ||
    Number(pgSync.has(b.name)) - Number(pgSync.has(a.name)) ||
    position(b) - position(a) ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

export function writableSyncStandbys(desired: readonly string[], pgSync: readonly string[]): string[] {
  const has = new Set(pgSync);
  return desired.filter((n) => has.has(n));
}

export function planSync(input: SyncInput): SyncPlan {
  const pgSync = new Set(input.pgSync);
  const count = Math.max(1, Math.floor(input.settings.synchronousNodeCount));
  const desired = candidates(input)
    .sort(compareCandidates(pgSync))
    .slice(0, count)
    .map((m) => m.name);
  return {
    desired,
    writable: writableSyncStandbys(desired, input.pgSync),
    placeholder: input.settings.synchronousModeStrict && desired.length === 0,
  };
}

export function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

export interface SyncStep {
  readonly actions: readonly Action[];
  /** Clause for the cycle's summary; '' when nothing changes. */
  readonly note: string;
}

/**
 * The leader's sync actions this cycle. `set_sync` when `/sync` is not ours, when it differs from what may be
 * written, or when PostgreSQL's setting (or, if not reported, its sync standbys) differs from the plan;
 * `clear_sync` when synchronous mode is off but `/sync` still exists (Patroni deletes it then).
 */
export function syncStep(
  me: string,
  settings: HaSettings,
  pg: LocalPostgres,
  cluster: Pick<Cluster, 'sync' | 'members'>,
): SyncStep {
  const current = cluster.sync;
  if (!settings.synchronousMode) {
    return current
      ? { actions: [{ kind: 'clear_sync' }], note: 'synchronous mode is off, clearing /sync' }
      : { actions: [], note: '' };
  }
  const plan = planSync({
    me,
    settings,
    streamingStandbys: pg.streamingStandbys,
    pgSync: pg.syncStandbys,
    members: cluster.members,
  });
  // Prefer the configured setting when the executor reports it (it shows the strict placeholder); otherwise
  // PostgreSQL's sync standbys are the best evidence of what the setting names.
  const settingMatches =
    pg.synchronousStandbyNames !== undefined
      ? sameSet(pg.synchronousStandbyNames, plan.placeholder ? [STRICT_PLACEHOLDER] : plan.desired)
      : sameSet(pg.syncStandbys, plan.desired);
  const upToDate =
    current !== undefined && current.leader === me && sameSet(current.standbys, plan.writable) && settingMatches;
  if (upToDate) return { actions: [], note: '' };
  const note = plan.placeholder
    ? 'no synchronous standby available, commits wait (strict mode)'
    : plan.desired.length === 0
      ? 'no synchronous standby available'
      : `synchronous standbys: ${plan.desired.join(',')}`;
  return { actions: [{ kind: 'set_sync', standbys: plan.desired }], note };
}
