/**
 * The act step: carries out a Decision's actions against the DCS and the local PostgreSQL. Long operations
 * (initdb, clone, start, promote, demote, rewind) run in the background while the loop keeps cycling (renewing the
 * lease, publishing "creating replica"), with `mem.busy` set so `decide` starts nothing else meanwhile.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Cluster } from '../dcs/layout.js';
import { encodeJson, encodeStatus, encodeSync } from '../dcs/layout.js';
import type { DynamicConfig } from '../config/node.js';
import { slotNameFor, type Upstream } from '../postgres/conf.js';
import type { PgStatus } from '../postgres/instance.js';
import { parseLsn } from '../postgres/lsn.js';
import { runCallback } from './callbacks.js';
import { STRICT_PLACEHOLDER } from './sync.js';
import { planSlots } from './slots.js';
import { operationBackoffMs } from './crash-loop.js';
import type { AgentContext } from './state.js';
import type { Action, Busy, Decision, LeaseAction } from './view.js';
import { runLeaseActions } from './execute-dcs.js';
import type { LeaseRun } from './decide-lease.js';

export interface ExecInput {
  readonly cluster: Cluster | undefined;
  readonly dynamic: DynamicConfig;
  readonly pgStatus: PgStatus | null;
  readonly shuttingDown: boolean;
}

const LONG: Partial<Record<Action['kind'], Busy['what']>> = {
  bootstrap: 'bootstrap',
  clone: 'clone',
  reclone: 'clone',
  start: 'start',
  restart: 'restart',
  take_leadership: 'promote',
  promote: 'promote',
  demote: 'demote',
  rewind: 'rewind',
};

const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 30_000;
/** A planned demotion waits at most this long for client transactions in flight before the fast stop. */
const DRAIN_TIMEOUT_MS = 5_000;
const DRAIN_POLL_MS = 50;
/** How long a departed member's replication slot is kept (Patroni 4's member_slots_ttl default). */
const MEMBER_SLOT_TTL_MS = 30 * 60_000;

/** Where a member's PostgreSQL listens, from the conn_url it published ("postgres://host:port/db"). */
export function memberAddress(cluster: Cluster | undefined, name: string): { host: string; port: number } | null {
  const url = cluster?.members.get(name)?.record.conn_url;
  if (!url) return null;
  try {
    const u = new URL(url);
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 5432) };
  } catch {
    return null;
  }
}

export class Executor {
  private lastStatusWritten = '';
  /** Managed slots whose member left the cluster, and since when (leader only). */
  private slotAbsentSince: ReadonlyMap<string, number> = new Map();
  private background: Promise<void> | null = null;

  constructor(private readonly ctx: AgentContext) {}

  /** Resolves when the running background operation (if any) has finished. */
  async idle(): Promise<void> {
    await this.background;
  }

  /** The lease step's actions, run before the cycle is decided (execute-dcs.ts); a store error is returned, not thrown. */
  runLease(actions: readonly LeaseAction[]): Promise<LeaseRun> {
    return runLeaseActions(this.ctx, actions);
  }

  async run(decision: Decision, inp: ExecInput): Promise<void> {
    let actions = decision.actions;
    const take = actions.findIndex((a) => a.kind === 'take_leadership');
    if (take >= 0) {
      // The race itself is quick and decides whether there is anything to do: run it before going busy, so a member
      // that lost never reports "promoting".
      const a = actions[take] as Extract<Action, { kind: 'take_leadership' }>;
      if (!(await this.acquireLeaderKey(a.reason))) return;
      actions = [...actions.slice(0, take), { kind: 'promote', reason: a.reason }, ...actions.slice(take + 1)];
    }
    const long = actions.find((a) => LONG[a.kind] !== undefined);
    if (!long) return this.runAll(actions, inp);
    const { mem, log } = this.ctx;
    mem.busy = { what: LONG[long.kind] as Busy['what'], since: this.ctx.now() };
    this.background = this.runAll(actions, inp)
      .then(() => {
        mem.lastError = null;
        mem.failures = 0;
      })
      .catch((err: Error & { detail?: string }) => {
        mem.failures++;
        const wait = operationBackoffMs(mem.failures);
        mem.lastError = err.message;
        mem.retryAfter = this.ctx.now() + wait;
        log.error(`${long.kind} failed: ${err.message}`, { detail: err.detail, failures: mem.failures, retry_in_s: wait / 1000 });
      })
      .finally(() => {
        mem.busy = null;
        this.background = null;
      });
    return Promise.resolve();
  }

  private async runAll(actions: readonly Action[], inp: ExecInput): Promise<void> {
    for (const a of actions) await this.one(a, inp);
  }

  private upstreamFor(cluster: Cluster | undefined, leader: string | null, dyn: DynamicConfig): Upstream | null {
    if (!leader) return null;
    const addr = memberAddress(cluster, leader);
    if (!addr) return null;
    return { ...addr, slot: dyn.postgresql.use_slots ? slotNameFor(this.ctx.cfg.name) : null };
  }

  private writeConf(inp: ExecInput, role: 'primary' | 'replica', leader: string | null): { changed: boolean } {
    const { pg, mem } = this.ctx;
    const upstream = role === 'replica' ? this.upstreamFor(inp.cluster, leader, inp.dynamic) : null;
    mem.following = upstream ? leader : null;
    return pg.writeConfig({ cfg: this.ctx.cfg, dcsParameters: inp.dynamic.postgresql.parameters, upstream, synchronousStandbyNames: role === 'primary' ? mem.synchronousStandbyNames : '' }, role);
  }

  private async startPg(inp: ExecInput, role: 'primary' | 'replica', leader: string | null): Promise<void> {
    const { pg, mem } = this.ctx;
    if (role === 'primary' && pg.hasStandbySignal()) {
      // A standby must become primary through promotion (a new timeline); starting it without standby.signal would
      // continue the old timeline from wherever replay stopped — a history pg_rewind could not tell apart.
      this.writeConf(inp, 'replica', null);
      mem.shouldRun = true;
      await pg.start(START_TIMEOUT_MS);
      await pg.promote(60_000);
      await this.appendHistory(inp).catch(() => {});
      this.writeConf(inp, 'primary', null);
      await pg.reload();
      mem.startedAt = this.ctx.now();
      mem.downSince = null;
      this.callback('on_start', role);
      return;
    }
    this.writeConf(inp, role, leader);
    mem.shouldRun = true;
    await pg.start(START_TIMEOUT_MS);
    mem.startedAt = this.ctx.now();
    mem.downSince = null;
    this.callback('on_start', role);
  }

  private async stopPg(mode: 'fast' | 'immediate'): Promise<void> {
    await this.ctx.pg.stop(mode, STOP_TIMEOUT_MS);
    this.callback('on_stop', this.ctx.mem.role === 'primary' ? 'primary' : 'replica');
  }

  private callback(name: 'on_start' | 'on_stop' | 'on_restart' | 'on_reload' | 'on_role_change', role: string): void {
    runCallback(this.ctx, name, role);
  }

  private async one(a: Action, inp: ExecInput): Promise<void> {
    const { cfg, keys, store, pg, mem, log } = this.ctx;
    switch (a.kind) {
      case 'bootstrap':
        return this.bootstrap(inp);
      case 'clone': {
        const from = memberAddress(inp.cluster, a.from);
        if (!from) throw new Error(`cannot clone: member ${a.from} has no conn_url`);
        log.info(`cloning from ${a.from} (${from.host}:${from.port})`);
        pg.writePgpass();
        await pg.clone(from, 3600_000);
        mem.sysid = null;
        await this.startPg(inp, 'replica', inp.cluster?.leader?.name ?? a.from);
        return;
      }
      case 'start':
        if (a.as === 'replica' && a.leader) await this.rewindIfDiverged(inp, a.leader);
        return this.startPg(inp, a.as, a.leader);
      case 'restart':
        await this.stopPg('fast');
        await this.startPg(inp, mem.role === 'primary' ? 'primary' : 'replica', mem.following);
        this.callback('on_restart', mem.role);
        return;
      case 'take_leadership':
        if (await this.acquireLeaderKey(a.reason)) await this.promote(inp);
        return;
      case 'promote':
        return this.promote(inp);
      case 'renew_lock':
        return this.leaderHousekeeping(inp);
      case 'release_lock':
        await store.compareAndDelete(keys.leader, { value: cfg.name });
        mem.releasedLockAt = this.ctx.now();
        return;
      case 'demote':
        return this.demote(a.mode, inp);
      case 'follow': {
        const { changed } = this.writeConf(inp, 'replica', a.leader);
        if (changed && pg.isRunning()) {
          await pg.reload();
          this.callback('on_reload', 'replica');
        }
        log.info(`following ${a.leader}`);
        return;
      }
      case 'rewind':
        return this.rewindThenStart(inp, a.from);
      case 'reclone': {
        await this.stopPg('fast');
        const from = memberAddress(inp.cluster, a.from);
        if (!from) throw new Error(`cannot re-clone: member ${a.from} has no conn_url`);
        pg.moveAside('before-reclone');
        await pg.clone(from, 3600_000);
        mem.sysid = null;
        mem.rewindFailed = false;
        await this.startPg(inp, 'replica', a.from);
        return;
      }
      case 'set_sync':
        return this.setSync(a.standbys, inp);
      case 'clear_sync':
        mem.synchronousStandbyNames = '';
        if (this.writeConf(inp, 'primary', null).changed) await pg.reload();
        await store.delete(keys.sync);
        return;
      case 'reload': {
        const role = inp.pgStatus && !inp.pgStatus.inRecovery ? 'primary' : 'replica';
        this.writeConf(inp, role, role === 'replica' ? mem.following : null);
        if (pg.isRunning()) await pg.reload();
        this.callback('on_reload', role);
        return;
      }
      case 'remove_dead_leader':
        if (await store.compareAndDelete(keys.leader, { value: a.leader, modRevision: a.modRevision })) log.warn(`removed the leader key of ${a.leader}: its REST API and PostgreSQL refuse connections`);
        return;
      case 'clear_failover':
        await store.delete(keys.failover);
        return;
    }
  }

  /** Creates the leader key with our lease if it is free. */
  private async acquireLeaderKey(reason: string): Promise<boolean> {
    const { cfg, keys, store, mem, log } = this.ctx;
    if (mem.lease === null) throw new Error('no lease to take the leader key with');
    if (!(await store.create(keys.leader, cfg.name, { lease: mem.lease }))) {
      log.info('lost the leader race; another member took the key first');
      return false;
    }
    mem.lastRenew = { ok: true, at: this.ctx.now() };
    log.info(`took the leader key: ${reason}`);
    return true;
  }

  private async bootstrap(inp: ExecInput): Promise<void> {
    const { cfg, keys, store, pg, mem, log } = this.ctx;
    if (!(await store.create(keys.initialize, ''))) {
      log.info('another member is initializing the cluster');
      return;
    }
    log.info('won the initialize race: running initdb');
    try {
      await pg.initdb();
      await this.startPg(inp, 'primary', null);
      await pg.ensureReplicationRole();
      if (mem.lease === null) throw new Error('no lease');
      if (!(await store.create(keys.leader, cfg.name, { lease: mem.lease }))) throw new Error('the leader key was taken while this member was initializing the cluster');
      const cd = await pg.controlData();
      if (!cd) throw new Error('cannot read the new cluster\'s control data');
      mem.sysid = cd.sysid;
      await store.put(keys.initialize, cd.sysid);
      await store.create(keys.config, encodeJson(cfg.bootstrap.dcs));
      mem.lastRenew = { ok: true, at: this.ctx.now() };
      mem.role = 'primary';
      this.callback('on_role_change', 'primary');
      log.info('initialized a new cluster', { sysid: cd.sysid });
    } catch (err) {
      await pg.stop('immediate', STOP_TIMEOUT_MS).catch(() => {});
      const aside = pg.moveAside('failed-bootstrap');
      await store.compareAndDelete(keys.leader, { value: cfg.name }).catch(() => {});
      await store.compareAndDelete(keys.initialize, { value: '' }).catch(() => {});
      const e = err as Error & { detail?: string };
      e.message = `${e.message}${aside ? ` (the partial data directory was moved to ${aside}; remove it once you have read its logs)` : ''}; the next start retries initialization`;
      throw e;
    }
  }

  private async promote(inp: ExecInput): Promise<void> {
    const { pg, mem, log, keys, store, cfg } = this.ctx;
    const st = await pg.status().catch(() => null);
    if (st?.inRecovery !== false) {
      // PostgreSQL removes standby.signal itself while promoting; touching it first crashes the startup process.
      await pg.promote(60_000);
      this.writeConf(inp, 'primary', null);
      if (pg.isRunning()) await pg.reload();
      // pg_rewind on the old primary reads the new timeline from this node's control file: checkpoint now.
      await pg.query('CHECKPOINT', [], 60_000).catch((err) => log.warn('checkpoint after promote failed', { err }));
      await this.appendHistory(inp);
    }
    mem.following = null;
    mem.role = 'primary';
    await pg.ensureReplicationRole().catch((err) => log.warn('could not ensure the replication role', { err }));
    if (inp.cluster?.failover) await store.delete(keys.failover).catch(() => {});
    this.callback('on_role_change', 'primary');
    log.info(`${cfg.name} is now the primary`);
  }

  /** Appends the switch recorded in the newest timeline history file to the DCS `history` key. */
  private async appendHistory(inp: ExecInput): Promise<void> {
    const { pg, keys, store, cfg } = this.ctx;
    const rows = await pg.query<{ tli: number }>(`SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS tli`);
    const tli = rows[0]?.tli ?? 0;
    const file = `pg_wal/${tli.toString(16).toUpperCase().padStart(8, '0')}.history`;
    const text = (await pg.query<{ t: string }>(`SELECT pg_read_file($1) AS t`, [file]).catch(() => []))[0]?.t ?? '';
    const last = text.trim().split('\n').filter((l) => /^\d+\t/.test(l)).pop();
    if (!last) return;
    const [prevTli, lsnText, reason] = last.split('\t');
    const entry = [Number(prevTli), parseLsn(lsnText ?? '') ?? 0, reason ?? '', new Date(this.ctx.now()).toISOString(), cfg.name];
    const history = [...(inp.cluster?.history ?? []).filter((h) => h[0] !== entry[0]), entry];
    await store.put(keys.history, encodeJson(history));
  }

  private async demote(mode: 'graceful' | 'immediate' | 'offline', inp: ExecInput): Promise<void> {
    const { cfg, keys, store, mem, log } = this.ctx;
    log.warn(`demoting (${mode})`);
    if (mode === 'graceful') await this.drainTransactions();
    await this.stopPg(mode === 'graceful' ? 'fast' : 'immediate');
    if (mode === 'graceful') {
      await store.compareAndDelete(keys.leader, { value: cfg.name }).catch((err) => log.warn('could not release the leader key', { err }));
      mem.releasedLockAt = this.ctx.now();
    }
    mem.role = 'demoted';
    mem.shouldRun = !inp.shuttingDown;
    mem.downSince = null;
    this.callback('on_role_change', 'demoted');
  }

  /**
   * Before a planned demotion (switchover, shutdown) stops PostgreSQL with `fast` — which terminates every session —
   * transactions in flight get up to DRAIN_TIMEOUT_MS to finish. The proxy pauses new transactions as soon as the
   * failover key appears, so with it in front this takes milliseconds and clients see no error; clients connected
   * directly that keep starting transactions only delay the stop by the bound.
   */
  private async drainTransactions(): Promise<void> {
    const { pg, log } = this.ctx;
    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    const sql = `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND xact_start IS NOT NULL AND state <> 'idle'`;
    for (;;) {
      const rows = await pg.query<{ n: number }>(sql, [], 2000).catch(() => null);
      const n = rows?.[0]?.n ?? 0;
      if (rows === null || n === 0) return;
      if (Date.now() >= deadline) {
        log.warn('stopping with transactions still in flight (they will be terminated)', { transactions: n, waited_ms: DRAIN_TIMEOUT_MS });
        return;
      }
      await delay(DRAIN_POLL_MS);
    }
  }

  /**
   * A former primary must not stream from a leader whose timeline forked before its own WAL end: it would stop
   * with "requested timeline is not a child of this server's history". pg_rewind (which is quick when nothing
   * diverged) makes it a valid replica again.
   */
  private async rewindIfDiverged(inp: ExecInput, leader: string): Promise<void> {
    const cd = await this.ctx.pg.controlData();
    const wasPrimary = cd && (cd.state === 'shut down' || cd.state === 'in production');
    const leaderTl = Number(inp.cluster?.members.get(leader)?.record.timeline ?? 0);
    if (!cd || !wasPrimary || !(leaderTl > cd.timeline)) return;
    await this.rewind(inp, leader);
  }

  private async rewind(inp: ExecInput, from: string): Promise<void> {
    const { pg, mem, log } = this.ctx;
    const addr = memberAddress(inp.cluster, from);
    if (!addr) throw new Error(`cannot rewind: member ${from} has no conn_url`);
    if (!inp.dynamic.postgresql.use_pg_rewind) throw Object.assign(new Error('this former primary diverged from the new leader and use_pg_rewind is off'), { rewindFailed: true });
    await pg.stop('fast', STOP_TIMEOUT_MS);
    log.info(`running pg_rewind from ${from}`);
    try {
      // pg_rewind may run crash recovery in single-user mode, which refuses standby mode; and it copies the source's
      // configuration files, so ours are written again (with standby.signal) by the start that follows.
      pg.removeStandbySignal();
      await pg.rewind(addr, 600_000);
      this.writeConf(inp, 'replica', from);
      mem.rewindFailed = false;
    } catch (err) {
      mem.rewindFailed = true;
      throw err;
    }
  }

  private async rewindThenStart(inp: ExecInput, from: string): Promise<void> {
    await this.rewind(inp, from);
    await this.startPg(inp, 'replica', from);
  }

  /** Leader, every cycle: the `status` key (optime, slots) when it changed, and a slot for every member. */
  private async leaderHousekeeping(inp: ExecInput): Promise<void> {
    const { keys, store } = this.ctx;
    if (!inp.pgStatus || inp.pgStatus.inRecovery) return;
    const { slots, retain } = inp.dynamic.postgresql.use_slots && inp.cluster ? await this.maintainSlots(inp.cluster) : { slots: null, retain: [] };
    await this.publishFailsafe(inp);
    const text = encodeStatus(inp.pgStatus.walPosition ?? 0, slots, retain);
    if (text !== this.lastStatusWritten) {
      await store.put(keys.status, text);
      this.lastStatusWritten = text;
    }
  }

  /** Carries out the slot policy (slots.ts) on the leader. */
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
      log.warn(`replication slot ${slot} was invalidated: its member fell more than max_slot_wal_keep_size behind and must be re-cloned; creating the slot again`);
      await pg.dropSlot(slot).then(() => pg.createSlot(slot)).catch((err) => log.warn(`could not recreate replication slot ${slot}`, { err }));
    }
    for (const slot of plan.create) await pg.createSlot(slot).catch((err) => log.warn(`could not create replication slot ${slot}`, { err }));
    for (const slot of plan.drop) {
      await pg.dropSlot(slot).then(
        () => log.warn(`dropped replication slot ${slot}: its member has been gone for ${MEMBER_SLOT_TTL_MS / 60_000} min`),
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
    for (const m of [...inp.cluster.members.values()].sort((a, b) => a.name.localeCompare(b.name))) want[m.name] = m.record.api_url;
    if (JSON.stringify(want) !== JSON.stringify(inp.cluster.failsafe ?? null)) await store.put(keys.failsafe, encodeJson(want));
  }

  /** Patroni's order: PostgreSQL first, then the `/sync` key names only standbys PostgreSQL already reports as sync. */
  private async setSync(standbys: readonly string[], inp: ExecInput): Promise<void> {
    const { pg, keys, store, cfg, mem } = this.ctx;
    const current = inp.cluster?.sync;
    const reported = new Set(inp.pgStatus?.replication.filter((r) => r.syncState === 'sync' || r.syncState === 'quorum').map((r) => r.applicationName) ?? []);
    // Shrinking: drop names from the key before PostgreSQL stops waiting for them.
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
      if (this.writeConf(inp, 'primary', null).changed) await pg.reload();
    }
    const confirmed = standbys.filter((s) => reported.has(s));
    const want = encodeSync(cfg.name, confirmed);
    const now = current ? encodeSync(current.leader ?? '', current.standbys) : '';
    if (want !== now) {
      if (current) await store.compareAndPut(keys.sync, want, { modRevision: current.modRevision });
      else await store.create(keys.sync, want);
    }
  }
}

