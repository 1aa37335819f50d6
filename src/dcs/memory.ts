/**
 * `MemoryStore`: the Store port in process, for tests of logic that writes the DCS. It mirrors etcd where the HA
 * logic could notice: one global revision per write (a lease revoke or prefix delete is one revision), a `value`
 * comparison on a missing key fails, a put without a lease detaches the key from its lease, watches replay history
 * from a revision and end with `onError` when that revision was compacted.
 *
 * Time comes only from the injected `now()`: leases expire lazily at every call and on `expireLeases()`, so a test
 * that moves a fake clock decides exactly when. Watch events are delivered in order on the microtask queue, never
 * inside the call that caused them.
 */
import type {
  Expect,
  KeyValue,
  LeaseId,
  PrefixSnapshot,
  PutOptions,
  Store,
  WatchCallbacks,
  WatchEvent,
  WatchHandle,
} from './store.js';
import { StoreError } from './store.js';

export interface MemoryStoreOptions {
  /** Milliseconds, any epoch; only differences matter. */
  readonly now: () => number;
  /** Revisions of history kept for watches; older ones count as compacted. Default 10 000. */
  readonly historyLimit?: number;
}

interface Lease {
  readonly ttlMs: number;
  expiresAt: number;
  readonly keys: Set<string>;
}

interface Watcher {
  readonly prefix: string;
  readonly cb: WatchCallbacks;
  closed: boolean;
}

interface Commit {
  readonly revision: number;
  readonly events: readonly WatchEvent[];
}

export class MemoryStore implements Store, AsyncDisposable {
  private readonly now: () => number;
  private readonly historyLimit: number;
  private readonly kvs = new Map<string, KeyValue>();
  private readonly leases = new Map<LeaseId, Lease>();
  private readonly watchers = new Set<Watcher>();
  private history: Commit[] = [];
  /** Like a fresh etcd: the empty store is at revision 1, the first write makes 2. */
  private rev = 1;
  private compactedRev = 0;
  private nextLease = 1;
  private closed = false;
  private unavailable = false;

  constructor(opts: MemoryStoreOptions) {
    this.now = opts.now;
    this.historyLimit = opts.historyLimit ?? 10_000;
  }

  /** The current store revision. */
  get revision(): number {
    return this.rev;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.enter();
    return this.kvs.get(key);
  }

  async getPrefix(prefix: string): Promise<PrefixSnapshot> {
    this.enter();
    const kvs = [...this.kvs.values()].filter((kv) => kv.key.startsWith(prefix)).sort(byKeyBytes);
    return { revision: this.rev, kvs };
  }

  async put(key: string, value: string, opts?: PutOptions): Promise<void> {
    this.enter();
    this.commit([this.write(key, value, opts?.lease ?? '0')]);
  }

  async create(key: string, value: string, opts?: PutOptions): Promise<boolean> {
    return await this.compareAndPut(key, value, { exists: false }, opts);
  }

  async compareAndPut(key: string, value: string, expect: Expect, opts?: PutOptions): Promise<boolean> {
    this.enter();
    if (!holds(this.kvs.get(key), expect)) return false;
    this.commit([this.write(key, value, opts?.lease ?? '0')]);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    this.enter();
    return this.commit(this.remove([key])) > 0;
  }

  async compareAndDelete(key: string, expect: Expect): Promise<boolean> {
    this.enter();
    if (!holds(this.kvs.get(key), expect)) return false;
    this.commit(this.remove([key]));
    return true;
  }

  async deletePrefix(prefix: string): Promise<number> {
    this.enter();
    return this.commit(this.remove([...this.kvs.keys()].filter((k) => k.startsWith(prefix))));
  }

  async grantLease(ttlSeconds: number): Promise<LeaseId> {
    this.enter();
    if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) {
      throw new StoreError('DCS_REQUEST', `lease TTL must be a positive whole number of seconds, got ${ttlSeconds}`);
    }
    const id = String(this.nextLease++);
    this.leases.set(id, { ttlMs: ttlSeconds * 1000, expiresAt: this.now() + ttlSeconds * 1000, keys: new Set() });
    return id;
  }

  async keepAlive(lease: LeaseId): Promise<boolean> {
    this.enter();
    const l = this.leases.get(lease);
    if (!l) return false;
    l.expiresAt = this.now() + l.ttlMs;
    return true;
  }

  async revokeLease(lease: LeaseId): Promise<void> {
    this.enter();
    this.revoke(lease);
  }

  watchPrefix(prefix: string, fromRevision: number, cb: WatchCallbacks): WatchHandle {
    const w: Watcher = { prefix, cb, closed: false };
    const handle: WatchHandle = { close: async () => void (w.closed = true) };
    if (this.closed || this.unavailable) {
      this.breakWatch(w, this.closed ? closedError() : unavailableError());
      return handle;
    }
    this.expireLeases();
    if (fromRevision <= this.compactedRev) {
      this.breakWatch(
        w,
        new StoreError('DCS_REQUEST', `watch from revision ${fromRevision}: compacted up to ${this.compactedRev}`),
      );
      return handle;
    }
    this.watchers.add(w);
    for (const c of this.history) if (c.revision >= fromRevision) this.deliver(w, c);
    return handle;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.watchers) w.closed = true;
    this.watchers.clear();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Revokes every lease whose deadline has passed by `now()`, in deadline order. Calls do this themselves too. */
  expireLeases(): void {
    const t = this.now();
    const due = [...this.leases].filter(([, l]) => l.expiresAt <= t).sort(([, a], [, b]) => a.expiresAt - b.expiresAt);
    for (const [id] of due) this.revoke(id);
  }

  /** Forgets history up to `revision`: a watch from there on ends with onError, as after etcd's compaction. */
  compact(revision: number): void {
    this.compactedRev = Math.max(this.compactedRev, Math.min(revision, this.rev));
    this.history = this.history.filter((c) => c.revision > this.compactedRev);
  }

  /**
   * Simulates losing the DCS: while on, every call rejects with DCS_UNAVAILABLE and every open watch ends with
   * onError. Leases keep their deadlines, as on a real etcd the client cannot reach.
   */
  setUnavailable(unavailable: boolean): void {
    this.unavailable = unavailable;
    if (!unavailable) return;
    for (const w of this.watchers) this.breakWatch(w, unavailableError());
    this.watchers.clear();
  }

  private enter(): void {
    if (this.closed) throw closedError();
    if (this.unavailable) throw unavailableError();
    this.expireLeases();
  }

  /** Applies a put at the next revision (not yet committed) and returns its event. */
  private write(key: string, value: string, lease: LeaseId): WatchEvent {
    if (lease !== '0' && !this.leases.has(lease)) {
      throw new StoreError('DCS_REQUEST', `requested lease not found: ${lease}`);
    }
    const old = this.kvs.get(key);
    if (old && old.lease !== '0') this.leases.get(old.lease)?.keys.delete(key);
    const revision = this.rev + 1;
    const kv: KeyValue = { key, value, createRevision: old?.createRevision ?? revision, modRevision: revision, lease };
    this.kvs.set(key, kv);
    if (lease !== '0') this.leases.get(lease)?.keys.add(key);
    return { type: 'put', kv };
  }

  private remove(keys: readonly string[]): WatchEvent[] {
    const events: WatchEvent[] = [];
    for (const key of [...keys].sort(byBytes)) {
      const old = this.kvs.get(key);
      if (!old) continue;
      if (old.lease !== '0') this.leases.get(old.lease)?.keys.delete(key);
      this.kvs.delete(key);
      events.push({ type: 'delete', key, modRevision: this.rev + 1 });
    }
    return events;
  }

  private revoke(lease: LeaseId): void {
    const l = this.leases.get(lease);
    if (!l) return;
    this.leases.delete(lease);
    this.commit(this.remove([...l.keys]));
  }

  /** Makes the events one revision (none if empty) and hands them to the watchers; returns how many there were. */
  private commit(events: readonly WatchEvent[]): number {
    if (events.length === 0) return 0;
    const c: Commit = { revision: ++this.rev, events };
    this.history.push(c);
    if (this.history.length > this.historyLimit) this.compact(this.rev - this.historyLimit);
    for (const w of this.watchers) this.deliver(w, c);
    return events.length;
  }

  private deliver(w: Watcher, c: Commit): void {
    const mine = c.events.filter((e) => (e.type === 'put' ? e.kv.key : e.key).startsWith(w.prefix));
    if (mine.length === 0) return;
    queueMicrotask(() => {
      if (!w.closed) w.cb.onEvents(mine, c.revision);
    });
  }

  private breakWatch(w: Watcher, err: Error): void {
    this.watchers.delete(w);
    queueMicrotask(() => {
      if (w.closed) return;
      w.closed = true;
      w.cb.onError(err);
    });
  }
}

/** etcd's comparison semantics: a missing key has modRevision 0, and a value comparison on it fails. */
function holds(kv: KeyValue | undefined, expect: Expect): boolean {
  if (expect.exists !== undefined && (kv !== undefined) !== expect.exists) return false;
  if (expect.value !== undefined && (kv === undefined || kv.value !== expect.value)) return false;
  if (expect.modRevision !== undefined && (kv?.modRevision ?? 0) !== expect.modRevision) return false;
  return true;
}

/** etcd orders keys by their bytes, which differs from UTF-16 order outside the BMP. */
function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function byKeyBytes(a: KeyValue, b: KeyValue): number {
  return byBytes(a.key, b.key);
}

function closedError(): StoreError {
  return new StoreError('DCS_CLOSED', 'the memory store is closed');
}

function unavailableError(): StoreError {
  return new StoreError('DCS_UNAVAILABLE', 'the memory store is unavailable (setUnavailable)');
}
