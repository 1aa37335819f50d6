/**
 * `pgkeel mesh ddl "SQL"`: a schema change on every site of a mesh, with writes stopped while it travels.
 *
 *   block writes on every site → barrier → pglogical.replicate_ddl_command(SQL, '{ddl_sql}') on the first site (run
 *   there, queued to the peers through the ddl_sql replication set) → barrier → the schema hash equal everywhere →
 *   new tables added to the replication set on every site → unblock (always, in a finally).
 *
 * Blocking: `ALTER DATABASE db SET default_transaction_read_only = on` (new sessions start read-only) and the
 * database's other client backends terminated (their open transactions roll back). pglogical's apply workers are
 * background workers that read the database's settings only when they start, so the ones running keep applying —
 * including the queued DDL — while clients cannot write. pgkeel's own agent and metrics sessions (application_name
 * `pgkeel`, `pgkeel-metrics`) are left alone: they never write user tables. A client that runs
 * `SET default_transaction_read_only = off` itself is not stopped. If pgkeel dies between block and unblock, the
 * setting stays: `pgkeel mesh ddl --unblock` resets it on every site. An apply worker that restarts during the block
 * starts read-only and refuses queued DDL (measured; see readOnlyAppliers): the DDL is not sent then, and unblocking
 * restarts subscriptions left down by it.
 *
 * pglogical runs the command with search_path = '' on every node: name objects schema-qualified (`public.t`).
 */
import { barrierAll } from './check.js';
import type { MeshEngine, Sql } from './engine.js';
import { MeshError } from './errors.js';
import { readSchemas } from './preflight.js';
import { schemaDiffs, schemaDiffText } from './schema.js';
import { quoteIdent } from './schema-sql.js';

/** The replication set pglogical's replicate_ddl_command queues into by default. */
export const DDL_SET = 'ddl_sql';

export interface DdlSite {
  readonly scope: string;
  readonly db: Sql;
}

export interface DdlIo {
  readonly progress: (line: string) => void;
  readonly timeoutMs: number;
  readonly database: string;
}

const UNBLOCK_HINT = 'run `pgkeel mesh ddl --unblock` to reset default_transaction_read_only on every site';

/** Adds ddl_sql to every subscription of this site that lacks it (so DDL queued by a peer reaches it); returns them. */
export async function ensureDdlSets(db: Sql): Promise<string[]> {
  const subs = await db.query<{ name: string; sets: string[] | null }>(
    'SELECT subscription_name AS name, replication_sets AS sets FROM pglogical.show_subscription_status()',
  );
  const missing = subs.filter((s) => !(s.sets ?? []).includes(DDL_SET)).map((s) => s.name);
  for (const name of missing)
    await db.query('SELECT pglogical.alter_subscription_add_replication_set($1, $2)', [name, DDL_SET]);
  return missing;
}

/** New sessions read-only, other client sessions of the database ended; returns how many were ended. */
export async function blockWrites(s: DdlSite, database: string): Promise<number> {
  await s.db.query(`ALTER DATABASE ${quoteIdent(database)} SET default_transaction_read_only = on`);
  blockedAt.set(s, (await s.db.query<{ t: string }>('SELECT clock_timestamp()::text AS t'))[0]?.t ?? '');
  await s.db.query('SET default_transaction_read_only = off');
  const r = await s.db.query<{ n: number }>(
    `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
        AND application_name NOT IN ('pgkeel', 'pgkeel-metrics')`,
  );
  return r[0]?.n ?? 0;
}

/** When each site's block began (its own clock): apply workers started later are read-only. */
const blockedAt = new WeakMap<DdlSite, string>();

/**
 * Measured on PostgreSQL 15 + pglogical 2.4.2: an apply worker that (re)starts while its database is blocked reads
 * default_transaction_read_only = on, applies rows (pglogical writes them below the executor) but fails queued DDL
 * ("cannot execute ALTER TABLE in a read-only transaction"), exits, and after two quick retries may stay down for
 * minutes. So the DDL is not sent while any such worker runs.
 */
async function readOnlyAppliers(s: DdlSite): Promise<number> {
  const since = blockedAt.get(s);
  if (!since) return 0;
  const r = await s.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE backend_type LIKE 'pglogical apply%' AND datname = current_database() AND backend_start >= $1::timestamptz`,
    [since],
  );
  return r[0]?.n ?? 0;
}

/** Restarts this site's subscriptions pglogical shows as down (a worker that failed queued DDL while blocked). */
export async function restartDownSubscriptions(db: Sql): Promise<string[]> {
  const down = await db.query<{ name: string }>(
    `SELECT subscription_name AS name FROM pglogical.show_subscription_status() WHERE status = 'down'`,
  );
  for (const { name } of down) {
    await db.query('SELECT pglogical.alter_subscription_disable($1, true)', [name]);
    await db.query('SELECT pglogical.alter_subscription_enable($1, true)', [name]);
  }
  return down.map((d) => d.name);
}

/** Resets the block on every site it can reach (and restarts down subscriptions); the sites where it failed. */
export async function unblockWrites(sites: readonly DdlSite[], database: string): Promise<string[]> {
  const failed: string[] = [];
  for (const s of sites)
    try {
      // A session opened while blocked is read-only itself (ALTER DATABASE is refused in it) until it says otherwise.
      await s.db.query('SET default_transaction_read_only = off');
      await s.db.query(`ALTER DATABASE ${quoteIdent(database)} RESET default_transaction_read_only`);
      await restartDownSubscriptions(s.db);
    } catch (e) {
      failed.push(`${s.scope}: ${(e as Error).message}`);
    }
  return failed;
}

async function stage<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const msg = e instanceof MeshError ? `${e.code}: ${e.message}` : (e as Error).message;
    throw new MeshError('MESH_DDL_FAILED', `mesh ddl: ${what} failed: ${msg}`, {
      ...(e instanceof MeshError && e.context.detail ? { detail: e.context.detail } : {}),
    });
  }
}

export async function meshDdl(sites: readonly DdlSite[], engine: MeshEngine, sql: string, io: DdlIo): Promise<void> {
  const first = sites[0];
  if (!first) throw new MeshError('MESH_USAGE', 'mesh ddl needs the sites');
  let failed: string[] = [];
  try {
    for (const s of sites) {
      const n = await stage(`blocking writes on ${s.scope}`, () => blockWrites(s, io.database));
      io.progress(`${s.scope}: writes blocked (${n} client session(s) ended)`);
    }
    await stage('the barrier before the DDL', () => barrierAll(sites, engine, io.timeoutMs));
    io.progress('barrier: every site caught up');
    for (const s of sites) {
      const n = await stage(`checking the apply workers on ${s.scope}`, () => readOnlyAppliers(s));
      if (n)
        throw new MeshError(
          'MESH_DDL_FAILED',
          `mesh ddl: ${n} pglogical apply worker(s) on ${s.scope} restarted while writes were blocked; they would refuse the DDL as read-only — nothing was changed, run the command again`,
        );
    }
    await stage(`the DDL on ${first.scope}`, () =>
      first.db.query('SELECT pglogical.replicate_ddl_command($1, ARRAY[$2])', [sql, DDL_SET], io.timeoutMs),
    );
    io.progress(`${first.scope}: DDL run and queued to the peers`);
    await stage('the barrier after the DDL', () => barrierAll(sites, engine, io.timeoutMs));
    const diffs = schemaDiffs(await readSchemas(sites));
    if (diffs.length)
      throw new MeshError('MESH_DDL_FAILED', 'mesh ddl: the schemas still differ after the DDL', {
        detail: schemaDiffText(diffs).join('\n'),
      });
    io.progress('schema hash equal on every site');
    for (const s of sites) {
      const added = await stage(`adding new tables on ${s.scope}`, () => engine.ensureTables(s.db));
      if (added.length) io.progress(`${s.scope}: replicating ${added.join(', ')}`);
    }
  } finally {
    failed = await unblockWrites(sites, io.database);
    io.progress(
      failed.length
        ? `writes are still blocked on ${failed.join('; ')}; ${UNBLOCK_HINT}`
        : 'writes unblocked on every site',
    );
  }
  if (failed.length)
    throw new MeshError(
      'MESH_DDL_FAILED',
      `mesh ddl: writes are still blocked on ${failed.join('; ')}; ${UNBLOCK_HINT}`,
    );
}
