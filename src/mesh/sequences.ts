/**
 * Sequences in a mesh, pure: which serial / identity columns would hand out the same values on two sites, and the
 * plan `pgkeel mesh sequences` applies so they cannot (sequences-sql.ts runs it).
 *
 * Two schemes:
 * - `offset` (default): every site's sequence gets INCREMENT BY M, M = max(sites, OFFSET_HEADROOM) — room to add
 *   sites up to M without renumbering — and restarts above the highest value used on any site at the first value
 *   ≡ k (mod M) for the k-th site (1-based; the M-th site gets residue 0). A site already on that scheme is left alone.
 * - `snowflake`: the column's default becomes `pgkeel_mesh.snowflake_id()`, a function pgkeel creates on each site:
 *   bit 63 zero, 41 bits of milliseconds since SNOWFLAKE_EPOCH_MS, 10 bits of site id (k), 12 bits from a local
 *   counter sequence (4096 ids per millisecond per site before the counter wraps). Needs bigint columns.
 *
 * Sequences are never replicated (pglogical sequence sync jumps values, see the reference note); each site keeps its own.
 */
import type { Problem } from './schema.js';

/** One column fed by a sequence on one site, as schema-sql.ts reads it. */
export interface SequenceState {
  readonly site: string;
  readonly table: string;
  readonly column: string;
  /** Schema-qualified, quoted as needed. */
  readonly sequence: string;
  /** An identity column (else serial / DEFAULT nextval). */
  readonly identity: boolean;
  /** The column's type: integer, bigint, … */
  readonly type: string;
  readonly increment: bigint;
  /** The value the next nextval() returns. */
  readonly next: bigint;
  /** max(column) in the table, null when empty. */
  readonly maxUsed: bigint | null;
}

export type SequenceScheme = 'offset' | 'snowflake';

export const OFFSET_HEADROOM = 10;
/** 2024-01-01T00:00:00Z. */
export const SNOWFLAKE_EPOCH_MS = 1_704_067_200_000;
export const SNOWFLAKE_MAX_SITE = 1023;

export interface SequenceAction {
  readonly site: string;
  readonly table: string;
  readonly column: string;
  /** What it does, in words. */
  readonly summary: string;
  readonly sql: string;
}

export interface SequencePlan {
  readonly scheme: SequenceScheme;
  /** offset: the increment every sequence gets. */
  readonly modulus?: number;
  readonly actions: readonly SequenceAction[];
  /** Columns the scheme cannot handle (e.g. snowflake on an integer column). */
  readonly refused: readonly Problem[];
}

export const modulusFor = (sites: number) => Math.max(sites, OFFSET_HEADROOM);

const FIX = 'fix: `pgkeel mesh sequences --apply` (or --scheme snowflake)';
const mod = (a: bigint, m: bigint) => ((a % m) + m) % m;

function byColumn(states: ReadonlyMap<string, readonly SequenceState[]>): Map<string, SequenceState[]> {
  const m = new Map<string, SequenceState[]>();
  for (const list of states.values())
    for (const s of list) {
      const k = `${s.table}.${s.column}`;
      m.set(k, [...(m.get(k) ?? []), s]);
    }
  return new Map([...m].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** The columns whose sequences can collide between sites: increment below the site count, unequal increments, or
 *  two sites whose next values are equal modulo the increment. */
export function sequenceProblems(states: ReadonlyMap<string, readonly SequenceState[]>, sites: number): Problem[] {
  const out: Problem[] = [];
  for (const list of byColumn(states).values()) {
    const first = list[0] as SequenceState;
    const where = `${first.table}.${first.column}`;
    const low = list.filter((s) => s.increment < BigInt(sites));
    for (const s of low)
      out.push({
        code: 'MESH_SEQUENCE_COLLIDES',
        site: s.site,
        table: s.table,
        column: s.column,
        message: `site ${s.site}: column ${where} takes values from ${s.identity ? 'an identity' : 'sequence'} ${s.sequence} with INCREMENT BY ${s.increment}${s.increment === 1n ? ' (the default)' : ''}, below the ${sites} sites: every site hands out the same ids; ${FIX}`,
      });
    if (low.length || list.length < 2) continue;
    if (new Set(list.map((s) => s.increment)).size > 1) {
      out.push({
        code: 'MESH_SEQUENCE_COLLIDES',
        table: first.table,
        column: first.column,
        message: `column ${where}: the sites' sequences have different increments (${list.map((s) => `${s.site} ${s.increment}`).join(', ')}), so their values can meet; ${FIX}`,
      });
      continue;
    }
    const seen = new Map<bigint, string>();
    for (const s of list) {
      const r = mod(s.next, s.increment);
      const other = seen.get(r);
      if (other !== undefined)
        out.push({
          code: 'MESH_SEQUENCE_COLLIDES',
          site: s.site,
          table: s.table,
          column: s.column,
          message: `column ${where}: sites ${other} and ${s.site} hand out values ≡ ${r} (mod ${s.increment}) from ${s.sequence}; ${FIX}`,
        });
      else seen.set(r, s.site);
    }
  }
  return out;
}

/** The first value above `above` that is ≡ r (mod m). */
export function firstAbove(above: bigint, r: bigint, m: bigint): bigint {
  const v = above + 1n;
  return v + mod(r - v, m);
}

/** `offset`: per site and column, the ALTER that puts it on INCREMENT BY M, residue k; nothing when already there. */
export function planOffset(
  states: ReadonlyMap<string, readonly SequenceState[]>,
  order: readonly string[],
): SequencePlan {
  const m = modulusFor(order.length);
  const M = BigInt(m);
  const actions: SequenceAction[] = [];
  for (const list of byColumn(states).values()) {
    const high = list.reduce((h, s) => {
      const used = s.maxUsed ?? 0n;
      const top = s.next - 1n > used ? s.next - 1n : used;
      return top > h ? top : h;
    }, 0n);
    for (const s of [...list].sort((a, b) => order.indexOf(a.site) - order.indexOf(b.site))) {
      const r = BigInt((order.indexOf(s.site) + 1) % m);
      if (s.increment === M && mod(s.next, M) === r) continue;
      const start = firstAbove(high, r, M);
      const sql = s.identity
        ? `ALTER TABLE ${s.table} ALTER COLUMN "${s.column.replace(/"/g, '""')}" SET INCREMENT BY ${m} RESTART WITH ${start}`
        : `ALTER SEQUENCE ${s.sequence} INCREMENT BY ${m} RESTART WITH ${start}`;
      actions.push({
        site: s.site,
        table: s.table,
        column: s.column,
        summary: `${s.sequence}: INCREMENT BY ${m} RESTART WITH ${start} (values ≡ ${r} mod ${m})`,
        sql,
      });
    }
  }
  return { scheme: 'offset', modulus: m, actions, refused: [] };
}

/** `snowflake`: per site and bigint column, its default becomes pgkeel_mesh.snowflake_id() (identity dropped). A
 *  non-bigint column is refused when its sequences collide, and left alone when they are already safe (offset). */
export function planSnowflake(states: ReadonlyMap<string, readonly SequenceState[]>, sites: number): SequencePlan {
  const unsafe = new Set(sequenceProblems(states, sites).map((p) => `${p.table}.${p.column}`));
  const actions: SequenceAction[] = [];
  const refused: Problem[] = [];
  for (const list of byColumn(states).values())
    for (const s of list) {
      const col = `"${s.column.replace(/"/g, '""')}"`;
      if (s.type !== 'bigint' && !unsafe.has(`${s.table}.${s.column}`)) continue;
      if (s.type !== 'bigint') {
        refused.push({
          code: 'MESH_SEQUENCE_COLLIDES',
          site: s.site,
          table: s.table,
          column: s.column,
          message: `site ${s.site}: column ${s.table}.${s.column} is ${s.type}; snowflake ids need bigint (ALTER its type through \`pgkeel mesh ddl\`, or use --scheme offset)`,
        });
        continue;
      }
      const def = `ALTER COLUMN ${col} SET DEFAULT pgkeel_mesh.snowflake_id()`;
      actions.push({
        site: s.site,
        table: s.table,
        column: s.column,
        summary: `${s.table}.${s.column}: DEFAULT pgkeel_mesh.snowflake_id()${s.identity ? ' (identity dropped)' : ''}`,
        sql: `ALTER TABLE ${s.table} ${s.identity ? `ALTER COLUMN ${col} DROP IDENTITY, ` : ''}${def}`,
      });
    }
  return { scheme: 'snowflake', actions, refused };
}

/** The body of pgkeel_mesh.snowflake_id() for site id `site` (1 … 1023): the SQL twin of snowflakeId(). */
export function snowflakeBody(site: number): string {
  if (!Number.isInteger(site) || site < 1 || site > SNOWFLAKE_MAX_SITE)
    throw new RangeError(`snowflake site id ${site} is outside 1..${SNOWFLAKE_MAX_SITE}`);
  return `SELECT ((floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint - ${SNOWFLAKE_EPOCH_MS}) << 22) | (${site}::bigint << 12) | (nextval('pgkeel_mesh.snowflake_counter') % 4096)`;
}

/** The id snowflake_id() makes at `ms` on `site` with counter value `counter`. */
export function snowflakeId(ms: number, site: number, counter: bigint): bigint {
  return (BigInt(ms - SNOWFLAKE_EPOCH_MS) << 22n) | (BigInt(site) << 12n) | mod(counter, 4096n);
}

export function snowflakeParts(id: bigint): { ms: number; site: number; counter: number } {
  return {
    ms: Number(id >> 22n) + SNOWFLAKE_EPOCH_MS,
    site: Number((id >> 12n) & 1023n),
    counter: Number(id & 4095n),
  };
}

/** The plan in lines; `applied`: the actions were run (sequences-sql.ts printed each), so only their count. */
export function planText(p: SequencePlan, applied = false): string[] {
  const head =
    p.scheme === 'offset'
      ? `scheme offset: INCREMENT BY ${p.modulus} on every site, site k restarts above the highest value used at the next value ≡ k (mod ${p.modulus})`
      : 'scheme snowflake: DEFAULT pgkeel_mesh.snowflake_id() (41-bit ms, 10-bit site, 12-bit counter) on bigint columns';
  const lines = [head];
  if (p.actions.length === 0 && p.refused.length === 0)
    lines.push('nothing to change: every sequence is on the scheme');
  if (applied && p.actions.length) lines.push(`applied ${p.actions.length} change(s)`);
  else for (const a of p.actions) lines.push(`  ${a.site}: ${a.summary}`);
  for (const r of p.refused) lines.push(`  ${r.code}: ${r.message}`);
  return lines;
}
