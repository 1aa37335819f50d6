/**
 * The Store port: the few operations pgkeel needs from a distributed configuration store.
 *
 * Two implementations pass one contract suite (`store.contract.ts`): `EtcdStore` (etcd v3 through its
 * JSON gateway, as Patroni's etcd3 module talks to it) and `MemoryStore` (in-process, for unit tests of
 * logic that writes the DCS).
 *
 * Contract, for every implementation:
 * - Keys and values are UTF-8 strings. Revisions are positive integers that grow with every write to the
 *   store (any key), as etcd's do; `modRevision` of a key is the revision of its last write.
 * - Every call either settles within the store's request timeout or rejects with a `StoreError`
 *   (code `DCS_UNAVAILABLE` when no endpoint answered, `DCS_REQUEST` for a refused request, `DCS_AUTH` when the
 *   store refused the credentials or their permissions). A call never
 *   hangs: the HA loop's safety argument (`loop_wait + 2*retry_timeout <= ttl`) depends on it.
 * - `create`, `compareAndPut` and `compareAndDelete` are atomic (one etcd transaction): they return false,
 *   and change nothing, when the comparison fails.
 * - A key written with a lease disappears when the lease expires or is revoked; `keepAlive` returns false
 *   (and never throws for this reason) when the lease no longer exists.
 */
export type LeaseId = string;

export interface KeyValue {
  readonly key: string;
  readonly value: string;
  readonly createRevision: number;
  readonly modRevision: number;
  /** '0' when the key has no lease. */
  readonly lease: LeaseId;
}

export interface PrefixSnapshot {
  /** The store revision at which the snapshot was read; watch from `revision + 1` to see every later change. */
  readonly revision: number;
  readonly kvs: readonly KeyValue[];
}

export type WatchEvent =
  | { readonly type: 'put'; readonly kv: KeyValue }
  | { readonly type: 'delete'; readonly key: string; readonly modRevision: number };

export interface PutOptions {
  readonly lease?: LeaseId;
}

/** What a compare-and-put or compare-and-delete requires of the key's current state (all given fields must hold). */
export interface Expect {
  readonly value?: string;
  readonly modRevision?: number;
  /** true: the key must exist; false: it must not. */
  readonly exists?: boolean;
}

export interface WatchHandle {
  /** Stops the watch; resolves when no more events will be delivered. */
  close(): Promise<void>;
}

export interface WatchCallbacks {
  onEvents(events: readonly WatchEvent[], revision: number): void;
  /** The watch broke (connection lost, compacted revision). The caller re-reads and re-watches. */
  onError(err: Error): void;
}

export interface Store {
  get(key: string): Promise<KeyValue | undefined>;
  getPrefix(prefix: string): Promise<PrefixSnapshot>;
  put(key: string, value: string, opts?: PutOptions): Promise<void>;
  /** Puts only if the key does not exist. */
  create(key: string, value: string, opts?: PutOptions): Promise<boolean>;
  compareAndPut(key: string, value: string, expect: Expect, opts?: PutOptions): Promise<boolean>;
  /** Deletes unconditionally; resolves true if a key was deleted. */
  delete(key: string): Promise<boolean>;
  compareAndDelete(key: string, expect: Expect): Promise<boolean>;
  deletePrefix(prefix: string): Promise<number>;
  grantLease(ttlSeconds: number): Promise<LeaseId>;
  /** Renews the lease once. false when the lease is gone (expired or revoked). */
  keepAlive(lease: LeaseId): Promise<boolean>;
  revokeLease(lease: LeaseId): Promise<void>;
  /** Watches every key under `prefix`, starting at `fromRevision` (inclusive). */
  watchPrefix(prefix: string, fromRevision: number, cb: WatchCallbacks): WatchHandle;
  close(): Promise<void>;
}

export type StoreErrorCode = 'DCS_UNAVAILABLE' | 'DCS_REQUEST' | 'DCS_AUTH' | 'DCS_CLOSED';

export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    readonly endpoint?: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}
