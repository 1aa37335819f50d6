/**
 * The pglogical 2.4.2 engine (Debian's postgresql-15-pglogical). The calls and their two dangerous defaults are in
 * ../shared/reference/multi-master.md §2: `forward_origins` defaults to '{all}' (ping-pong in a mesh) and
 * `pglogical.conflict_resolution` to apply_remote; both are overridden here.
 */
import type { Link } from './plan.js';
import type { MeshEngine, Sql, SubscriptionState } from './engine.js';

/** The replication set a mesh uses: pglogical's `default` replicates INSERT, UPDATE, DELETE and TRUNCATE. */
const SET = 'default';
/** Schemas never replicated; pgkeel_mesh holds each site's own conflict history (conflicts-store.ts). */
const SYSTEM_SCHEMAS = `('pg_catalog', 'information_schema', 'pglogical', 'pglogical_origin', 'pgkeel_mesh')`;

export const pglogical: MeshEngine = {
  name: 'pglogical',
  preload: 'pglogical',
  parameters: { 'pglogical.conflict_resolution': 'last_update_wins' },

  async ensureInstalled(db: Sql): Promise<boolean> {
    const had = await db.query(`SELECT 1 FROM pg_extension WHERE extname = 'pglogical'`);
    if (had.length) return false;
    await db.query('CREATE EXTENSION IF NOT EXISTS pglogical');
    return true;
  },

  async ensureNode(db: Sql, node: string, dsn: string): Promise<boolean> {
    const local = await db.query<{ node_name: string }>(
      'SELECT n.node_name FROM pglogical.local_node l JOIN pglogical.node n ON n.node_id = l.node_id',
    );
    if (local.length) {
      if (local[0]?.node_name !== node)
        throw new Error(`this database is already pglogical node "${local[0]?.node_name}", not "${node}"`);
      return false;
    }
    await db.query('SELECT pglogical.create_node(node_name := $1, dsn := $2)', [node, dsn]);
    return true;
  },

  async ensureTables(db: Sql): Promise<string[]> {
    // Ordinary and partitioned tables outside the system schemas, not yet in the set.
    const missing = await db.query<{ t: string }>(
      `SELECT c.oid::regclass::text AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ${SYSTEM_SCHEMAS}
          AND n.nspname NOT LIKE 'pg_%'
          AND c.oid NOT IN (SELECT rt.set_reloid FROM pglogical.replication_set_table rt
                              JOIN pglogical.replication_set rs ON rs.set_id = rt.set_id WHERE rs.set_name = $1)
        ORDER BY 1`,
      [SET],
    );
    for (const { t } of missing)
      await db.query('SELECT pglogical.replication_set_add_table(set_name := $1, relation := $2::regclass)', [SET, t]);
    return missing.map((m) => m.t);
  },

  async replicatedTables(db: Sql): Promise<string[]> {
    const rows = await db.query<{ t: string }>(
      `SELECT rt.set_reloid::regclass::text AS t FROM pglogical.replication_set_table rt
         JOIN pglogical.replication_set rs ON rs.set_id = rt.set_id WHERE rs.set_name = $1 ORDER BY 1`,
      [SET],
    );
    return rows.map((r) => r.t);
  },

  async subscriptions(db: Sql): Promise<SubscriptionState[]> {
    const rows = await db.query<{
      subscription_name: string;
      status: string;
      provider_node: string;
      slot_name: string;
    }>('SELECT subscription_name, status, provider_node, slot_name FROM pglogical.show_subscription_status()');
    return rows.map((r) => ({
      name: r.subscription_name,
      status: r.status,
      providerNode: r.provider_node,
      slot: r.slot_name,
    }));
  },

  async subscribe(db: Sql, link: Link, providerDsn: string): Promise<void> {
    // With pglogical's ddl_sql set from the start (`mesh ddl`'s queue): adding a set later restarts the apply worker,
    // and pglogical may take minutes to start it again (barriers stalled 80-120 s when create added it afterwards).
    await db.query(
      `SELECT pglogical.create_subscription(
         subscription_name := $1, provider_dsn := $2, replication_sets := ARRAY[$3, 'ddl_sql'],
         synchronize_structure := false, synchronize_data := $4, forward_origins := '{}')`,
      [link.subscription, providerDsn, SET, link.syncData],
    );
  },

  async waitSynced(db: Sql, subscription: string, timeoutMs: number): Promise<void> {
    await db.query('SELECT pglogical.wait_for_subscription_sync_complete($1)', [subscription], timeoutMs);
  },

  async barrier(db: Sql, timeoutMs: number): Promise<void> {
    // The wait's target is the insert position; right after a WAL switch (archive_timeout on an idle site) that is
    // just past the new segment's page header, which no walsender can confirm until a record follows: write one.
    await db.query(`SELECT pg_logical_emit_message(false, 'pgkeel', 'barrier')`, [], timeoutMs);
    await db.query('SELECT pglogical.wait_slot_confirm_lsn(NULL, NULL)', [], timeoutMs);
  },
};
