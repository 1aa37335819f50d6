/**
 * The convergence verdict, pure: per table, every site's row count and order-independent row hash (check.ts reads
 * them at a barrier); the tables that differ; and, for a table whose rows could be listed, the keys that differ.
 */

export interface TableDigest {
  readonly rows: number;
  /** Sum over rows of a 60-bit slice of md5(row::text), as decimal text: equal sets of rows give equal sums. */
  readonly hash: string;
}

/** One site's digests by table name; a table missing on the site is absent. */
export type SiteDigests = ReadonlyMap<string, TableDigest>;

export interface TableDiff {
  readonly table: string;
  /** Per site (scope): row count, null when the table is missing there. */
  readonly rows: Readonly<Record<string, number | null>>;
  /** The differing keys (row(primary key)::text), when they were listed; at most KEY_LIST_LIMIT. */
  readonly keys?: readonly string[];
  /** How many keys differ in all, when listed. */
  readonly keysDiffering?: number;
}

export interface CheckResult {
  readonly converged: boolean;
  readonly tables: readonly string[];
  readonly differing: readonly TableDiff[];
}

/** At most this many differing keys are named per table. */
export const KEY_LIST_LIMIT = 1000;

/** The tables whose digest is not the same on every site (missing on one counts as different). */
export function compareDigests(sites: ReadonlyMap<string, SiteDigests>): { tables: string[]; differing: TableDiff[] } {
  const tables = [...new Set([...sites.values()].flatMap((d) => [...d.keys()]))].sort();
  const differing: TableDiff[] = [];
  for (const table of tables) {
    const seen = [...sites.values()].map((d) => d.get(table));
    const first = seen[0];
    const same = seen.every(
      (d) => d !== undefined && first !== undefined && d.rows === first.rows && d.hash === first.hash,
    );
    if (same) continue;
    const rows = Object.fromEntries([...sites].map(([site, d]) => [site, d.get(table)?.rows ?? null]));
    differing.push({ table, rows });
  }
  return { tables, differing };
}

/**
 * The keys whose row is not the same on every site (missing on one, or another hash), sorted; `limit` of them are
 * returned with the total.
 */
export function differingKeys(
  sites: ReadonlyMap<string, ReadonlyMap<string, string>>,
  limit = KEY_LIST_LIMIT,
): { keys: string[]; total: number } {
  const all = new Set([...sites.values()].flatMap((m) => [...m.keys()]));
  const maps = [...sites.values()];
  const keys = [...all].filter((k) => {
    const h = maps[0]?.get(k);
    return h === undefined || maps.some((m) => m.get(k) !== h);
  });
  keys.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  return { keys: keys.slice(0, limit), total: keys.length };
}

/** The result as lines for a terminal. */
export function checkText(r: CheckResult): string[] {
  if (r.converged && r.tables.length === 0)
    return [
      'converged: no replicated tables yet (create the same tables on every site, then run `pgkeel mesh create` again)',
    ];
  if (r.converged) return [`converged: ${r.tables.length} table(s) equal on every site (${r.tables.join(', ')})`];
  const lines = [`diverged: ${r.differing.length} of ${r.tables.length} table(s) differ`];
  for (const d of r.differing) {
    const rows = Object.entries(d.rows)
      .map(([s, n]) => `${s} ${n === null ? 'missing' : `${n} rows`}`)
      .join(', ');
    lines.push(`  ${d.table}: ${rows}`);
    if (d.keys)
      lines.push(
        `    keys differing (${d.keysDiffering}${d.keys.length < (d.keysDiffering ?? 0) ? `, first ${d.keys.length}` : ''}): ${d.keys.join(' ')}`,
      );
  }
  return lines;
}
