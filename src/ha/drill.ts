/**
 * Fault injection for `pgkeel drill` (docs/drill.md), at the agent's I/O edge only — decide() never sees a drill:
 *
 * - `isolate`: for N seconds every DCS call of this agent (HA loop, REST API, backups) fails as if etcd were
 *   unreachable, and open watches end. The agent then goes down its ordinary DCS-loss path (a leader demotes unless
 *   failsafe_mode keeps it), and its lease expires in etcd as for a partitioned host.
 * - `crash`: the loop SIGKILLs its own postmaster and then does nothing for N seconds — no lease renewal, no restart
 *   of PostgreSQL — so the leader key expires exactly as if the host had died; afterwards it resumes and rejoins as
 *   any crashed member does (pg_rewind when its timeline forked).
 *
 * `DrillHooks` is the state (two deadlines, time injected); `wrap(store)` returns the Store the agent runs on, which
 * consults it before every call. The REST endpoint that starts a drill is refused unless the operator opted in
 * (`restapi.allow_drills`, with REST authentication): src/api/actions-drill.ts.
 */
import { StoreError, type Store, type WatchCallbacks, type WatchHandle } from '../dcs/store.js';

export const DRILL_FAULTS = ['crash', 'isolate'] as const;
export type DrillFault = (typeof DRILL_FAULTS)[number];

/** The longest fault one request may inject: a forgotten drill must end by itself. */
export const MAX_DRILL_SECONDS = 600;

export interface DrillStatus {
  readonly fault: DrillFault;
  /** Epoch ms when the fault ends. */
  readonly until: number;
}

export class DrillHooks {
  private isolatedUntil = 0;
  private crashedUntil = 0;
  private readonly watches = new Set<{ cb: WatchCallbacks; inner: WatchHandle | null; ended: boolean }>();

  constructor(private readonly now: () => number) {}

  /** The fault in force now, if any. */
  active(): DrillStatus | null {
    const t = this.now();
    if (t < this.isolatedUntil) return { fault: 'isolate', until: this.isolatedUntil };
    if (t < this.crashedUntil) return { fault: 'crash', until: this.crashedUntil };
    return null;
  }

  isolated(): boolean {
    return this.now() < this.isolatedUntil;
  }

  crashed(): boolean {
    return this.now() < this.crashedUntil;
  }

  /** Cuts this agent off the DCS for `seconds`; open watches end now (their owners re-watch, and fail, meanwhile). */
  isolate(seconds: number): void {
    this.isolatedUntil = this.now() + seconds * 1000;
    for (const w of [...this.watches]) this.endWatch(w, this.unavailable());
  }

  /** Marks the crash window; the loop (agent.ts) kills PostgreSQL and sits it out. */
  crash(seconds: number): void {
    this.crashedUntil = this.now() + seconds * 1000;
  }

  private unavailable(): StoreError {
    const left = Math.max(0, Math.ceil((this.isolatedUntil - this.now()) / 1000));
    return new StoreError('DCS_UNAVAILABLE', `drill: this member is isolated from the DCS (${left} s left)`);
  }

  private endWatch(w: { cb: WatchCallbacks; inner: WatchHandle | null; ended: boolean }, err: Error): void {
    if (w.ended) return;
    w.ended = true;
    this.watches.delete(w);
    void w.inner?.close().catch(() => {});
    queueMicrotask(() => w.cb.onError(err));
  }

  /** The store the agent uses: `inner`, except that every call fails while isolated. */
  wrap(inner: Store): Store {
    const gate = async <T>(call: () => Promise<T>): Promise<T> => {
      if (this.isolated()) throw this.unavailable();
      return call();
    };
    return {
      get: (key) => gate(() => inner.get(key)),
      getPrefix: (prefix) => gate(() => inner.getPrefix(prefix)),
      put: (key, value, opts) => gate(() => inner.put(key, value, opts)),
      create: (key, value, opts) => gate(() => inner.create(key, value, opts)),
      compareAndPut: (key, value, expect, opts) => gate(() => inner.compareAndPut(key, value, expect, opts)),
      delete: (key) => gate(() => inner.delete(key)),
      compareAndDelete: (key, expect) => gate(() => inner.compareAndDelete(key, expect)),
      deletePrefix: (prefix) => gate(() => inner.deletePrefix(prefix)),
      grantLease: (ttl) => gate(() => inner.grantLease(ttl)),
      keepAlive: (lease) => gate(() => inner.keepAlive(lease)),
      revokeLease: (lease) => gate(() => inner.revokeLease(lease)),
      watchPrefix: (prefix, fromRevision, cb) => {
        const w: { cb: WatchCallbacks; inner: WatchHandle | null; ended: boolean } = { cb, inner: null, ended: false };
        if (this.isolated()) {
          this.endWatch(w, this.unavailable());
          return { close: async () => {} };
        }
        this.watches.add(w);
        w.inner = inner.watchPrefix(prefix, fromRevision, {
          onEvents: (events, revision) => {
            if (!w.ended) cb.onEvents(events, revision);
          },
          onError: (err) => {
            if (w.ended) return;
            w.ended = true;
            this.watches.delete(w);
            cb.onError(err);
          },
        });
        return {
          close: async () => {
            w.ended = true;
            this.watches.delete(w);
            await w.inner?.close();
          },
        };
      },
      close: () => inner.close(),
    };
  }
}
