/**
 * The replication engine port: what the mesh orchestration (create.ts, check.ts, status.ts) needs from a
 * multi-master engine, so pglogical (pglogical.ts, the one packaged for Debian's PostgreSQL 15) can be joined later
 * by Spock or PostgreSQL 16's native `origin = none` without touching the orchestration.
 *
 * Contract: every `ensure*` is idempotent and returns whether it changed anything; every call runs on one site's
 * leader in the mesh database through `Sql`; nothing here reads the DCS.
 */
import type { Link } from './plan.js';

/** One site leader's database connection. Rows come back as objects keyed by column name. */
export interface Sql {
  query<R extends Record<string, unknown>>(text: string, params?: readonly unknown[], timeoutMs?: number): Promise<R[]>;
}

export interface SubscriptionState {
  readonly name: string;
  /** Engine's words: initializing, replicating, down, disabled, … */
  readonly status: string;
  readonly providerNode: string;
  /** The provider's slot; also the subscriber's replication origin. */
  readonly slot: string;
}

export interface MeshEngine {
  readonly name: string;
  /** The library that must be in shared_preload_libraries. */
  readonly preload: string;
  /** The engine's own settings (exact values), e.g. its conflict resolution. */
  readonly parameters: Readonly<Record<string, string>>;
  /** The extension exists in the database. */
  ensureInstalled(db: Sql): Promise<boolean>;
  /** This database is the engine node `node`, reachable by peers at `dsn`. */
  ensureNode(db: Sql, node: string, dsn: string): Promise<boolean>;
  /** Every user table is replicated (inserts, updates, deletes, truncates); returns the tables added now. */
  ensureTables(db: Sql): Promise<string[]>;
  /** The tables the engine replicates from this node, schema-qualified and quoted, sorted. */
  replicatedTables(db: Sql): Promise<string[]>;
  subscriptions(db: Sql): Promise<SubscriptionState[]>;
  /** Creates `link`'s subscription on its subscriber (db) from the provider at `providerDsn`; never forwards
   *  changes that did not originate on the provider (no loops). */
  subscribe(db: Sql, link: Link, providerDsn: string): Promise<void>;
  /** Waits until the subscription's initial copy is done. */
  waitSynced(db: Sql, subscription: string, timeoutMs: number): Promise<void>;
  /** Returns once every slot of this database has confirmed the node's current WAL position, i.e. every change made
   *  here before the call has reached every peer. */
  barrier(db: Sql, timeoutMs: number): Promise<void>;
}
