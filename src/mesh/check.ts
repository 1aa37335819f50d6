/**
 * `pgkeel mesh check [--table T]`: a barrier on every site (each site's changes confirmed by all its peers), then per
 * replicated table the row count and an order-independent hash of its rows on every site; the tables that differ,
 * and for those small enough to list (KEY_SCAN_MAX rows on every site) the primary keys whose rows differ.
 *
 * The barrier is what makes the comparison meaningful only while the sites are write-free: rows written after a
 * site's barrier may be on it and not yet on its peers (`mesh check` does not block writes; `mesh ddl` does).
 */
import type { MeshEngine, Sql } from './engine.js';
import { MeshError } from './errors.js';
import { compareDigests, differingKeys, type CheckResult, type SiteDigests, type TableDiff } from './compare.js';
// --- schema hash (issue 14 deliverable 3: plain DDL on one site) ---
import { readSchemas } from './preflight.js';
import { schemaDiffs, type SchemaDiff } from './schema.js';

/** The row verdict (`converged` stays row-level) plus the tables whose definition differs between sites. */
export interface MeshCheckResult extends CheckResult {
  readonly schemaDiffers: readonly SchemaDiff[];
}
// --- end schema hash ---

/** Tables with at most this many rows on every site get their differing keys listed. */
export const KEY_SCAN_MAX = 100_000;

export interface CheckSite {
  readonly scope: string;
  readonly db: Sql;
}

async function digest(db: Sql, table: string): Promise<{ rows: number; hash: string } | undefined> {
  // The name as PostgreSQL quotes it (a --table given by the user is never pasted into SQL as typed).
  const found = await db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table]);
  const rel = found[0]?.t;
  if (!rel) return undefined;
  // md5 of the row's text form; its first 15 hex digits (60 bits) summed as numeric: order-independent, no overflow.
  const r = await db.query<{ rows: string; hash: string }>(
    `SELECT count(*)::text AS rows,
            coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint::numeric), 0)::text AS hash
       FROM ${rel} AS t`,
    [],
    600_000,
  );
  return { rows: Number(r[0]?.rows ?? 0), hash: r[0]?.hash ?? '0' };
}

/** row(primary key columns)::text → md5(row::text); null when the table has no primary key. */
export async function keyHashes(db: Sql, table: string): Promise<Map<string, string> | null> {
  const pk = await db.query<{ col: string }>(
    `SELECT quote_ident(a.attname) AS col FROM pg_index i
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
      WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)`,
    [table],
  );
  if (pk.length === 0) return null;
  const rel = (await db.query<{ t: string }>('SELECT $1::regclass::text AS t', [table]))[0]?.t as string;
  const cols = pk.map((p) => `t.${p.col}`).join(', ');
  const key = pk.length === 1 ? `(${cols})::text` : `row(${cols})::text`;
  const rows = await db.query<{ k: string; h: string }>(
    `SELECT ${key} AS k, md5(t::text) AS h FROM ${rel} AS t`,
    [],
    600_000,
  );
  return new Map(rows.map((r) => [r.k, r.h]));
}

export async function barrierAll(sites: readonly CheckSite[], engine: MeshEngine, timeoutMs: number): Promise<void> {
  for (const s of sites) {
    try {
      await engine.barrier(s.db, timeoutMs);
    } catch (err) {
      throw new MeshError(
        'MESH_BARRIER_TIMEOUT',
        `site ${s.scope}: its changes were not confirmed by every peer within ${Math.round(timeoutMs / 1000)} s (${(err as Error).message}); see \`pgkeel mesh status\``,
        { site: s.scope },
      );
    }
  }
}

export async function checkMesh(
  sites: readonly CheckSite[],
  engine: MeshEngine,
  opts: { table?: string; barrierTimeoutMs: number },
): Promise<MeshCheckResult> {
  await barrierAll(sites, engine, opts.barrierTimeoutMs);
  const names = new Set<string>();
  if (opts.table !== undefined) names.add(opts.table);
  else for (const s of sites) for (const t of await engine.replicatedTables(s.db)) names.add(t);
  const digests = new Map<string, SiteDigests>();
  for (const s of sites) {
    const d = new Map<string, { rows: number; hash: string }>();
    for (const t of names) {
      const g = await digest(s.db, t);
      if (g) d.set(t, g);
    }
    digests.set(s.scope, d);
  }
  const { tables, differing } = compareDigests(digests);
  // A table asked for by name but missing everywhere is reported, not silently "converged".
  for (const t of names)
    if (!tables.includes(t)) differing.push({ table: t, rows: Object.fromEntries(sites.map((s) => [s.scope, null])) });
  const out: TableDiff[] = [];
  for (const d of differing) {
    const counts = Object.values(d.rows);
    if (counts.some((n) => n === null || n > KEY_SCAN_MAX)) {
      out.push(d);
      continue;
    }
    const perSite = new Map<string, Map<string, string>>();
    for (const s of sites) {
      const m = await keyHashes(s.db, d.table);
      if (m) perSite.set(s.scope, m);
    }
    if (perSite.size !== sites.length) {
      out.push(d);
      continue;
    }
    const k = differingKeys(perSite);
    out.push({ ...d, keys: k.keys, keysDiffering: k.total });
  }
  // --- schema hash: every user table's definition compared (MESH_SCHEMA_DIFFERS lines; `--table` narrows it) ---
  const schemaDiffers = schemaDiffs(await readSchemas(sites)).filter(
    (d) => opts.table === undefined || d.table === opts.table || d.table === `public.${opts.table}`,
  );
  return { converged: out.length === 0, tables: [...names].sort(), differing: out, schemaDiffers };
}
