/**
 * `pgkeel mesh`'s error catalogue: stable codes, the sites, nodes and links involved as fields (never only in the
 * message). docs/errors.md lists them (config/errors-doc.ts). The CLI prints the message and exits 1 (2 for usage).
 */
export const meshErrorCatalogue = {
  MESH_USAGE: {
    where: 'mesh',
    summary:
      'The sites given to a mesh command are unusable as such: fewer than two, the same scope twice, a --site that is neither a local cluster directory nor a node config, or a mesh directory mismatch (`up --mesh` on a directory holding a plain cluster). Exit 2.',
  },
  MESH_NO_LEADER: {
    where: 'mesh',
    summary:
      'A site has no leader in its DCS (or its leader publishes no address), so it cannot join or be checked; the message names the site. Wait for its failover to finish, then run the command again.',
  },
  MESH_SETTINGS_REFUSED: {
    where: 'mesh',
    summary:
      "A site's agent refused the mesh settings in its dynamic configuration (PATCH /config answered an error); the problems are attached. Usually shared_preload_libraries: list it in postgresql.allow_dynamic_parameters of every node's config file, or set `shared_preload_libraries: pglogical` in each node's postgresql.parameters.",
  },
  MESH_PRELOAD_MISSING: {
    where: 'mesh',
    summary:
      "After the restart a site's leader still runs without a mesh setting (pglogical not in shared_preload_libraries, wal_level not logical, track_commit_timestamp off); the message names the site, the setting and the fix (allow_dynamic_parameters or the node's own postgresql.parameters).",
  },
  MESH_ENGINE_MISSING: {
    where: 'mesh',
    summary:
      'The replication engine is not installed on a site (`CREATE EXTENSION pglogical` failed: no such extension); install `postgresql-15-pglogical` on every member of every site.',
  },
  MESH_SQL_FAILED: {
    where: 'mesh',
    summary:
      "A statement of a mesh step failed on a site (the step, the site and PostgreSQL's message are given), e.g. a replicated table without a primary key, or a table missing on a subscriber while its data is copied. Nothing is rolled back: fix the cause and run `mesh create` again — every step is idempotent.",
  },
  MESH_BARRIER_TIMEOUT: {
    where: 'mesh',
    summary:
      "The barrier (every site's outgoing slots confirming its current WAL position) did not complete within the time allowed; a link is down or far behind — `pgkeel mesh status` shows which.",
  },
  MESH_NOT_CREATED: {
    where: 'mesh',
    summary:
      "A mesh command other than create found no mesh record in a site's DCS (the `mesh` key); run `pgkeel mesh create` first.",
  },
  MESH_TIMEOUT: {
    where: 'mesh',
    summary:
      'A site did not come back healthy (leader running with the new settings) within the time allowed after the restart the mesh settings need; the message names the site and what it last showed.',
  },
  // --- pre-flight, sequences and DDL (issue 14 deliverables 2 and 3: preflight.ts, sequences.ts, ddl.ts) ---
  MESH_SCHEMA_DIFFERS: {
    where: 'mesh',
    summary:
      "A user table's definition (columns with type, NOT NULL and default; primary key; unique constraints and indexes; replica identity) is not the same on every site, or the table is missing on one; the message names the table, the sites and what differs. Pre-flight refuses it; `mesh check` reports it (plain DDL run on one site). Make the schemas equal (`pgkeel mesh ddl` for changes).",
  },
  MESH_NO_REPLICA_IDENTITY: {
    where: 'mesh',
    summary:
      'A table that would be replicated has no primary key and no valid replica identity (REPLICA IDENTITY USING INDEX on a unique, non-partial, non-deferrable index over NOT NULL columns; FULL and NOTHING are not enough for pglogical); the message names the site and table. Add a primary key on every site.',
  },
  MESH_DEFERRABLE_UNIQUE: {
    where: 'mesh',
    summary:
      'A primary key or unique constraint is DEFERRABLE: the apply side cannot find conflicting rows through it; the message names the site, table and constraint. Make it NOT DEFERRABLE on every site.',
  },
  MESH_SEQUENCE_COLLIDES: {
    where: 'mesh',
    summary:
      "A serial or identity column's sequence would hand out the same values on two sites: INCREMENT BY below the number of sites, different increments, or two sites whose next values are equal modulo the increment; the message names the site, table, column and sequence. Fix: `pgkeel mesh sequences --apply` (INCREMENT BY with a per-site offset, or `--scheme snowflake`).",
  },
  MESH_CLOCK_SKEW: {
    where: 'mesh',
    summary:
      "Two sites' clocks are further apart than --max-clock-offset-ms (default 500), measured with clock_timestamp() round trips from where pgkeel runs; last-update-wins compares commit timestamps from different clocks. Fix NTP (chrony) on the hosts, or raise the bound knowingly.",
  },
  MESH_PREFLIGHT_REFUSED: {
    where: 'mesh',
    summary:
      '`mesh preflight` or `mesh create` found unsafe schemas or clocks: every problem is listed with its own code (MESH_SCHEMA_DIFFERS, MESH_NO_REPLICA_IDENTITY, …) and nothing was subscribed or changed on the tables. Exit 1.',
  },
  MESH_DDL_FAILED: {
    where: 'mesh',
    summary:
      "`mesh ddl` failed after blocking writes (the DDL itself, a barrier, or the schemas still differing after it); the message says which. Writes are unblocked in any case; if pgkeel died before that, run `pgkeel mesh ddl --unblock` (it resets default_transaction_read_only on every site's database).",
  },
  // ---- add-site / remove-site (join.ts, leave.ts) ----
  MESH_JOIN_FAILED: {
    where: 'mesh',
    summary:
      "A step of `mesh add-site` failed; the message names the step, the cause, and the two ways on: run the same add-site again (every step looks before it acts and resumes), or `mesh remove-site --remove SITE` (drops every link and slot towards the new site; the existing sites are as before). Until then the new site's database stays read-only for new sessions.",
  },
} as const;

export type MeshErrorCode = keyof typeof meshErrorCatalogue;

export class MeshError extends Error {
  constructor(
    readonly code: MeshErrorCode,
    message: string,
    readonly context: { readonly site?: string; readonly link?: string; readonly detail?: string } = {},
  ) {
    super(message);
    this.name = 'MeshError';
  }

  /** Extra lines the CLI prints after the message. */
  get detail(): string | undefined {
    return this.context.detail;
  }
}

export function isMeshError(e: unknown, code?: MeshErrorCode): e is MeshError {
  return e instanceof MeshError && (code === undefined || e.code === code);
}
