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
