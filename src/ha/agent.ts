/**
 * The agent loop: gather → decide → act → publish, once per loop_wait or at once when the DCS watch reports a
 * change of the leader, failover, sync or config key. Every cycle explains itself in one sentence (`summary`).
 * Gathering is read DCS → lease step (decide-lease.ts, the only writes before the decision) → read the rest.
 */
import { BackupService, type BackupServiceStatus } from '../backup/agent-service.js';
import { clusterKeys, encodeJson, parseCluster, type Cluster, type MemberRecord } from '../dcs/layout.js';
import type { Store, WatchHandle } from '../dcs/store.js';
import type { DynamicConfig, NodeConfig } from '../config/node.js';
import type { Logger } from '../lib/log.js';
import { PostgresInstance, type PgStatus } from '../postgres/instance.js';
import { parseHostPort, formatHostPort } from '../lib/net.js';
import { memberApiUrl } from '../cluster/rest-client.js';
import { decide } from './decide.js';
import { HaError } from './errors.js';
import { Executor, memberAddress } from './execute.js';
import { checkCloneSpace } from '../postgres/aside.js';
import { gather, readDcs, type DcsRead, type Gathered } from './gather.js';
import { decideLease, leaseOutcome, type LeaseOutcome } from './decide-lease.js';
import { newMemory, type AgentContext, type AgentMemory } from './state.js';
import type { Decision, LeaseView, OperatorRequest } from './view.js';
import { EventRecorder, eventsFileFor } from '../observe/events/recorder.js';
import { decisionFacts, eventState } from '../observe/events/state.js';
import type { ClusterEvent } from '../observe/events/event.js';
import { lagSeconds } from '../observe/status/lag.js';
import { Watchdog } from './watchdog.js';
import { LinuxWatchdogDevice } from './watchdog-device.js';
import { vipCycleInput, vipFor } from '../vip/agent-vip.js';
import type { VipController } from '../vip/vip.js';
import type { DrillFault, DrillHooks } from './drill.js';
import { agentCollector, type ConflictCollector } from '../mesh/conflicts-collect.js';
import { keeperFor } from './logical-slots-keeper.js';

export const PGKEEL_VERSION = '0.1.0';

/** What the REST API and `status` report about this node: the last cycle's view. */
export interface AgentSnapshot {
  readonly name: string;
  readonly scope: string;
  readonly at: number;
  readonly gathered: Gathered | null;
  readonly decision: Decision | null;
  readonly memory: Readonly<AgentMemory>;
  readonly memberState: string;
  readonly role: 'primary' | 'replica' | 'uninitialized' | 'demoted';
}

const WAKE_KEYS = ['leader', 'failover', 'sync', 'config', 'initialize'] as const;

export type { OperatorRequest } from './view.js';

export class RequestRefused extends Error {
  constructor(
    message: string,
    /** HA_REINIT_NO_SPACE: the filesystem cannot hold the clone a reinitialize would make. */
    readonly code: 'HA_REQUEST_REFUSED' | 'HA_REINIT_NO_SPACE' = 'HA_REQUEST_REFUSED',
  ) {
    super(message);
  }
}

interface PendingRequest {
  readonly kind: OperatorRequest;
  readonly resolve: (summary: string) => void;
  readonly reject: (err: Error) => void;
}

export class Agent {
  readonly ctx: AgentContext;
  private readonly executor: Executor;
  private shuttingDown = false;
  private stopped = false;
  private wake: (() => void) | null = null;
  private pendingWake = false;
  private wakeOnIdle = false;
  private watch: WatchHandle | null = null;
  private last: AgentSnapshot;
  private lastSummary = '';
  /** The DCS config problems last logged: each is logged once when it appears, not every cycle. */
  private loggedConfigProblems = new Set<string>();
  private readonly requests: PendingRequest[] = [];
  /** WAL archiving and scheduled backups (src/backup/agent-service.ts). */
  readonly backup: BackupService;
  /** Transitions and decisions, for GET /events (src/observe/events/). */
  private readonly events: EventRecorder;
  /** Watchdog fencing (watchdog.ts): armed while this node leads, fed every cycle. */
  private readonly watchdog: Watchdog;
  /** The VIP this node holds while it leads (src/vip/); null without a `vip` section. */
  private readonly vip: VipController | null;
  /** A crash drill asked for and not yet carried out by the loop (drill.ts). */
  private pendingCrash: { seconds: number; resolve: (s: string) => void } | null = null;
  /** Mesh conflicts read from this node's server log (src/mesh/conflicts-collect.ts); idle outside a mesh. */
  readonly meshConflicts: ConflictCollector;

  /** `drills`: the fault hooks `store` was wrapped with (drill.ts); without them POST /drill is refused. */
  constructor(
    cfg: NodeConfig,
    store: Store,
    log: Logger,
    now: () => number = Date.now,
    private readonly drills: DrillHooks | null = null,
  ) {
    this.vip = vipFor(cfg, log);
    this.ctx = {
      cfg,
      keys: clusterKeys(cfg.scope, cfg.namespace),
      store,
      pg: new PostgresInstance(cfg, log),
      log,
      now,
      mem: newMemory(),
      ...(this.vip ? { vip: this.vip } : {}),
    };
    this.executor = new Executor(this.ctx);
    this.backup = new BackupService({ cfg, store, keys: this.ctx.keys, pg: this.ctx.pg, log, now });
    this.events = new EventRecorder({ log, file: eventsFileFor(cfg.postgresql.data_dir) });
    this.events.load();
    // --- mesh conflicts (issue 14): reads the site's `mesh` key; failures are logged by the collector, never thrown
    this.meshConflicts = agentCollector(
      cfg,
      async () => {
        const kv = await store.get(`${this.ctx.keys.prefix}mesh`);
        return kv ? JSON.parse(kv.value) : null;
      },
      log,
      now,
    );
    // --- end mesh conflicts
    this.watchdog = new Watchdog({
      mode: cfg.watchdog.mode,
      safetyMargin: cfg.watchdog.safety_margin,
      device: new LinuxWatchdogDevice(cfg.watchdog.device),
      log,
    });
    this.last = {
      name: cfg.name,
      scope: cfg.scope,
      at: 0,
      gathered: null,
      decision: null,
      memory: this.ctx.mem,
      memberState: 'starting',
      role: 'uninitialized',
    };
  }

  // --- What the REST API may ask of the agent (AgentPort in src/api/ports.ts); it uses nothing else of it. ---

  /**
   * The last cycle's view with the memory as it is now, copied and frozen: the loop and the executor replace the
   * memory's nested values (busy, lastRenew, lastCluster) rather than change them, so the copy holds still.
   */
  snapshot(): AgentSnapshot {
    return Object.freeze({ ...this.last, memory: Object.freeze({ ...this.ctx.mem }) });
  }

  /** POST /failsafe: a primary in failsafe mode confirmed itself to this replica at `at` (epoch ms). */
  noteFailsafePing(at: number): void {
    this.ctx.mem.failsafeSeenAt = at;
  }

  /** The cluster as the DCS holds it now (the snapshot's may be a cycle old); rejects when the DCS does not answer. */
  async readCluster(): Promise<Cluster> {
    const { store, keys } = this.ctx;
    return parseCluster(keys, await store.getPrefix(keys.prefix));
  }

  /** GET /events: what this agent recorded at or after `since` (epoch ms; undefined: all kept), oldest first. */
  recentEvents(since?: number): ClusterEvent[] {
    return this.events.since(since);
  }

  /**
   * POST /drill: starts a fault (drill.ts) and resolves with a sentence once it is in force — `isolate` at once,
   * `crash` when the loop, between two cycles, has killed PostgreSQL. Refused while another drill or a background
   * operation runs.
   */
  async drill(fault: DrillFault, seconds: number): Promise<string> {
    const hooks = this.drills;
    if (!hooks) throw new RequestRefused('this agent runs without drill hooks');
    const active = hooks.active();
    if (active || this.pendingCrash) throw new RequestRefused(`a ${active?.fault ?? 'crash'} drill is already running`);
    if (this.ctx.mem.busy) throw new RequestRefused(`busy (${this.ctx.mem.busy.what}); try again when it is done`);
    if (fault === 'isolate') {
      hooks.isolate(seconds);
      this.ctx.log.warn(`drill: isolated from the DCS for ${seconds} s (every DCS call fails)`, { drill: fault });
      this.poke();
      return `isolated from the DCS for ${seconds} s`;
    }
    return new Promise((resolve) => {
      this.pendingCrash = { seconds, resolve };
      this.poke();
    });
  }

  // --- end of the REST API's methods (request() and poke() below serve it too) ---

  backupStatus(): BackupServiceStatus {
    return this.backup.status();
  }

  /** Asks the loop to run a cycle now (REST actions, watch events). */
  poke(): void {
    if (this.wake) this.wake();
    else this.pendingWake = true;
  }

  /**
   * Queues an operator request; resolves with a sentence when it is done, rejects with RequestRefused when it cannot
   * run (e.g. reinitialize on the leader, cluster paused for restart is allowed as in Patroni).
   */
  async request(kind: OperatorRequest): Promise<string> {
    if (kind === 'reinitialize') {
      const refusal = await this.cloneSpaceRefusal();
      if (refusal) throw new RequestRefused(refusal, 'HA_REINIT_NO_SPACE');
    }
    return new Promise((resolve, reject) => {
      this.requests.push({ kind, resolve, reject });
      this.poke();
    });
  }

  /**
   * Would a re-clone fit on this node's filesystem? The data to clone is sized from the leader's databases (and the
   * local data directory), measured off the loop so the lease keeps being renewed meanwhile.
   */
  private async cloneSpaceRefusal(): Promise<string | null> {
    const { cfg, pg } = this.ctx;
    const cluster = this.last.gathered?.cluster;
    const leader = cluster?.leader?.name;
    const addr = leader && leader !== cfg.name ? memberAddress(cluster, leader) : null;
    const leaderBytes = addr ? await pg.remoteDatabaseBytes(addr) : null;
    return checkCloneSpace(cfg.postgresql.data_dir, cfg.postgresql.keep_moved_aside, leaderBytes);
  }

  /**
   * Settles the request decide ran or refused this cycle (always the first in line: only the loop takes from the
   * queue, and the snapshot showed that one). Returns it when it runs; a refusal rejects it at once.
   */
  private takeRequest(d: Decision): PendingRequest | null {
    if (!d.request) return null;
    const req = this.requests.shift() as PendingRequest;
    if (d.request.outcome === 'run') return req;
    req.reject(new RequestRefused(d.request.reason));
    return null;
  }

  /** Graceful stop: a leader hands over (demote, release the key) before the agent exits. */
  requestStop(): void {
    this.shuttingDown = true;
    this.poke();
  }

  private sleep(ms: number): Promise<void> {
    if (this.pendingWake) {
      this.pendingWake = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(t);
        self.wake = null;
        resolve();
      }
      this.wake = done;
    });
  }

  private startWatch(fromRevision: number): void {
    if (this.watch || this.stopped) return;
    const { keys, store, log } = this.ctx;
    const wakeKeys = new Set(WAKE_KEYS.map((k) => keys[k]));
    this.watch = store.watchPrefix(keys.prefix, fromRevision, {
      onEvents: (events) => {
        if (events.some((e) => wakeKeys.has(e.type === 'put' ? e.kv.key : e.key))) this.poke();
      },
      onError: (err) => {
        log.debug('DCS watch ended; it restarts next cycle', { err });
        this.watch = null;
      },
    });
  }

  /** Runs cycles until a graceful stop has completed. */
  async run(): Promise<void> {
    const { log } = this.ctx;
    log.info('agent starting', { scope: this.ctx.cfg.scope, name: this.ctx.cfg.name, version: PGKEEL_VERSION });
    while (!this.stopped) {
      if (this.pendingCrash) await this.sitOutCrash(this.pendingCrash);
      const started = this.ctx.now();
      let loopWait = this.ctx.cfg.bootstrap.dcs.loop_wait;
      try {
        loopWait = await this.cycle();
      } catch (err) {
        log.error(`HA cycle failed: ${(err as Error).message}`, { err });
      }
      if (this.shuttingDown && !this.ctx.mem.busy) break;
      const elapsed = this.ctx.now() - started;
      await this.sleep(Math.max(50, loopWait * 1000 - elapsed));
    }
    await this.finish();
  }

  /** One cycle; returns loop_wait in seconds from the effective config. */
  async cycle(): Promise<number> {
    const { ctx, watchdog } = this;
    const leaseClock = () => ({ now: ctx.now(), lastRenew: ctx.mem.lastRenew });
    watchdog.beforeCycle(leaseClock()); // before the DCS read, which may take up to retry_timeout
    const read = await readDcs(ctx);
    const lease = await this.leaseStep(read);
    watchdog.afterLease(leaseClock());
    const gathered = await gather(ctx, read, lease, {
      shuttingDown: this.shuttingDown,
      request: this.requests[0]?.kind ?? null,
    });
    const settings = gathered.observed.settings;
    const g = { ...gathered, observed: { ...gathered.observed, watchdog: watchdog.view(settings) } };
    // --- permanent logical slots (issue 14): what the promotion guard sees. ---
    const slotView = keeperFor(ctx).view(g.dynamic);
    if (slotView) g.observed = { ...g.observed, logicalSlots: slotView };
    // --- end permanent logical slots ---
    if (g.cluster && !this.watch) this.startWatch(g.cluster.revision + 1);
    this.logConfigProblems(g.configProblems);
    let decision = decide(g.observed);
    // Arm before a leading decision runs; in required mode a failure means deciding again, which refuses to lead.
    if (watchdog.gate(decision, settings)) {
      g.observed = { ...g.observed, watchdog: watchdog.view(settings) };
      decision = decide(g.observed);
    }
    const op = this.takeRequest(decision);
    if (decision.summary !== this.lastSummary) {
      ctx.log.info(decision.summary, { actions: decision.actions.map((a) => a.kind) });
      this.lastSummary = decision.summary;
    }
    const errorBefore = ctx.mem.lastError;
    try {
      await this.executor.run(decision, {
        cluster: g.cluster,
        dynamic: g.dynamic,
        pgStatus: g.pgStatus,
        shuttingDown: this.shuttingDown,
      });
    } catch (err) {
      op?.reject(err as Error);
      throw err;
    }
    await this.keepLogicalSlots(g, decision);
    if (op) {
      ctx.mem.lastError = null;
      void this.executor.idle().then(() => {
        if (ctx.mem.lastError && ctx.mem.lastError !== errorBefore)
          op.reject(new HaError('HA_REQUEST_FAILED', ctx.mem.lastError, { node: ctx.cfg.name }));
        else op.resolve(decision.summary);
      });
    }
    // A background operation (promote, start, clone…) changes what this member must publish: run the next cycle
    // as soon as it ends rather than after loop_wait, so the proxy sees role "master" the moment writes work.
    if (ctx.mem.busy && !this.wakeOnIdle) {
      this.wakeOnIdle = true;
      void this.executor.idle().finally(() => {
        this.wakeOnIdle = false;
        this.poke();
      });
    }
    watchdog.afterCycle(decision, settings, ctx.mem.busy, leaseClock());
    await this.vip?.cycle(vipCycleInput(g.observed, decision, ctx.mem.busy, this.shuttingDown, ctx.now()));
    const role = ctx.mem.busy ? ctx.mem.role : this.roleAfter(g, decision);
    ctx.mem.role = role;
    const memberState = this.memberState(g);
    this.last = {
      name: ctx.cfg.name,
      scope: ctx.cfg.scope,
      at: ctx.now(),
      gathered: g,
      decision,
      memory: ctx.mem,
      memberState,
      role,
    };
    this.events.observe(eventState(this.last, this.backup.status()), decisionFacts(this.last));
    if (g.cluster)
      await this.publish(g, memberState, role).catch((err) =>
        ctx.log.warn('could not publish the member record', { err }),
      );
    const leads = role === 'primary' && g.cluster?.leader?.name === ctx.cfg.name && !this.shuttingDown;
    this.backup.cycle(g.dynamic, leads, g.cluster);
    void this.meshConflicts.tick(leads); // mesh conflicts (issue 14): off the loop, never fatal
    return g.dynamic.loop_wait;
  }

  /**
   * A crash drill, between two cycles: fencing off (watchdog, VIP) as a dead host's would be, SIGKILL to the
   * postmaster, then no cycle — no lease renewal, no restart — until the window ends. Meanwhile the REST API answers
   * from a view that knows nothing (no health check passes); the cycle after it finds PostgreSQL down and rejoins.
   */
  private async sitOutCrash(req: { seconds: number; resolve: (s: string) => void }): Promise<void> {
    const { ctx } = this;
    const hooks = this.drills as DrillHooks;
    this.pendingCrash = null;
    hooks.crash(req.seconds);
    this.watchdog.disarm('drill: simulated crash');
    await this.vip?.drop('drill: simulated crash');
    const pid = ctx.pg instanceof PostgresInstance ? ctx.pg.postmasterPid() : null;
    try {
      if (pid !== null) process.kill(pid, 'SIGKILL');
    } catch (err) {
      ctx.log.warn(`drill: could not kill the postmaster (pid ${pid})`, { err });
    }
    ctx.log.warn(
      `drill: simulated crash, postmaster ${pid ?? '(not running)'} killed; no HA cycle for ${req.seconds} s`,
    );
    this.last = { ...this.last, at: ctx.now(), gathered: null, decision: null, memberState: 'crashed' };
    req.resolve(`crashed: PostgreSQL killed (pid ${pid ?? 'none'}); the agent sits out ${req.seconds} s`);
    while (hooks.crashed() && !this.shuttingDown) {
      const left = (hooks.active()?.until ?? ctx.now()) - ctx.now();
      await this.sleep(Math.max(10, Math.min(500, left)));
    }
    ctx.log.info('drill: the crash window is over; resuming the HA loop');
  }

  /**
   * Right after the DCS read, before anything else is observed or decided: keep our lease, adopt our leader key
   * (decide-lease.ts). The cycle's decision depends on the outcome — never lead on a lease that was not renewed.
   */
  private async leaseStep(read: DcsRead): Promise<LeaseOutcome> {
    const { ctx } = this;
    const view: LeaseView = {
      now: read.now,
      me: ctx.cfg.name,
      ttl: read.settings.ttl,
      dcs: read.dcs,
      lease: ctx.mem.lease,
      lastRenew: ctx.mem.lastRenew,
    };
    const outcome = leaseOutcome(view, await this.executor.runLease(decideLease(view)));
    ctx.mem.lastRenew = outcome.lastRenew;
    return outcome;
  }

  /** Parts of the DCS config this node ignores (malformed, or local-only parameters it does not allow), named. */
  private logConfigProblems(problems: readonly string[]): void {
    for (const p of problems) {
      if (this.loggedConfigProblems.has(p)) continue;
      const code = p.includes('CONFIG_PARAMETER_LOCAL_ONLY') ? 'CONFIG_PARAMETER_LOCAL_ONLY' : 'CONFIG_INVALID';
      this.ctx.log.warn(`ignoring part of the DCS config key: ${p}`, { code });
    }
    this.loggedConfigProblems = new Set(problems);
  }

  // --- permanent logical slots (issue 14, logical-slots.ts): a quiet replica copies and advances them. ---
  private async keepLogicalSlots(g: Gathered, decision: Decision): Promise<void> {
    const { ctx } = this;
    // Only a settled replica: the restart below starts PostgreSQL as mem.role says, and that must be 'replica'.
    if (ctx.mem.busy || decision.actions.length || this.shuttingDown || g.pgStatus?.inRecovery !== true) return;
    if (ctx.mem.role !== 'replica' || decision.role !== 'replica' || g.dynamic.pause) return;
    const inp = { cluster: g.cluster, dynamic: g.dynamic, pgStatus: g.pgStatus, shuttingDown: false };
    const restart = await keeperFor(ctx)
      .replicaCycle(g.cluster, g.dynamic, g.cluster?.leader?.name ?? null)
      .catch((err) => {
        ctx.log.warn('could not keep the permanent logical slots', { err });
        return false;
      });
    if (!restart) return;
    const summary = 'restarting PostgreSQL once to load the logical slots copied from the leader';
    ctx.log.info(summary);
    await this.executor.run({ summary, actions: [{ kind: 'restart' }], role: 'replica' }, inp);
  }
  // --- end permanent logical slots ---

  private roleAfter(g: Gathered, d: Decision): AgentSnapshot['role'] {
    if (g.observed.pg.dataDir === 'empty') return 'uninitialized';
    if (g.pgStatus) return g.pgStatus.inRecovery ? 'replica' : 'primary';
    return d.role;
  }

  private memberState(g: Gathered): string {
    const busy = this.ctx.mem.busy?.what;
    if (busy === 'bootstrap') return 'initializing new cluster';
    if (busy === 'clone') return 'creating replica';
    if (busy === 'start') return 'starting';
    if (busy === 'restart') return 'restarting';
    if (busy === 'demote') return 'stopping';
    if (busy === 'rewind') return 'running pg_rewind';
    if (busy === 'promote') return 'promoting';
    const pg = g.observed.pg;
    if (pg.dataDir === 'empty') return 'stopped';
    if (pg.accepting) return 'running';
    if (pg.running) return 'starting';
    return pg.shouldRun && pg.downSince !== null ? 'crashed' : 'stopped';
  }

  private memberRecord(g: Gathered, state: string, role: AgentSnapshot['role']): MemberRecord {
    const { cfg } = this.ctx;
    const pgAddr = parseHostPort(cfg.postgresql.connect_address);
    const st: PgStatus | null = g.pgStatus;
    const rec: MemberRecord = {
      conn_url: `postgres://${formatHostPort(pgAddr.host, pgAddr.port)}/postgres`,
      api_url: memberApiUrl(cfg),
      state,
      // Patroni 3.0.2 (Debian's patronictl) expects 'master'; Patroni 4 accepts both.
      role: role === 'primary' ? 'master' : role,
      version: PGKEEL_VERSION,
      pid: process.pid,
      data_dir: cfg.postgresql.data_dir,
    };
    if (st) {
      rec.timeline = st.timeline ?? undefined;
      if (st.inRecovery) {
        rec.xlog_location = st.walPosition ?? 0;
        if (st.receivedLsn !== null) rec.receive_lsn = st.receivedLsn;
        if (st.replayedLsn !== null) rec.replay_lsn = st.replayedLsn;
        rec.replication_state = st.streaming ? 'streaming' : 'in archive recovery';
        const lag = lagSeconds(st, this.ctx.now());
        if (lag !== null) rec.lag_seconds = lag;
      } else {
        rec.xlog_location = st.walPosition ?? 0;
      }
      if (st.pendingRestart) rec.pending_restart = true;
    }
    const tags = Object.fromEntries(Object.entries(cfg.tags).filter(([, v]) => v === true));
    if (Object.keys(tags).length) rec.tags = tags;
    if (g.dynamic.pause) rec.pause = true;
    return rec;
  }

  private async publish(g: Gathered, state: string, role: AgentSnapshot['role']): Promise<void> {
    const { store, keys, cfg, mem } = this.ctx;
    if (mem.lease === null) return;
    await store.put(keys.member(cfg.name), encodeJson(this.memberRecord(g, state, role)), { lease: mem.lease });
  }

  private async finish(): Promise<void> {
    const { ctx } = this;
    this.stopped = true;
    await this.watch?.close().catch(() => {});
    await this.executor.idle();
    // No more cycles feed it: disarm before a stop that may take longer than its timeout (a leader has demoted by now).
    this.watchdog.stop();
    await this.vip?.close();
    if (ctx.pg.isRunning())
      await ctx.pg.stop('fast', 60_000).catch((err) => ctx.log.error('could not stop PostgreSQL', { err }));
    // After PostgreSQL: its shutdown archives the last segments through the archiver's fast path.
    await this.backup.stop();
    await ctx.pg.disconnect();
    await this.meshConflicts.close();
    await keeperFor(ctx).close(); // permanent logical slots (issue 14)
    if (ctx.mem.lease) {
      await ctx.store.compareAndDelete(ctx.keys.leader, { value: ctx.cfg.name }).catch(() => {});
      await ctx.store.revokeLease(ctx.mem.lease).catch(() => {});
    }
    ctx.log.info('agent stopped');
  }

  /** The effective dynamic config as last seen (REST /config falls back to it). */
  dynamic(): DynamicConfig | null {
    return this.last.gathered?.dynamic ?? null;
  }

  cluster(): Cluster | undefined {
    return this.last.gathered?.cluster;
  }
}
