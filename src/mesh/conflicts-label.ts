/**
 * What the conflict history says about data lost without an error, pure. pglogical (last_update_wins) resolves a
 * conflict by discarding one side; these are the cases where that side was a real write nobody saw:
 *
 *  - insert_insert: two sites inserted one key; the row with the older commit timestamp is gone everywhere
 *    (apply_remote: the local row was lost; keep_local: the remote one).
 *  - update_update resolved keep_local on the site whose row was written locally (origin 0): the remote update
 *    was made without seeing this one and is discarded ("an update was overwritten", e.g. one of two concurrent
 *    `n = n + 1`). apply_remote over a local row is also what a sequential edit by another site logs, so it is
 *    counted, not listed.
 *
 * And for keys `mesh check` found differing, a label when one is reliable: a DELETE that reached a site before its
 * INSERT (delete_delete/update_delete logged for the key there: a ghost row), a TRUNCATE of the table queued while
 * rows exist on some sites only, or simply the site(s) the key exists on.
 */
import type { ConflictType } from './conflicts-parse.js';

/** One row of `pgkeel_mesh.conflicts` (conflicts-store.ts), as read back. */
export interface ConflictRow {
  readonly id: string;
  /** The site whose server log reported it (the subscriber). */
  readonly site: string;
  readonly member: string;
  /** ISO 8601, when it was logged. */
  readonly at: string;
  readonly table: string;
  readonly key: string;
  readonly type: ConflictType;
  readonly resolution: string;
  /** The site that wrote the local row (null: no local row, or unknown). */
  readonly local_origin: string | null;
  /** The site the remote change came from. */
  readonly remote_origin: string | null;
  readonly local_commit_ts: string | null;
  readonly remote_commit_ts: string | null;
  readonly local_tuple: string | null;
  readonly remote_tuple: string | null;
}

export interface SilentLoss {
  readonly kind: 'insert_insert' | 'update_overwritten';
  readonly table: string;
  readonly key: string;
  /** The site whose write was discarded, and the one kept. */
  readonly lost: { readonly site: string | null; readonly tuple: string | null; readonly commitTs: string | null };
  readonly kept: { readonly site: string | null; readonly tuple: string | null; readonly commitTs: string | null };
  /** When it was first logged. */
  readonly at: string;
}

const sideOf = (r: ConflictRow, which: 'local' | 'remote') =>
  which === 'local'
    ? { site: r.local_origin, tuple: r.local_tuple, commitTs: r.local_commit_ts }
    : { site: r.remote_origin, tuple: r.remote_tuple, commitTs: r.remote_commit_ts };

/** The writes the history shows discarded without an error, one per lost write (each site logs its own view). */
export function silentLosses(rows: readonly ConflictRow[]): SilentLoss[] {
  const out = new Map<string, SilentLoss>();
  const sorted = [...rows].sort((a, b) => a.at.localeCompare(b.at));
  for (const r of sorted) {
    let kind: SilentLoss['kind'];
    if (r.type === 'insert_insert' && (r.resolution === 'apply_remote' || r.resolution === 'keep_local'))
      kind = 'insert_insert';
    else if (r.type === 'update_update' && r.resolution === 'keep_local' && r.local_origin === r.site)
      kind = 'update_overwritten';
    else continue;
    const localWon = r.resolution === 'keep_local';
    const lost = sideOf(r, localWon ? 'remote' : 'local');
    const kept = sideOf(r, localWon ? 'local' : 'remote');
    const id = [kind, normTable(r.table), r.key, lost.site, lost.commitTs].join('|');
    if (!out.has(id)) out.set(id, { kind, table: r.table, key: r.key, lost, kept, at: r.at });
  }
  return [...out.values()];
}

/** `public.t`, `t` and `"public"."t"` name one table. */
export function normTable(t: string): string {
  const bare = t.replace(/"/g, '');
  return bare.startsWith('public.') ? bare.slice('public.'.length) : bare;
}

export function countsByType(rows: readonly ConflictRow[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rows) out[r.type] = (out[r.type] ?? 0) + 1;
  return out;
}

/** A table's differing keys as `mesh check` found them, with the sites each key exists on. */
export interface KeyPresence {
  readonly table: string;
  readonly sites: readonly string[];
  /** key → the sites holding a row with it. */
  readonly presence: ReadonlyMap<string, readonly string[]>;
}

export interface KeyLabel {
  readonly table: string;
  readonly key: string;
  readonly label: 'ghost_row' | 'after_truncate' | 'on_some_sites_only' | 'values_differ';
  readonly text: string;
}

/** Labels each differing key; `truncates` are the TRUNCATEs pglogical queued (table, ISO time). */
export function labelKeys(
  diffs: readonly KeyPresence[],
  rows: readonly ConflictRow[],
  truncates: ReadonlyArray<{ readonly table: string; readonly at: string }>,
): KeyLabel[] {
  const out: KeyLabel[] = [];
  for (const d of diffs) {
    const tab = normTable(d.table);
    const trunc = truncates.filter((t) => normTable(t.table) === tab).sort((a, b) => b.at.localeCompare(a.at))[0];
    for (const [key, on] of d.presence) {
      const where = on.length ? `present on ${on.join(', ')} only` : 'present on no site';
      const missed = rows.filter(
        (r) =>
          normTable(r.table) === tab && r.key === key && (r.type === 'delete_delete' || r.type === 'update_delete'),
      );
      const partial = on.length > 0 && on.length < d.sites.length;
      if (missed.length && partial) {
        const at = [...new Set(missed.map((r) => `${r.type} logged on ${r.site}`))].join(', ');
        out.push({
          table: d.table,
          key,
          label: 'ghost_row',
          text: `ghost row: a DELETE reached a site before the INSERT it deletes (${at}); ${where}`,
        });
      } else if (trunc && partial)
        out.push({
          table: d.table,
          key,
          label: 'after_truncate',
          text: `${where}, after a TRUNCATE of ${d.table} at ${trunc.at} (a TRUNCATE replays as a statement and races inserts)`,
        });
      else if (partial) out.push({ table: d.table, key, label: 'on_some_sites_only', text: where });
      else out.push({ table: d.table, key, label: 'values_differ', text: 'the row differs between sites' });
    }
  }
  return out;
}

const short = (t: string | null) => (t === null ? '?' : t.length > 120 ? `${t.slice(0, 117)}...` : `{${t}}`);

/** The "conflicts since …" section `mesh check` prints after its convergence lines. */
export function conflictsText(
  since: string,
  rows: readonly ConflictRow[],
  labels: readonly KeyLabel[],
  unreachable: readonly string[] = [],
): string[] {
  const counts = Object.entries(countsByType(rows))
    .map(([t, n]) => `${t} ${n}`)
    .join(', ');
  const lines = [`conflicts since ${since}: ${rows.length}${rows.length ? ` (${counts})` : ''}`];
  if (unreachable.length) lines.push(`  history not read from: ${unreachable.join(', ')}`);
  for (const l of silentLosses(rows)) {
    const what =
      l.kind === 'insert_insert'
        ? `insert_insert on ${l.table} key ${l.key}: ${l.lost.site ?? '?'}'s row was lost`
        : `update_update on ${l.table} key ${l.key}: an update was overwritten — ${l.lost.site ?? '?'}'s update was lost`;
    lines.push(`  lost: ${what} ${short(l.lost.tuple)}; kept ${l.kept.site ?? '?'}'s ${short(l.kept.tuple)}`);
  }
  for (const k of labels.filter((x) => x.label !== 'values_differ')) lines.push(`  ${k.table} key ${k.key}: ${k.text}`);
  return lines;
}
