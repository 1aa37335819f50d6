/**
 * The executor's leader-upkeep part, run by the leader every cycle (quick, never in the background): the `status`
 * key (optime, slots), the replication slots of the members, the `/failsafe` member list, and synchronous
 * replication (`synchronous_standby_names` and the `/sync` key, in Patroni's order).
 */
import type { Cluster } from '../dcs/layout.js';
import { encodeJson, encodeStatus, encodeSync } from '../dcs/layout.js';
import { planSlots } from './slots.js';
import { STRICT_PLACEHOLDER } from './sync.js';
import { keeperFor } from './logical-slots-keeper.js';
import { writeConf, type ExecInput } from './execute-common.js';
import type { AgentContext } from './state.js';

/** How long a departed member's replication slot is kept (Patroni 4's member_slots_ttl default). */
export const MEMBER_SLOT_TTL_MS = 30 * 60_000;

export class LeaderUpkeep {
  private lastStatusWritten = '';
  /** Managed slots whose member left the cluster, and since when (leader only). */
  private slotAbsentSince: ReadonlyMap<string, number> = new Map();

  constructor(private readonly ctx: AgentContext) {}

  /** Leader, every cycle: the `status` key (optime, slots) when it changed, and a slot for every member. */
  async housekeeping(inp: ExecInput): Promise<void> {
    const { keys, store } = this.ctx;
    if (!inp.pgStatus || inp.pgStatus.inRecovery) return;
    const { slots, retain } =
      inp.dynamic.postgresql.use_slots && inp.cluster
        ? await this.maintainSlots(inp.cluster)
        : { slots: null, retain: [] };
    await this.publishFailsafe(inp);
    // --- permanent slots (issue 14): each permanent logical slot's confirmed_flush_lsn joins /status slots. ---
    const logical = await keeperFor(this.ctx).leaderPositions(inp.dynamic);
    const published = logical ? { ...(slots ?? {}), ...logical } : slots;
    // --- end permanent slots ---
    const text = encodeStatus(inp.pgStatus.walPosition ?? 0, published, retain);
    if (text !== this.lastStatusWritten) {
      await store.put(keys.status, text);
      this.lastStatusWritten = text;
    }
  }

  /** Carries out the slot policy (slots.ts) on the leader. A slot that cannot be created or dropped is logged. */
  private async maintainSlots(cluster: Cluster): Promise<{ slots: Record<string, number>; retain: string[] }> {
    const { pg, cfg, log } = this.ctx;
    const existing = await pg.slots();
    const plan = planSlots({
      me: cfg.name,
      members: cluster.members.keys(),
      existing: new Set(existing.keys()),
      retainSlots: cluster.status?.retainSlots ?? [],
      absentSince: this.slotAbsentSince,
      now: this.ctx.now(),
      ttlMs: MEMBER_SLOT_TTL_MS,
      lost: await pg.lostSlots().catch(() => new Set<string>()),
    });
    for (const slot of plan.recreate) {
      log.warn(
        `replication slot ${slot} was invalidated: its member fell more than max_slot_wal_keep_size behind and must be re-cloned; creating the slot again`,
      );
      await pg
        .dropSlot(slot)
        .then(() => pg.createSlot(slot))
        .catch((err) => log.warn(`could not recreate replication slot ${slot}`, { err }));
    }
    for (const slot of plan.create)
      await pg.createSlot(slot).catch((err) => log.warn(`could not create replication slot ${slot}`, { err }));
    for (const slot of plan.drop) {
      await pg.dropSlot(slot).then(
        () =>
          log.warn(`dropped replication slot ${slot}: its member has been gone for ${MEMBER_SLOT_TTL_MS / 60_000} min`),
        (err) => log.warn(`could not drop replication slot ${slot}`, { err }),
      );
    }
    this.slotAbsentSince = new Map(plan.absentSince);
    const slots: Record<string, number> = {};
    for (const [k, v] of existing) if (v !== null && !plan.drop.includes(k)) slots[k] = v;
    return { slots, retain: [...plan.retain] };
  }

  /** failsafe_mode: the leader keeps `/failsafe` = every member's api_url, the set that must confirm it later. */
  private async publishFailsafe(inp: ExecInput): Promise<void> {
    const { keys, store } = this.ctx;
    if (!inp.cluster) return;
    if (!inp.dynamic.failsafe_mode) {
      if (inp.cluster.failsafe) await store.delete(keys.failsafe);
      return;
    }
    const want: Record<string, string> = {};
    for (const m of [...inp.cluster.members.values()].sort((a, b) => a.name.localeCompare(b.name)))
      want[m.name] = m.record.api_url;
    if (JSON.stringify(want) !== JSON.stringify(inp.cluster.failsafe ?? null))
      await store.put(keys.failsafe, encodeJson(want));
  }

  /**
   * Patroni's order: PostgreSQL first, then the `/sync` key names only standbys PostgreSQL already reports as sync.
   * Shrinking drops names from the key before PostgreSQL stops waiting for them. So whenever a step fails, every name
   * in `/sync` is one PostgreSQL waits for (a failover may pick it without losing a commit).
   */
  async setSync(standbys: readonly string[], inp: ExecInput): Promise<void> {
    const { pg, keys, store, cfg, mem } = this.ctx;
    const current = inp.cluster?.sync;
    const reported = new Set(
      inp.pgStatus?.replication
        .filter((r) => r.syncState === 'sync' || r.syncState === 'quorum')
        .map((r) => r.applicationName) ?? [],
    );
    const keep = (current?.standbys ?? []).filter((s) => standbys.includes(s));
    if (current && keep.length !== current.standbys.length) {
      await store.compareAndPut(keys.sync, encodeSync(cfg.name, keep), { modRevision: current.modRevision });
    }
    const count = Math.max(1, inp.dynamic.synchronous_node_count);
    // Strict mode with no candidate: '*' makes commits wait for whichever standby connects next (Patroni's value).
    const ssn = standbys.length
      ? `FIRST ${Math.min(count, standbys.length)} (${standbys.map((n) => `"${n}"`).join(',')})`
      : inp.dynamic.synchronous_mode_strict
        ? STRICT_PLACEHOLDER
        : '';
    if (ssn !== mem.synchronousStandbyNames) {
      mem.synchronousStandbyNames = ssn;
      if (writeConf(this.ctx, inp, 'primary', null).changed) await pg.reload();
    }
    const confirmed = standbys.filter((s) => reported.has(s));
    const want = encodeSync(cfg.name, confirmed);
    const now = current ? encodeSync(current.leader ?? '', current.standbys) : '';
    if (want !== now) {
      if (current) await store.compareAndPut(keys.sync, want, { modRevision: current.modRevision });
      else await store.create(keys.sync, want);
    }
  }

  /** Synchronous replication off: PostgreSQL stops waiting first, then the `/sync` key goes. */
  async clearSync(inp: ExecInput): Promise<void> {
    const { pg, keys, store, mem } = this.ctx;
    mem.synchronousStandbyNames = '';
    if (writeConf(this.ctx, inp, 'primary', null).changed) await pg.reload();
    await store.delete(keys.sync);
  }
}
