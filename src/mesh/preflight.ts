/**
 * The mesh pre-flight: refuses schemas and clocks that a multi-master mesh would silently corrupt, before any
 * subscription is made (`mesh create` runs it after settings and extension; `mesh preflight` alone). It reads the
 * catalogue of every site's leader (schema-sql.ts), judges the rows with the pure rules (schema.ts, sequences.ts,
 * clock.ts) and returns every problem found, each with its catalogue code — never only the first.
 */
import { type ClockOffset, type ClockSample, clockProblems, clockText, offsetFrom } from './clock.js';
import type { Sql } from './engine.js';
import { MeshError } from './errors.js';
import { type Problem, schemaDiffProblems, schemaDiffs, schemaHash, tableProblems, type TableDef } from './schema.js';
import { readSequences, readTables } from './schema-sql.js';
import { type SequenceState, sequenceProblems } from './sequences.js';

export interface PreflightSite {
  readonly scope: string;
  readonly db: Sql;
}

export interface PreflightOptions {
  readonly maxClockOffsetMs: number;
  /** The local clock in ms (injected; the CLI passes Date.now). */
  readonly now: () => number;
  /** clock_timestamp() round trips per site (default 5). */
  readonly samples?: number;
}

export interface PreflightReport {
  readonly ok: boolean;
  readonly problems: readonly Problem[];
  /** Per site: the schema hash and the number of user tables. */
  readonly sites: ReadonlyArray<{ readonly scope: string; readonly schemaHash: string; readonly tables: number }>;
  readonly clocks: readonly ClockOffset[];
  readonly maxClockOffsetMs: number;
}

async function sampleClock(db: Sql, now: () => number, n: number): Promise<ClockSample[]> {
  const out: ClockSample[] = [];
  for (let i = 0; i < n; i++) {
    const sentMs = now();
    const r = await db.query<{ ms: string }>(`SELECT (extract(epoch FROM clock_timestamp()) * 1000)::text AS ms`);
    const receivedMs = now();
    out.push({ sentMs, serverMs: Number(r[0]?.ms), receivedMs });
  }
  return out;
}

export async function measureClocks(
  sites: readonly PreflightSite[],
  now: () => number,
  samples = 5,
): Promise<ClockOffset[]> {
  const out: ClockOffset[] = [];
  for (const s of sites) out.push(offsetFrom(s.scope, await sampleClock(s.db, now, samples)));
  return out;
}

/** Every site's user-table definitions, by scope. */
export async function readSchemas(sites: readonly PreflightSite[]): Promise<Map<string, TableDef[]>> {
  const m = new Map<string, TableDef[]>();
  for (const s of sites) m.set(s.scope, await readTables(s.db));
  return m;
}

export async function readAllSequences(sites: readonly PreflightSite[]): Promise<Map<string, SequenceState[]>> {
  const m = new Map<string, SequenceState[]>();
  for (const s of sites) m.set(s.scope, await readSequences(s.db, s.scope));
  return m;
}

export async function preflight(sites: readonly PreflightSite[], opts: PreflightOptions): Promise<PreflightReport> {
  const schemas = await readSchemas(sites);
  const problems: Problem[] = [...schemaDiffProblems(schemaDiffs(schemas))];
  for (const [scope, tables] of schemas) problems.push(...tableProblems(scope, tables));
  problems.push(...sequenceProblems(await readAllSequences(sites), sites.length));
  const clocks = await measureClocks(sites, opts.now, opts.samples);
  problems.push(...clockProblems(clocks, opts.maxClockOffsetMs));
  return {
    ok: problems.length === 0,
    problems,
    sites: [...schemas].map(([scope, t]) => ({ scope, schemaHash: schemaHash(t), tables: t.length })),
    clocks,
    maxClockOffsetMs: opts.maxClockOffsetMs,
  };
}

export function preflightText(r: PreflightReport): string[] {
  const lines = [
    `schema: ${r.sites.map((s) => `${s.scope} ${s.schemaHash} (${s.tables} table(s))`).join(', ')}`,
    `clocks vs local (bound ${r.maxClockOffsetMs} ms between sites): ${clockText(r.clocks)}`,
  ];
  if (r.ok) lines.push('preflight ok: the schemas are safe to replicate multi-master');
  else {
    lines.push(`preflight refused: ${r.problems.length} problem(s)`);
    for (const p of r.problems) lines.push(`  ${p.code}: ${p.message}`);
  }
  return lines;
}

/** `mesh create`'s gate: MESH_PREFLIGHT_REFUSED listing every problem, nothing subscribed or changed. */
export function refuseUnsafe(r: PreflightReport): void {
  if (r.ok) return;
  throw new MeshError(
    'MESH_PREFLIGHT_REFUSED',
    `pre-flight refused the mesh (${r.problems.length} problem(s)); nothing was subscribed and no table was changed`,
    { detail: r.problems.map((p) => `  ${p.code}: ${p.message}`).join('\n') },
  );
}
