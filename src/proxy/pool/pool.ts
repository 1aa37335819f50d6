/**
 * One pool of server connections (per listener role, database and user) and the clients waiting for one.
 * Synchronous state with `now` (ms) passed in; sockets stay outside behind `PoolIO`, so every decision here is
 * unit-tested without a network (pool.test.ts).
 *
 * Invariants: a server is in exactly one of `idle` (LIFO, as pgBouncer's default) or `active`; `connecting` counts
 * opens in flight; idle + active + connecting <= size, or <= size + reserveSize while the reserve is in use; waiters
 * are served first come, first served; a paused pool hands out nothing (clients queue) and closes servers marked
 * `closeNeeded` when they come back.
 *
 * Reserve (pgBouncer reserve_pool_size / reserve_pool_timeout, objects.c launch_new_connection): once the longest
 * waiter has waited reserveWaitMs with the pool at its size, one more server per such overdue waiter may open, up to
 * reserveSize extra. A server that would fall idle while the pool holds more than its size is closed instead, so
 * the extras last only as long as the queue that called for them (pgBouncer keeps them until server_idle_timeout;
 * closing at once keeps the database's connection count at pool_size outside peaks).
 */
import { ProxyError, ProxyErrorCode } from '../errors.js';

export interface PooledServer {
  /** Set when the server must not be reused (fenced node, lifetime, RECONNECT): closed when it comes back. */
  closeNeeded: boolean;
  readonly createdAt: number;
  idleSince: number;
}

export interface Waiter<S> {
  /** A server for this client; called from `offer`/`release`/`resume`, never from `request` itself. */
  assign(server: S): void;
  fail(err: ProxyError): void;
}

export interface PoolIO<S> {
  /** Starts opening one server connection; returns why it cannot when there is nowhere to connect (no leader). */
  open(): true | ProxyError;
  close(server: S, reason: string): void;
}

export interface PoolLimits {
  readonly size: number;
  /** Extra servers for waiters that waited reserveWaitMs; 0 = no reserve. */
  readonly reserveSize: number;
  /** 0 = the reserve is never used (as pgBouncer's reserve_pool_timeout 0). */
  readonly reserveWaitMs: number;
  readonly minSize: number;
  /** 0 = wait forever. */
  readonly queryWaitMs: number;
  /** 0 = keep idle servers. */
  readonly serverIdleMs: number;
  /** 0 = no limit. */
  readonly serverLifetimeMs: number;
  readonly retryMs: number;
}

interface Waiting<S> {
  readonly waiter: Waiter<S>;
  readonly since: number;
}

export class Pool<S extends PooledServer> {
  readonly idle: S[] = [];
  readonly active = new Set<S>();
  connecting = 0;
  paused = false;
  /** Logged-in clients of this pool (SHOW POOLS cl_active is this minus the waiting ones). */
  clients = 0;
  /** Why servers cannot be had right now (no leader, last connect failure); the error timed-out waiters get. */
  stall: ProxyError | null = null;
  private retryAt = 0;
  private queue: Waiting<S>[] = [];
  private head = 0;

  constructor(
    private readonly io: PoolIO<S>,
    public limits: PoolLimits,
    /** For messages: "db/user". */
    readonly label: string,
  ) {}

  get waiting(): number {
    return this.queue.length - this.head;
  }

  get total(): number {
    return this.idle.length + this.active.size + this.connecting;
  }

  /** Longest current wait in ms. */
  maxWait(now: number): number {
    const w = this.queue[this.head];
    return w ? Math.max(0, now - w.since) : 0;
  }

  /** An idle server right away, or null: the waiter is queued and gets `assign` or `fail` later. */
  request(waiter: Waiter<S>, now: number): S | null {
    if (!this.paused) {
      const s = this.popIdle();
      if (s) {
        this.active.add(s);
        return s;
      }
    }
    this.queue.push({ waiter, since: now });
    this.openAsNeeded(now);
    return null;
  }

  /** The waiter went away (client disconnected). */
  cancel(waiter: Waiter<S>): void {
    for (let i = this.head; i < this.queue.length; i++) {
      if (this.queue[i]?.waiter === waiter) {
        this.queue.splice(i, 1);
        return;
      }
    }
  }

  /** A new server finished logging in. */
  connected(server: S, now: number): void {
    this.connecting = Math.max(0, this.connecting - 1);
    this.stall = null;
    this.retryAt = 0;
    this.offer(server, now);
  }

  /**
   * An open failed. `fatal` (the server refused the login: bad password, no such database) fails every waiter now;
   * otherwise (network) waiters keep waiting and the pool retries after `retryMs`.
   */
  connectFailed(err: ProxyError, fatal: boolean, now: number): void {
    this.connecting = Math.max(0, this.connecting - 1);
    if (fatal) {
      for (const w of this.drainQueue()) w.fail(err);
      return;
    }
    this.stall = err;
    this.retryAt = now + this.limits.retryMs;
  }

  /** A linked server came back (transaction or session over). */
  release(server: S, now: number): void {
    this.active.delete(server);
    this.offer(server, now);
  }

  /** A server closed or was closed (wherever it was). */
  remove(server: S, now: number): void {
    this.active.delete(server);
    const i = this.idle.indexOf(server);
    if (i >= 0) this.idle.splice(i, 1);
    this.openAsNeeded(now);
  }

  pause(): void {
    this.paused = true;
  }

  resume(now: number): void {
    this.paused = false;
    this.dispatch(now);
  }

  /** Closes idle servers matching `which` and marks active ones so they close when released. */
  fence(which: (s: S) => boolean, reason: string): void {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const s = this.idle[i] as S;
      if (!which(s)) continue;
      this.idle.splice(i, 1);
      this.io.close(s, reason);
    }
    for (const s of this.active) if (which(s)) s.closeNeeded = true;
  }

  /** Topology changed or the retry delay passed: hand out idle servers, open new ones for waiters. */
  dispatch(now: number): void {
    while (!this.paused && this.waiting > 0) {
      const s = this.popIdle();
      if (!s) break;
      const w = this.shiftQueue() as Waiting<S>;
      this.active.add(s);
      w.waiter.assign(s);
    }
    this.openAsNeeded(now);
  }

  /** Periodic work: waiter timeouts, idle and lifetime closes, min_pool_size, connect retries. */
  tick(now: number): void {
    const l = this.limits;
    if (l.queryWaitMs > 0) {
      for (let w = this.queue[this.head]; w && now - w.since >= l.queryWaitMs; w = this.queue[this.head]) {
        this.shiftQueue();
        w.waiter.fail(this.timeoutError(now - w.since));
      }
    }
    for (let i = 0; i < this.idle.length; i++) {
      const s = this.idle[i] as S;
      const idleTooLong = l.serverIdleMs > 0 && now - s.idleSince >= l.serverIdleMs && this.total > l.minSize;
      const tooOld = l.serverLifetimeMs > 0 && now - s.createdAt >= l.serverLifetimeMs;
      if (!idleTooLong && !tooOld) continue;
      this.idle.splice(i--, 1);
      this.io.close(s, tooOld ? 'server_lifetime' : 'server_idle_timeout');
    }
    this.dispatch(now);
  }

  /** Every waiter, removed from the queue (shutdown, KILL). */
  drainQueue(): Waiter<S>[] {
    const out: Waiter<S>[] = [];
    for (let w = this.shiftQueue(); w; w = this.shiftQueue()) out.push(w.waiter);
    return out;
  }

  private offer(server: S, now: number): void {
    const l = this.limits;
    if (server.closeNeeded || (l.serverLifetimeMs > 0 && now - server.createdAt >= l.serverLifetimeMs)) {
      this.io.close(server, server.closeNeeded ? 'fenced' : 'server_lifetime');
      this.openAsNeeded(now);
      return;
    }
    const w = this.paused ? undefined : this.shiftQueue();
    if (w) {
      this.active.add(server);
      w.waiter.assign(server);
      return;
    }
    // `server` is not counted in total here: keeping it idle would leave the pool above its size (reserve in use).
    if (this.total >= l.size) {
      this.io.close(server, 'reserve_pool: not needed any more');
      return;
    }
    server.idleSince = now;
    this.idle.push(server);
  }

  private popIdle(): S | undefined {
    for (let s = this.idle.pop(); s; s = this.idle.pop()) {
      if (!s.closeNeeded) return s;
      this.io.close(s, 'fenced');
    }
    return undefined;
  }

  private openAsNeeded(now: number): void {
    if (this.paused || now < this.retryAt) return;
    const l = this.limits;
    const want = Math.max(this.waiting, this.clients > 0 ? l.minSize - this.idle.length - this.active.size : 0);
    while (this.connecting < want && this.total < l.size) if (!this.openOne()) return;
    if (this.total < l.size || l.reserveSize <= 0 || l.reserveWaitMs <= 0) return;
    // Opens in flight serve the head of the queue, which is where the overdue waiters are.
    const max = l.size + l.reserveSize;
    const overdue = this.overdue(now, l.reserveWaitMs, this.connecting + max - this.total);
    while (this.connecting < overdue && this.total < max) if (!this.openOne()) return;
  }

  private openOne(): boolean {
    const r = this.io.open();
    if (r !== true) {
      this.stall = r;
      return false;
    }
    this.connecting++;
    return true;
  }

  /** Waiters that have waited at least `ms`, counting at most `limit` (the queue is in arrival order). */
  private overdue(now: number, ms: number, limit: number): number {
    let n = 0;
    for (let i = this.head; i < this.queue.length && n < limit; i++, n++) {
      if (now - (this.queue[i] as Waiting<S>).since < ms) break;
    }
    return n;
  }

  private shiftQueue(): Waiting<S> | undefined {
    if (this.head >= this.queue.length) return undefined;
    const w = this.queue[this.head++];
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return w;
  }

  private timeoutError(waitedMs: number): ProxyError {
    const secs = (waitedMs / 1000).toFixed(1);
    if (this.stall) {
      return new ProxyError(
        this.stall.code,
        `${this.stall.message} (waited ${secs} s for a server connection for ${this.label})`,
        this.stall.context,
      );
    }
    return new ProxyError(
      ProxyErrorCode.QueryWaitTimeout,
      `query_wait_timeout: waited ${secs} s for a server connection for ${this.label}`,
      { pool: this.label },
    );
  }
}
