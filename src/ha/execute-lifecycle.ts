/**
 * The executor's lifecycle part: bootstrap, clone and re-clone, start and restart, take the leader key and promote,
 * demote (with the drain), rewind. Each runs in the background of the loop (execute.ts sets `mem.busy`); on failure
 * it throws, and what it leaves behind is documented at each step (execute-lifecycle.test.ts shows it).
 */
import { encodeJson } from '../dcs/layout.js';
import { nodeBackupSettings } from '../backup/archiving.js';
import type { HostPort } from '../postgres/local-instance.js';
import { HaError } from './errors.js';
import { describeTarget } from '../backup/recovery.js';
import { restoreTargetOf } from '../config/bootstrap-restore.js';
import { callback, confInput, memberAddress, writeConf, type ExecInput } from './execute-common.js';
import type { AgentContext } from './state.js';

export const START_TIMEOUT_MS = 120_000;
export const STOP_TIMEOUT_MS = 30_000;
const PROMOTE_TIMEOUT_MS = 60_000;
const CLONE_TIMEOUT_MS = 3600_000;
/** A bootstrap from a backup: the restore and the replay of the archived WAL up to the target. */
const RESTORE_TIMEOUT_MS = 4 * 3600_000;
const REWIND_TIMEOUT_MS = 600_000;
/** A planned demotion waits at most this long for client transactions in flight before the fast stop. */
export const DRAIN_TIMEOUT_MS = 5_000;
export const DRAIN_POLL_MS = 50;
const DRAIN_QUERY_TIMEOUT_MS = 2000;

export class Lifecycle {
  constructor(
    private readonly ctx: AgentContext,
    private readonly sleep: (ms: number) => Promise<void>,
  ) {}

  async startPg(inp: ExecInput, role: 'primary' | 'replica', leader: string | null): Promise<void> {
    const { ctx } = this;
    const { pg, mem } = ctx;
    if (role === 'primary' && pg.hasStandbySignal()) {
      // A standby must become primary through promotion (a new timeline); starting it without standby.signal would
      // continue the old timeline from wherever replay stopped — a history pg_rewind could not tell apart.
      writeConf(ctx, inp, 'replica', null);
      mem.shouldRun = true;
      await pg.start(START_TIMEOUT_MS);
      await pg.promote(PROMOTE_TIMEOUT_MS);
      await this.appendHistory(inp).catch(() => {});
      writeConf(ctx, inp, 'primary', null);
      await pg.reload();
      mem.startedAt = ctx.now();
      mem.downSince = null;
      callback(ctx, 'on_start', role);
      return;
    }
    writeConf(ctx, inp, role, leader);
    mem.shouldRun = true;
    await pg.start(START_TIMEOUT_MS);
    mem.startedAt = ctx.now();
    mem.downSince = null;
    callback(ctx, 'on_start', role);
  }

  async stopPg(mode: 'fast' | 'immediate'): Promise<void> {
    await this.ctx.pg.stop(mode, STOP_TIMEOUT_MS);
    callback(this.ctx, 'on_stop', this.ctx.mem.role === 'primary' ? 'primary' : 'replica');
  }

  async clone(inp: ExecInput, member: string): Promise<void> {
    const { pg, mem } = this.ctx;
    const from = memberAddress(inp.cluster, member);
    if (!from)
      throw new HaError('HA_MEMBER_NO_CONN_URL', `cannot clone: member ${member} has no conn_url`, {
        member,
        operation: 'clone',
      });
    pg.writePgpass();
    await this.createReplica(inp, member, from);
    mem.sysid = null;
    await this.startPg(inp, 'replica', inp.cluster?.leader?.name ?? member);
  }

  /**
   * Fills the data directory by postgresql.create_replica_methods, in order: `backup` (the newest backup and the
   * archive; skipped without a repository, and on failure the next method is tried) or `basebackup` (pg_basebackup
   * from `member`, whose failure fails the operation). PostgreSQL is left stopped.
   */
  private async createReplica(inp: ExecInput, member: string, from: HostPort): Promise<void> {
    const { pg, log, cfg } = this.ctx;
    const methods = cfg.postgresql.create_replica_methods;
    for (const [i, method] of methods.entries()) {
      const last = i === methods.length - 1;
      if (method === 'basebackup') {
        log.info(`cloning from ${member} (${from.host}:${from.port})`);
        await pg.clone(from, CLONE_TIMEOUT_MS);
        return;
      }
      const repo = nodeBackupSettings(cfg, inp.dynamic.backup).settings;
      if (!repo) {
        log.info('create_replica_methods: backup skipped, this node has no backup repository');
        continue;
      }
      log.info(`creating the replica from the newest backup in ${repo.repo}`);
      try {
        await pg.cloneFromBackup({ repo: repo.repo, keyFile: repo.encryption_key_file }, CLONE_TIMEOUT_MS);
        return;
      } catch (err) {
        if (last) throw err;
        log.warn('creating the replica from a backup failed; trying the next method', { err });
      }
    }
    throw new HaError('HA_NO_REPLICA_METHOD', 'no create_replica_methods entry could create the replica', {
      node: cfg.name,
      operation: 'clone',
    });
  }

  async reclone(inp: ExecInput, member: string): Promise<void> {
    const { pg, mem } = this.ctx;
    await this.stopPg('fast');
    const from = memberAddress(inp.cluster, member);
    if (!from)
      throw new HaError('HA_MEMBER_NO_CONN_URL', `cannot re-clone: member ${member} has no conn_url`, {
        member,
        operation: 'reclone',
      });
    pg.moveAside('before-reclone');
    await this.createReplica(inp, member, from);
    mem.sysid = null;
    mem.rewindFailed = false;
    await this.startPg(inp, 'replica', member);
  }

  async restart(inp: ExecInput): Promise<void> {
    const { mem } = this.ctx;
    if (mem.role === 'primary') await this.ctx.vip?.drop('restarting PostgreSQL');
    await this.stopPg('fast');
    await this.startPg(inp, mem.role === 'primary' ? 'primary' : 'replica', mem.following);
    callback(this.ctx, 'on_restart', mem.role);
  }

  /** Creates the leader key with our lease if it is free. */
  async acquireLeaderKey(reason: string): Promise<boolean> {
    const { cfg, keys, store, mem, log } = this.ctx;
    if (mem.lease === null)
      throw new HaError('HA_NO_LEASE', 'no lease to take the leader key with', {
        node: cfg.name,
        operation: 'take_leadership',
      });
    if (!(await store.create(keys.leader, cfg.name, { lease: mem.lease }))) {
      log.info('lost the leader race; another member took the key first');
      return false;
    }
    mem.lastRenew = { ok: true, at: this.ctx.now() };
    log.info(`took the leader key: ${reason}`);
    return true;
  }

  /**
   * initdb (or, with bootstrap.restore, a restore of another cluster's backup recovered to its target and promoted)
   * after winning the `initialize` race, then start, the replication role, the leader key, the system id.
   * Any failure rolls back: PostgreSQL stopped, the data directory moved aside, our leader key and the still-empty
   * `initialize` key deleted — so this member or another retries from scratch.
   */
  async bootstrap(inp: ExecInput): Promise<void> {
    const { cfg, keys, store, pg, mem, log } = this.ctx;
    const restore = cfg.bootstrap.restore;
    const target = restore ? restoreTargetOf(restore) : null;
    if (!(await store.create(keys.initialize, ''))) {
      log.info('another member is initializing the cluster');
      return;
    }
    log.info(
      restore && target
        ? `won the initialize race: restoring a backup of ${restore.repo} to ${describeTarget(target)}`
        : 'won the initialize race: running initdb',
    );
    try {
      if (restore && target)
        await pg.restoreFrom(
          { repo: restore.repo, keyFile: restore.encryption_key_file, backupId: restore.backup, target },
          confInput(this.ctx, inp, 'primary', null),
          RESTORE_TIMEOUT_MS,
        );
      else await pg.initdb();
      await this.startPg(inp, 'primary', null);
      await pg.ensureReplicationRole();
      if (mem.lease === null) throw new HaError('HA_NO_LEASE', 'no lease', { node: cfg.name, operation: 'bootstrap' });
      if (!(await store.create(keys.leader, cfg.name, { lease: mem.lease })))
        throw new HaError(
          'HA_BOOTSTRAP_LEADER_TAKEN',
          'the leader key was taken while this member was initializing the cluster',
          { node: cfg.name, operation: 'bootstrap' },
        );
      const cd = await pg.controlData();
      if (!cd)
        throw new HaError('HA_BOOTSTRAP_NO_CONTROL_DATA', "cannot read the new cluster's control data", {
          node: cfg.name,
          operation: 'bootstrap',
        });
      mem.sysid = cd.sysid;
      await store.put(keys.initialize, cd.sysid);
      await store.create(keys.config, encodeJson(cfg.bootstrap.dcs));
      mem.lastRenew = { ok: true, at: this.ctx.now() };
      mem.role = 'primary';
      callback(this.ctx, 'on_role_change', 'primary');
      log.info(restore ? 'initialized a new cluster from a backup' : 'initialized a new cluster', {
        sysid: cd.sysid,
      });
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

  async promote(inp: ExecInput): Promise<void> {
    const { ctx } = this;
    const { pg, mem, log, keys, store, cfg } = ctx;
    const st = await pg.status().catch(() => null);
    if (st?.inRecovery !== false) {
      // PostgreSQL removes standby.signal itself while promoting; touching it first crashes the startup process.
      await pg.promote(PROMOTE_TIMEOUT_MS);
      writeConf(ctx, inp, 'primary', null);
      if (pg.isRunning()) await pg.reload();
      // pg_rewind on the old primary reads the new timeline from this node's control file: checkpoint now.
      await pg.checkpoint(60_000).catch((err) => log.warn('checkpoint after promote failed', { err }));
      await this.appendHistory(inp);
    }
    mem.following = null;
    mem.role = 'primary';
    await pg.ensureReplicationRole().catch((err) => log.warn('could not ensure the replication role', { err }));
    if (inp.cluster?.failover) await store.delete(keys.failover).catch(() => {});
    callback(ctx, 'on_role_change', 'primary');
    log.info(`${cfg.name} is now the primary`);
  }

  /** Appends the switch recorded in the newest timeline history file to the DCS `history` key. */
  private async appendHistory(inp: ExecInput): Promise<void> {
    const { pg, keys, store, cfg } = this.ctx;
    const last = await pg.latestTimelineSwitch();
    if (!last) return;
    // A wall-clock time, as Patroni writes it: ctx.now is the agent's wall clock.
    const entry = [last.timeline, last.lsn, last.reason, new Date(this.ctx.now()).toISOString(), cfg.name];
    const history = [...(inp.cluster?.history ?? []).filter((h) => h[0] !== entry[0]), entry];
    await store.put(keys.history, encodeJson(history));
  }

  async demote(mode: 'graceful' | 'immediate' | 'offline', inp: ExecInput): Promise<void> {
    const { cfg, keys, store, mem, log } = this.ctx;
    log.warn(`demoting (${mode})`);
    // Clients on the VIP must not reach a primary that is about to stop taking writes (policy in src/vip/policy.ts).
    await this.ctx.vip?.drop(`demoting (${mode})`);
    if (mode === 'graceful') await this.drainTransactions();
    await this.stopPg(mode === 'graceful' ? 'fast' : 'immediate');
    if (mode === 'graceful') {
      await store
        .compareAndDelete(keys.leader, { value: cfg.name })
        .catch((err) => log.warn('could not release the leader key', { err }));
      mem.releasedLockAt = this.ctx.now();
    }
    mem.role = 'demoted';
    mem.shouldRun = !inp.shuttingDown;
    mem.downSince = null;
    callback(this.ctx, 'on_role_change', 'demoted');
  }

  /**
   * Before a planned demotion (switchover, shutdown) stops PostgreSQL with `fast` — which terminates every session —
   * transactions in flight get up to DRAIN_TIMEOUT_MS to finish. The proxy pauses new transactions as soon as the
   * failover key appears, so with it in front this takes milliseconds and clients see no error; clients connected
   * directly that keep starting transactions only delay the stop by the bound. A failed count ends the wait.
   */
  private async drainTransactions(): Promise<void> {
    const { pg, log } = this.ctx;
    const deadline = this.ctx.now() + DRAIN_TIMEOUT_MS;
    for (;;) {
      const n = await pg.transactionsInFlight(DRAIN_QUERY_TIMEOUT_MS).catch(() => null);
      if (n === null || n === 0) return;
      if (this.ctx.now() >= deadline) {
        log.warn('stopping with transactions still in flight (they will be terminated)', {
          transactions: n,
          waited_ms: DRAIN_TIMEOUT_MS,
        });
        return;
      }
      await this.sleep(DRAIN_POLL_MS);
    }
  }

  /**
   * A former primary must not stream from a leader whose timeline forked before its own WAL end: it would stop
   * with "requested timeline is not a child of this server's history". pg_rewind (which is quick when nothing
   * diverged) makes it a valid replica again.
   */
  async rewindIfDiverged(inp: ExecInput, leader: string): Promise<void> {
    const cd = await this.ctx.pg.controlData();
    const wasPrimary = cd && (cd.state === 'shut down' || cd.state === 'in production');
    const leaderTl = Number(inp.cluster?.members.get(leader)?.record.timeline ?? 0);
    if (!cd || !wasPrimary || !(leaderTl > cd.timeline)) return;
    await this.rewind(inp, leader);
  }

  /** pg_rewind from `from`; a failure of pg_rewind itself sets `mem.rewindFailed`, so decide re-clones instead. */
  async rewind(inp: ExecInput, from: string): Promise<void> {
    const { ctx } = this;
    const { pg, mem, log } = ctx;
    const addr = memberAddress(inp.cluster, from);
    if (!addr)
      throw new HaError('HA_MEMBER_NO_CONN_URL', `cannot rewind: member ${from} has no conn_url`, {
        member: from,
        operation: 'rewind',
      });
    if (!inp.dynamic.postgresql.use_pg_rewind)
      throw new HaError(
        'HA_REWIND_DISABLED',
        'this former primary diverged from the new leader and use_pg_rewind is off',
        { member: from, operation: 'rewind', node: ctx.cfg.name },
      );
    await pg.stop('fast', STOP_TIMEOUT_MS);
    log.info(`running pg_rewind from ${from}`);
    try {
      // pg_rewind may run crash recovery in single-user mode, which refuses standby mode; and it copies the source's
      // configuration files, so ours are written again (with standby.signal) by the start that follows.
      pg.removeStandbySignal();
      await pg.rewind(addr, REWIND_TIMEOUT_MS);
      writeConf(ctx, inp, 'replica', from);
      mem.rewindFailed = false;
    } catch (err) {
      mem.rewindFailed = true;
      throw err;
    }
  }

  async rewindThenStart(inp: ExecInput, from: string): Promise<void> {
    await this.rewind(inp, from);
    await this.startPg(inp, 'replica', from);
  }
}
