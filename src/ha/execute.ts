/**
 * The act step: carries out a Decision's actions against the DCS and the local PostgreSQL. Long operations
 * (initdb, clone, start, promote, demote, rewind) run in the background while the loop keeps cycling (renewing the
 * lease, publishing "creating replica"), with `mem.busy` set so `decide` starts nothing else meanwhile.
 *
 * This file dispatches; the work is in execute-lifecycle.ts (bootstrap, clone, start, promote, demote, rewind) and
 * execute-upkeep.ts (the leader's status, slots, failsafe and sync keys).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { operationBackoffMs } from './crash-loop.js';
import { callback, writeConf, type ExecInput } from './execute-common.js';
import { Lifecycle } from './execute-lifecycle.js';
import { LeaderUpkeep } from './execute-upkeep.js';
import type { AgentContext } from './state.js';
import type { Action, Busy, Decision, LeaseAction } from './view.js';
import { runLeaseActions } from './execute-dcs.js';
import type { LeaseRun } from './decide-lease.js';

export { memberAddress, type ExecInput } from './execute-common.js';

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

export interface ExecutorOptions {
  /** Waits between polls (the demote drain); a test passes one that moves its fake clock. */
  readonly sleep?: (ms: number) => Promise<void>;
}

export class Executor {
  private background: Promise<void> | null = null;
  private readonly life: Lifecycle;
  private readonly upkeep: LeaderUpkeep;

  constructor(
    private readonly ctx: AgentContext,
    opts: ExecutorOptions = {},
  ) {
    this.life = new Lifecycle(ctx, opts.sleep ?? ((ms) => delay(ms)));
    this.upkeep = new LeaderUpkeep(ctx);
  }

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
      if (!(await this.life.acquireLeaderKey(a.reason))) return;
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
      .catch((err: Error & { detail?: string; code?: string }) => {
        mem.failures++;
        const wait = operationBackoffMs(mem.failures);
        mem.lastError = err.message;
        mem.retryAfter = this.ctx.now() + wait;
        log.error(`${long.kind} failed: ${err.message}`, {
          code: err.code,
          detail: err.detail,
          failures: mem.failures,
          retry_in_s: wait / 1000,
        });
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

  private async one(a: Action, inp: ExecInput): Promise<void> {
    const { ctx, life, upkeep } = this;
    const { cfg, keys, store, pg, mem, log } = ctx;
    switch (a.kind) {
      case 'bootstrap':
        return life.bootstrap(inp);
      case 'clone':
        return life.clone(inp, a.from);
      case 'start':
        if (a.as === 'replica' && a.leader) await life.rewindIfDiverged(inp, a.leader);
        return life.startPg(inp, a.as, a.leader);
      case 'restart':
        return life.restart(inp);
      case 'take_leadership':
        if (await life.acquireLeaderKey(a.reason)) await life.promote(inp);
        return;
      case 'promote':
        return life.promote(inp);
      case 'renew_lock':
        return upkeep.housekeeping(inp);
      case 'release_lock':
        await store.compareAndDelete(keys.leader, { value: cfg.name });
        mem.releasedLockAt = ctx.now();
        return;
      case 'demote':
        return life.demote(a.mode, inp);
      case 'follow': {
        const { changed } = writeConf(ctx, inp, 'replica', a.leader);
        if (changed && pg.isRunning()) {
          await pg.reload();
          callback(ctx, 'on_reload', 'replica');
        }
        log.info(`following ${a.leader}`);
        return;
      }
      case 'rewind':
        return life.rewindThenStart(inp, a.from);
      case 'reclone':
        return life.reclone(inp, a.from);
      case 'set_sync':
        return upkeep.setSync(a.standbys, inp);
      case 'clear_sync':
        return upkeep.clearSync(inp);
      case 'reload': {
        const role = inp.pgStatus && !inp.pgStatus.inRecovery ? 'primary' : 'replica';
        writeConf(ctx, inp, role, role === 'replica' ? mem.following : null);
        if (pg.isRunning()) await pg.reload();
        callback(ctx, 'on_reload', role);
        return;
      }
      case 'remove_dead_leader':
        if (await store.compareAndDelete(keys.leader, { value: a.leader, modRevision: a.modRevision }))
          log.warn(`removed the leader key of ${a.leader}: its REST API and PostgreSQL refuse connections`);
        return;
      case 'clear_failover':
        await store.delete(keys.failover);
        return;
    }
  }
}
