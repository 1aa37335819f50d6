/**
 * The conflict history: `pgkeel_mesh.conflicts` in the mesh database of every site. `mesh create` makes it (with
 * the extension); each site's agent inserts the conflicts its own leader logged (conflicts-collect.ts). The schema
 * is kept out of pglogical's replication set (pglogical.ts), so every site holds its own history, and physical
 * replication carries it to the site's replicas: it survives a failover. Rows are keyed by a hash of the site and
 * the log lines, so inserting one twice (an agent restarted before it saved its offset) keeps one.
 */
import type { Sql } from './engine.js';
import type { ConflictRow } from './conflicts-label.js';

export const HISTORY_SCHEMA = 'pgkeel_mesh';
export const HISTORY_TABLE = `${HISTORY_SCHEMA}.conflicts`;

const DDL = [
  `CREATE SCHEMA IF NOT EXISTS ${HISTORY_SCHEMA}`,
  `CREATE TABLE IF NOT EXISTS ${HISTORY_TABLE} (
     id text PRIMARY KEY,
     site text NOT NULL,
     member text NOT NULL,
     at timestamptz NOT NULL,
     relation text NOT NULL,
     key text NOT NULL,
     type text NOT NULL,
     resolution text NOT NULL,
     local_origin text,
     remote_origin text,
     local_commit_ts timestamptz,
     remote_commit_ts timestamptz,
     local_tuple text,
     remote_tuple text,
     raw text NOT NULL,
     recorded_at timestamptz NOT NULL DEFAULT now())`,
  `CREATE INDEX IF NOT EXISTS conflicts_at ON ${HISTORY_TABLE} (at)`,
];

/** Creates the history table when missing; returns whether it did. */
export async function ensureConflictHistory(db: Sql): Promise<boolean> {
  const had = await db.query(`SELECT to_regclass('${HISTORY_TABLE}') IS NOT NULL AS ok`);
  if (had[0]?.['ok'] === true) return false;
  for (const s of DDL) await db.query(s);
  return true;
}

/** What the collector inserts: a history row and the lines it came from. */
export type ConflictInsert = ConflictRow & { readonly raw: string };

export async function insertConflicts(db: Sql, rows: readonly ConflictInsert[]): Promise<void> {
  if (rows.length === 0) return;
  const json = JSON.stringify(rows.map(({ table, ...r }) => ({ ...r, relation: table })));
  await db.query(
    `INSERT INTO ${HISTORY_TABLE} (id, site, member, at, relation, key, type, resolution, local_origin, remote_origin,
                                   local_commit_ts, remote_commit_ts, local_tuple, remote_tuple, raw)
     SELECT id, site, member, at, relation, key, type, resolution, local_origin, remote_origin,
            local_commit_ts, remote_commit_ts, local_tuple, remote_tuple, raw
       FROM json_populate_recordset(NULL::${HISTORY_TABLE}, $1::json)
     ON CONFLICT (id) DO NOTHING`,
    [json],
  );
}

/** The history at or after `since` (epoch ms), optionally of one table, newest first; [] when there is none yet. */
export async function readConflicts(db: Sql, since: number, table?: string): Promise<ConflictRow[]> {
  const exists = await db.query(`SELECT to_regclass('${HISTORY_TABLE}') IS NOT NULL AS ok`);
  if (exists[0]?.['ok'] !== true) return [];
  const rows = await db.query<Record<string, unknown>>(
    `SELECT id, site, member, to_json(at) #>> '{}' AS at, relation, key, type, resolution, local_origin, remote_origin,
            local_commit_ts::text, remote_commit_ts::text, local_tuple, remote_tuple
       FROM ${HISTORY_TABLE}
      WHERE at >= to_timestamp($1::float8 / 1000)
        AND ($2::text IS NULL OR relation = $2 OR relation = 'public.' || $2 OR $2 = 'public.' || relation)
      ORDER BY at DESC, id`,
    [since, table ?? null],
  );
  return rows.map(({ relation, ...r }) => ({ ...r, table: relation }) as unknown as ConflictRow);
}

/** The TRUNCATEs pglogical queued (it replays them as statements, outside conflict handling). */
export async function queuedTruncates(db: Sql, since: number): Promise<Array<{ table: string; at: string }>> {
  const rows = await db.query<{ t: string; at: string }>(
    `SELECT (message->>'schema_name') || '.' || (message->>'table_name') AS t, queued_at::text AS at
       FROM pglogical.queue WHERE message_type = 'T' AND queued_at >= to_timestamp($1::float8 / 1000)`,
    [since],
  );
  return rows.map((r) => ({ table: r.t, at: r.at }));
}
