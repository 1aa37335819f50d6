/**
 * The pglogical 2.4.2 calls adding and removing a site needs beyond the engine port (engine.ts): held subscriptions,
 * slot positions, waiting for one slot, freezing the copied rows, dropping links and nodes, the write block, and the
 * schema copy for an empty new site. Names and signatures checked against pglogical--2.4.2.sql and REL2_4_2's
 * pglogical_sync.c / pglogical_conflict.c (docs/multi-master.md "Adding and removing a site" says why each exists).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { superuserEnv } from '../backup/dump.js';
import { DEFAULT_BIN_DIR } from '../backup/restore-start.js';
import { chownForPostgres, run } from '../lib/proc.js';
import type { Sql } from './engine.js';
import { HOLD_SET } from './join-plan.js';
import type { Link } from './plan.js';

const SET = 'default';

/** The provider slot pglogical names for a subscription (also the subscriber's replication origin). */
export async function slotName(db: Sql, database: string, providerNode: string, subscription: string): Promise<string> {
  const r = await db.query<{ s: string }>('SELECT pglogical.pglogical_gen_slot_name($1, $2, $3)::text AS s', [
    database,
    providerNode,
    subscription,
  ]);
  return r[0]?.s as string;
}

export async function slotState(db: Sql, slot: string): Promise<{ lsn: string | null; pid: number | null } | null> {
  const r = await db.query<{ lsn: string | null; pid: number | null }>(
    'SELECT confirmed_flush_lsn::text AS lsn, active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  return r[0] ?? null;
}

/** The subscription's replication sets, or null when there is no such subscription. */
export async function subscriptionSets(db: Sql, subscription: string): Promise<string[] | null> {
  const r = await db.query<{ sets: string[] }>(
    'SELECT sub_replication_sets AS sets FROM pglogical.subscription WHERE sub_name = $1',
    [subscription],
  );
  return r[0]?.sets ?? null;
}

/** Creates `link`'s subscription asking also for HOLD_SET: pglogical creates the provider slot (where the provider's
 *  WAL is now) and the origin, then its apply worker fails at START_REPLICATION ("replication set … not found") and
 *  retries — nothing is applied and the slot keeps its position until `release`. */
export async function subscribeHeld(db: Sql, link: Link, providerDsn: string): Promise<void> {
  await db.query(
    `SELECT pglogical.create_subscription(
       subscription_name := $1, provider_dsn := $2, replication_sets := ARRAY[$3, 'ddl_sql', $4],
       synchronize_structure := false, synchronize_data := false, forward_origins := '{}')`,
    [link.subscription, providerDsn, SET, HOLD_SET],
  );
}

/** Lets a held subscription stream: its worker restarts from the origin's position, i.e. the slot's start. */
export async function release(db: Sql, subscription: string): Promise<void> {
  await db.query('SELECT pglogical.alter_subscription_remove_replication_set($1, $2)', [subscription, HOLD_SET]);
}

/** Returns once `slot` has confirmed `lsn` (null: this node's current WAL position). */
export async function waitSlot(db: Sql, slot: string, lsn: string | null, timeoutMs: number): Promise<void> {
  await db.query('SELECT pglogical.wait_slot_confirm_lsn($1, $2::pg_lsn)', [slot, lsn], timeoutMs);
}

/**
 * VACUUM (FREEZE) of `tables`, then proof that every row committed before the call is frozen: the table's
 * relfrozenxid is at least an xid taken before the first VACUUM. A VACUUM freezes only rows older than the oldest
 * transaction running, and the seed link's apply worker keeps running short ones, so it is repeated (each pass skips
 * the pages already frozen) until the proof holds or `timeoutMs` passes. Returns the tables not frozen by then.
 */
export async function freeze(db: Sql, tables: readonly string[], timeoutMs: number): Promise<string[]> {
  const x = (await db.query<{ x: string }>('SELECT (txid_current() % 4294967296)::text AS x'))[0]?.x as string;
  const deadline = Date.now() + timeoutMs;
  const left: string[] = [];
  for (const t of tables) {
    const rel = (await db.query<{ r: string | null }>('SELECT to_regclass($1)::text AS r', [t]))[0]?.r;
    if (!rel) continue;
    for (let pass = 0; ; pass++) {
      await db.query(`VACUUM (FREEZE) ${rel}`, [], timeoutMs);
      const ok = await db.query<{ ok: boolean }>(
        'SELECT age(relfrozenxid) <= age($2::text::xid) AS ok FROM pg_class WHERE oid = $1::regclass',
        [rel, x],
      );
      if (ok[0]?.ok) break;
      if (Date.now() > deadline) {
        left.push(rel);
        break;
      }
      await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** pass, 1000)));
    }
  }
  return left;
}

export async function dropSubscription(db: Sql, subscription: string, timeoutMs: number): Promise<boolean> {
  const r = await db.query<{ d: boolean }>(
    'SELECT pglogical.drop_subscription($1, true) AS d',
    [subscription],
    timeoutMs,
  );
  return r[0]?.d === true;
}

/** Drops pglogical's record of `node` here (a peer's, or this site's own local node with its slots). */
export async function dropNode(db: Sql, node: string): Promise<boolean> {
  const r = await db.query<{ d: boolean }>('SELECT pglogical.drop_node($1, true) AS d', [node]);
  return r[0]?.d === true;
}

/** Drops a slot here; a walsender still holding it (its subscriber is gone or going) is ended first. */
export async function dropSlot(db: Sql, slot: string): Promise<boolean> {
  const s = await slotState(db, slot);
  if (!s) return false;
  if (s.pid !== null) await db.query('SELECT pg_terminate_backend($1)', [s.pid]);
  for (let i = 0; i < 50; i++) {
    const again = await slotState(db, slot);
    if (!again) return true;
    if (again.pid === null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await db.query('SELECT pg_drop_replication_slot($1)', [slot]);
  return true;
}

export async function localNode(db: Sql): Promise<string | null> {
  const has = await db.query(`SELECT 1 FROM pg_extension WHERE extname = 'pglogical'`);
  if (!has.length) return null;
  const r = await db.query<{ n: string }>(
    'SELECT n.node_name AS n FROM pglogical.local_node l JOIN pglogical.node n ON n.node_id = l.node_id',
  );
  return r[0]?.n ?? null;
}

/** New sessions of `database` start read-only (`on`) or as the server's default (`off`); this session stays
 *  read-write. Superusers can still `SET default_transaction_read_only = off`: this is a guard, not a lock. */
export async function blockWrites(db: Sql, database: string, on: boolean): Promise<void> {
  await db.query('SET default_transaction_read_only = off');
  const q = (await db.query<{ q: string }>('SELECT quote_ident($1) AS q', [database]))[0]?.q as string;
  await db.query(
    on
      ? `ALTER DATABASE ${q} SET default_transaction_read_only = on`
      : `ALTER DATABASE ${q} RESET default_transaction_read_only`,
  );
}

/** Which of `tables` exist here and hold at least one row. */
export async function nonEmpty(db: Sql, tables: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const t of tables) {
    const rel = (await db.query<{ r: string | null }>('SELECT to_regclass($1)::text AS r', [t]))[0]?.r;
    if (rel && (await db.query(`SELECT 1 FROM ${rel} LIMIT 1`)).length) out.push(rel);
  }
  return out;
}

/** User tables outside the system and engine schemas. */
export async function userTableCount(db: Sql): Promise<number> {
  const r = await db.query<{ c: string }>(
    `SELECT count(*)::text AS c FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pglogical',
        'pglogical_origin') AND n.nspname NOT LIKE 'pg_%'`,
  );
  return Number(r[0]?.c ?? 0);
}

export interface Endpoint {
  readonly host: string;
  readonly port: number;
  readonly auth: { readonly username: string; readonly password: string };
}

/**
 * The seed's schema (pg_dump --schema-only, pglogical's schemas left out, as pglogical's own structure sync does)
 * replayed into the new site's database in one transaction. pglogical's synchronize_structure is not used: it
 * restores through the new site's node DSN with an `options` of its own, which would drop the read-only override.
 */
export async function copySchema(from: Endpoint, to: Endpoint, database: string, binDir = DEFAULT_BIN_DIR) {
  const dir = await mkdtemp(join(tmpdir(), 'pgkeel-mesh-schema-'));
  try {
    chownForPostgres(dir);
    const file = join(dir, 'schema.sql');
    const env = (e: Endpoint) => superuserEnv({ username: e.auth.username, password: e.auth.password }, e, database);
    const d = await run(
      join(binDir, 'pg_dump'),
      ['--schema-only', '--no-owner', '-N', 'pglogical', '-N', 'pglogical_origin', '-f', file],
      { env: env(from) },
    );
    if (d.code !== 0) throw new Error(`pg_dump --schema-only failed: ${d.stderr.trim()}`);
    const r = await run(join(binDir, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-1', '-f', file], {
      env: { ...env(to), PGOPTIONS: '-c default_transaction_read_only=off' },
    });
    if (r.code !== 0) throw new Error(`replaying the schema failed: ${r.stderr.trim()}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
