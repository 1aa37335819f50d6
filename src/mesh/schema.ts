/**
 * The mesh's schema rules, pure: a deterministic hash of every user table's definition (read from the catalogue by
 * schema-sql.ts), the table-level differences between sites, and the problems that make a table unsafe to replicate
 * multi-master (no primary key or valid replica identity, deferrable unique constraints). Sequences are in
 * sequences.ts, clocks in clock.ts; preflight.ts puts them together.
 *
 * The hash covers what replication and the convergence check depend on — columns (name, type, NOT NULL, default,
 * identity) in column order, the primary key, unique constraints and unique indexes, the replica identity — and not
 * names of constraints or indexes, nor sequence parameters (those differ per site by design, see sequences.ts).
 */
import { createHash } from 'node:crypto';
import type { MeshErrorCode } from './errors.js';

export interface ColumnDef {
  readonly name: string;
  /** format_type(): `integer`, `character varying(20)`, … */
  readonly type: string;
  readonly notNull: boolean;
  /** pg_get_expr of the default, null when none. */
  readonly default: string | null;
  /** pg_attribute.attidentity: '' (none), 'a' (ALWAYS), 'd' (BY DEFAULT). */
  readonly identity: string;
}

export interface UniqueDef {
  /** Constraint or index name (reported, not hashed). */
  readonly name: string;
  /** pg_get_constraintdef, or pg_get_indexdef with the index name removed. */
  readonly def: string;
  readonly deferrable: boolean;
  /** A constraint (PRIMARY KEY / UNIQUE) or a bare unique index. */
  readonly kind: 'primary' | 'constraint' | 'index';
}

export interface TableDef {
  /** Schema-qualified, each part quoted as needed: `public.t`, `app."Order"`. */
  readonly table: string;
  readonly columns: readonly ColumnDef[];
  /** The primary key and every unique constraint / unique index. */
  readonly uniques: readonly UniqueDef[];
  /** pg_class.relreplident: d (default: the primary key), n (nothing), f (full), i (index). */
  readonly replicaIdentity: string;
  /** With relreplident = i: the index and whether it is usable (unique, not partial, immediate, NOT NULL columns). */
  readonly identityIndex: { readonly name: string; readonly valid: boolean } | null;
}

/** One problem found before a mesh is joined (or by `mesh check`): a catalogue code and what it names. */
export interface Problem {
  readonly code: MeshErrorCode;
  readonly message: string;
  readonly site?: string;
  readonly table?: string;
  readonly column?: string;
  readonly constraint?: string;
}

/** One table whose definition is not the same on every site. */
export interface SchemaDiff {
  readonly table: string;
  /** Per site: the table's definition hash (12 hex digits), null when the table is missing there. */
  readonly sites: Readonly<Record<string, string | null>>;
  /** What differs, in words: "column c only on site1", "primary key", … */
  readonly what: readonly string[];
}

/** The replica identity in words that do not depend on index names. */
function replicaOf(t: TableDef): string {
  if (t.replicaIdentity !== 'i')
    return { d: 'default', n: 'nothing', f: 'full' }[t.replicaIdentity] ?? t.replicaIdentity;
  return `using ${t.uniques.find((u) => u.name === t.identityIndex?.name)?.def ?? 'a non-unique index'}`;
}

function canonical(t: TableDef): string {
  return JSON.stringify({
    c: t.columns.map((c) => [c.name, c.type, c.notNull, c.default, c.identity]),
    u: t.uniques.map((u) => [u.kind === 'primary' ? 'p' : 'u', u.def, u.deferrable]).sort(),
    r: replicaOf(t),
  });
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** One table's definition hash (12 hex digits). */
export function tableHash(t: TableDef): string {
  return sha(canonical(t)).slice(0, 12);
}

/** The hash of a whole schema: every table's name and definition, in name order. */
export function schemaHash(tables: readonly TableDef[]): string {
  const lines = [...tables].sort((a, b) => (a.table < b.table ? -1 : 1)).map((t) => `${t.table} ${canonical(t)}`);
  return sha(lines.join('\n')).slice(0, 16);
}

function columnWords(c: ColumnDef): string {
  const id = c.identity === 'a' ? ' generated always as identity' : c.identity === 'd' ? ' identity' : '';
  return `${c.type}${c.notNull ? ' not null' : ''}${c.default !== null ? ` default ${c.default}` : ''}${id}`;
}

/** In words, how the definitions of one table differ between sites (each present there). */
function describe(defs: ReadonlyMap<string, TableDef>): string[] {
  const what: string[] = [];
  const scopes = [...defs.keys()];
  const names = [...new Set([...defs.values()].flatMap((d) => d.columns.map((c) => c.name)))];
  for (const n of names) {
    const per = scopes.map((s) => defs.get(s)?.columns.find((c) => c.name === n));
    const having = scopes.filter((_, i) => per[i] !== undefined);
    if (having.length < scopes.length) what.push(`column ${n} only on ${having.join(', ')}`);
    else if (new Set(per.map((c) => columnWords(c as ColumnDef))).size > 1)
      what.push(`column ${n}: ${scopes.map((s, i) => `${s} ${columnWords(per[i] as ColumnDef)}`).join(' vs ')}`);
  }
  const order = new Set(scopes.map((s) => (defs.get(s) as TableDef).columns.map((c) => c.name).join(',')));
  if (what.length === 0 && order.size > 1) what.push('column order');
  const part = (label: string, f: (t: TableDef) => string) => {
    const vals = scopes.map((s) => f(defs.get(s) as TableDef));
    if (new Set(vals).size > 1)
      what.push(`${label}: ${scopes.map((s, i) => `${s} ${vals[i] || 'none'}`).join(' vs ')}`);
  };
  const uniq = (t: TableDef, k: 'primary' | 'other') =>
    t.uniques
      .filter((u) => (k === 'primary') === (u.kind === 'primary'))
      .map((u) => `${u.def}${u.deferrable && !/DEFERRABLE/.test(u.def) ? ' DEFERRABLE' : ''}`)
      .sort()
      .join('; ');
  part('primary key', (t) => uniq(t, 'primary'));
  part('unique constraints/indexes', (t) => uniq(t, 'other'));
  part('replica identity', replicaOf);
  return what.length ? what : ['definition'];
}

/** The tables whose definition is not the same on every site (missing on one counts), sorted by name. */
export function schemaDiffs(sites: ReadonlyMap<string, readonly TableDef[]>): SchemaDiff[] {
  const byTable = new Map<string, Map<string, TableDef>>();
  for (const [scope, tables] of sites)
    for (const t of tables) {
      const m = byTable.get(t.table) ?? new Map<string, TableDef>();
      m.set(scope, t);
      byTable.set(t.table, m);
    }
  const out: SchemaDiff[] = [];
  for (const table of [...byTable.keys()].sort()) {
    const defs = byTable.get(table) as Map<string, TableDef>;
    const hashes = Object.fromEntries(
      [...sites.keys()].map((s) => [s, defs.has(s) ? tableHash(defs.get(s) as TableDef) : null]),
    );
    const vals = Object.values(hashes);
    if (vals.every((h) => h !== null && h === vals[0])) continue;
    const missing = Object.keys(hashes).filter((s) => hashes[s] === null);
    const what = missing.length ? [`missing on ${missing.join(', ')}`] : describe(defs);
    out.push({ table, sites: hashes, what });
  }
  return out;
}

export function schemaDiffProblems(diffs: readonly SchemaDiff[]): Problem[] {
  return diffs.map((d) => ({
    code: 'MESH_SCHEMA_DIFFERS',
    table: d.table,
    message: `table ${d.table} differs between sites (${Object.entries(d.sites)
      .map(([s, h]) => `${s} ${h ?? 'missing'}`)
      .join(', ')}): ${d.what.join('; ')}`,
  }));
}

/** A table's key for replication: a primary key (replica identity default) or a valid REPLICA IDENTITY USING INDEX. */
function identityProblem(site: string, t: TableDef): Problem | null {
  const pk = t.uniques.find((u) => u.kind === 'primary');
  if (t.replicaIdentity === 'd' && pk) return null;
  if (t.replicaIdentity === 'i' && t.identityIndex?.valid) return null;
  const why =
    t.replicaIdentity === 'i'
      ? `its replica identity index ${t.identityIndex?.name ?? '?'} is not unique, immediate, non-partial over NOT NULL columns`
      : t.replicaIdentity === 'f'
        ? 'REPLICA IDENTITY FULL is not enough for pglogical'
        : t.replicaIdentity === 'n'
          ? 'its replica identity is NOTHING'
          : 'it has no primary key';
  return {
    code: 'MESH_NO_REPLICA_IDENTITY',
    site,
    table: t.table,
    message: `site ${site}: table ${t.table} has no primary key or valid replica identity (${why}); add a primary key (on every site) before it can be replicated`,
  };
}

/** Per site: tables with no usable key, and deferrable primary keys / unique constraints. */
export function tableProblems(site: string, tables: readonly TableDef[]): Problem[] {
  const out: Problem[] = [];
  for (const t of tables) {
    const p = identityProblem(site, t);
    if (p) out.push(p);
    for (const u of t.uniques.filter((x) => x.deferrable))
      out.push({
        code: 'MESH_DEFERRABLE_UNIQUE',
        site,
        table: t.table,
        constraint: u.name,
        message: `site ${site}: table ${t.table}: ${u.kind === 'primary' ? 'primary key' : 'unique constraint'} ${u.name} is DEFERRABLE; conflicts cannot be found through it — make it NOT DEFERRABLE`,
      });
  }
  return out;
}

/** `mesh check`'s extra lines: one MESH_SCHEMA_DIFFERS line per table whose definition differs. */
export function schemaDiffText(diffs: readonly SchemaDiff[]): string[] {
  return schemaDiffProblems(diffs).map((p) => `MESH_SCHEMA_DIFFERS: ${p.message}`);
}
