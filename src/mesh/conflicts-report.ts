/**
 * `pgkeel mesh conflicts` and the "conflicts since …" section of `mesh check`: every site's history
 * (`pgkeel_mesh.conflicts` on its leader, conflicts-store.ts) read and merged, newest first; and for `mesh check`,
 * the silent losses it shows plus a label for each key the check found differing (conflicts-label.ts).
 * A site whose history cannot be read is named, never an exception: the convergence verdict stands without it.
 */
import { keyHashes, type CheckSite } from './check.js';
import type { CheckResult } from './compare.js';
import {
  type ConflictRow,
  countsByType,
  type KeyLabel,
  type KeyPresence,
  labelKeys,
  type SilentLoss,
  silentLosses,
} from './conflicts-label.js';
import { queuedTruncates, readConflicts } from './conflicts-store.js';

export interface History {
  /** Newest first, each conflict once (per logging site). */
  readonly rows: readonly ConflictRow[];
  /** Sites whose history could not be read, with why. */
  readonly unreachable: readonly string[];
}

export async function readHistory(sites: readonly CheckSite[], since: number, table?: string): Promise<History> {
  const byId = new Map<string, ConflictRow>();
  const unreachable: string[] = [];
  for (const s of sites) {
    try {
      for (const r of await readConflicts(s.db, since, table)) byId.set(r.id, r);
    } catch (err) {
      unreachable.push(`${s.scope} (${(err as Error).message})`);
    }
  }
  const rows = [...byId.values()].sort((a, b) => b.at.localeCompare(a.at) || a.id.localeCompare(b.id));
  return { rows, unreachable };
}

export function historyText(h: History): string[] {
  const lines = h.rows.map((r) => {
    const origins = `local ${r.local_origin ?? '-'}, remote ${r.remote_origin ?? '?'}`;
    return `${r.at}  ${r.site}  ${r.table} key ${r.key}  ${r.type} → ${r.resolution}  (${origins})`;
  });
  if (h.rows.length === 0) lines.push('no conflicts recorded in that window');
  for (const u of h.unreachable) lines.push(`history not read from ${u}`);
  return lines;
}

export interface CheckConflicts {
  /** ISO 8601. */
  readonly since: string;
  readonly total: number;
  readonly by_type: Readonly<Record<string, number>>;
  readonly lost: readonly SilentLoss[];
  readonly keys: readonly KeyLabel[];
  readonly unreachable: readonly string[];
  /** The rows behind it (not printed; for conflictsText). */
  readonly rows: readonly ConflictRow[];
}

/** The conflict section of `mesh check`: history since `since`, losses, and labels for the differing keys. */
export async function checkConflicts(
  sites: readonly CheckSite[],
  result: CheckResult,
  since: number,
  table?: string,
): Promise<CheckConflicts> {
  const h = await readHistory(sites, since, table);
  const truncates: Array<{ table: string; at: string }> = [];
  const diffs: KeyPresence[] = [];
  const differing = result.differing.filter((d) => d.keys?.length);
  if (differing.length) {
    for (const s of sites) truncates.push(...(await queuedTruncates(s.db, since).catch(() => [])));
    for (const d of differing) {
      const presence = new Map<string, string[]>((d.keys ?? []).map((k) => [k, []]));
      for (const s of sites) {
        const m = await keyHashes(s.db, d.table).catch(() => null);
        for (const [k, on] of presence) if (m?.has(k)) on.push(s.scope);
      }
      diffs.push({ table: d.table, sites: sites.map((s) => s.scope), presence });
    }
  }
  const seen = new Set<string>();
  const uniqTruncates = truncates.filter((t) => !seen.has(`${t.table}|${t.at}`) && seen.add(`${t.table}|${t.at}`));
  return {
    since: new Date(since).toISOString(),
    total: h.rows.length,
    by_type: countsByType(h.rows),
    lost: silentLosses(h.rows),
    keys: labelKeys(diffs, h.rows, uniqTruncates),
    unreachable: h.unreachable,
    rows: h.rows,
  };
}
