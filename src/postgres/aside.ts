/**
 * Moved-aside copies of the data directory (`<data_dir>.<why>-<time>`): a reinitialize, re-clone or failed
 * bootstrap keeps the old data for an operator to look at, but only a bounded number of them — each copy is a whole
 * database, and repeated POST /reinitialize calls must not fill the disk. Before a re-clone, the filesystem must
 * also have room for the new copy.
 */
import { readdirSync, type Stats, statfsSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { exists } from '../lib/ownership.js';

/** Kinds of copies and how many of each are kept: failed attempts only ever need the newest for its logs. */
export type AsideKind = 'before-reclone' | 'before-clone' | 'failed-clone' | 'failed-bootstrap';
export const AT_MOST_ONE: ReadonlySet<AsideKind> = new Set(['failed-clone', 'failed-bootstrap']);

/** "<data_dir>.<why>-2026-12-02T19-40-00-123Z": the ISO time with ':' and '.' replaced sorts by age. */
export function asideName(dataDir: string, why: AsideKind, now: Date): string {
  return `${dataDir}.${why}-${now.toISOString().replace(/[:.]/g, '-')}`;
}

/** Existing copies of one kind next to the data directory, oldest first. */
export function listAside(dataDir: string, why: AsideKind): string[] {
  const prefix = `${basename(dataDir)}.${why}-`;
  let names: string[];
  try {
    names = readdirSync(dirname(dataDir));
  } catch {
    return [];
  }
  return names
    .filter((n) => n.startsWith(prefix))
    .sort()
    .map((n) => join(dirname(dataDir), n));
}

/**
 * Pure: which existing copies (oldest first) to remove before one more is made, so that at most `keep` remain
 * afterwards. keep = 0: all of them (and the data directory itself is deleted rather than moved aside).
 */
export function copiesToRemove(existingOldestFirst: readonly string[], keep: number): string[] {
  const room = Math.max(0, keep - 1);
  return existingOldestFirst.slice(0, Math.max(0, existingOldestFirst.length - room));
}

/** Bytes a directory tree takes (regular files' sizes; symlinks not followed). */
export async function treeBytes(path: string): Promise<number> {
  let total = 0;
  const walk = async (p: string): Promise<void> => {
    let st: Stats;
    try {
      st = await lstat(p);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      const entries = await readdir(p).catch(() => [] as string[]);
      for (const e of entries) await walk(join(p, e));
    } else if (st.isFile()) total += st.size;
  };
  await walk(path);
  return total;
}

/** Free bytes an unprivileged writer may use on the filesystem holding `path` (or its nearest existing parent). */
export function freeBytes(path: string): number {
  let p = path;
  while (!exists(p) && dirname(p) !== p) p = dirname(p);
  const s = statfsSync(p);
  return s.bavail * s.bsize;
}

/** Room a clone needs beyond its data: 10 % plus 64 MiB for WAL written while it streams. */
export const CLONE_MARGIN = { ratio: 0.1, bytes: 64 * 1024 * 1024 };

export interface CloneSpace {
  /** Size of the data to clone: the larger of the leader's databases and the local data directory. */
  readonly dataBytes: number;
  readonly freeBytes: number;
  /** What is freed before the clone starts (copies removed by the retention rule; the data dir itself when keep = 0). */
  readonly freedBytes: number;
}

/** Pure: null when the clone fits, else the sentence to refuse with. */
export function cloneSpaceRefusal(s: CloneSpace): string | null {
  const need = Math.ceil(s.dataBytes * (1 + CLONE_MARGIN.ratio)) + CLONE_MARGIN.bytes;
  const have = s.freeBytes + s.freedBytes;
  if (have >= need) return null;
  const mb = (n: number) => `${Math.round(n / 1048576)} MB`;
  return `not enough disk space to clone: the clone needs about ${mb(need)} (${mb(s.dataBytes)} of data plus margin), the filesystem has ${mb(s.freeBytes)} free${s.freedBytes ? ` and ${mb(s.freedBytes)} would be freed by removing older copies` : ''}; free space or lower postgresql.keep_moved_aside`;
}

/** Measures what cloneSpaceRefusal needs for a re-clone of `dataDir` keeping `keep` copies; null when it fits. */
export async function checkCloneSpace(
  dataDir: string,
  keep: number,
  leaderBytes: number | null,
): Promise<string | null> {
  const local = await treeBytes(dataDir);
  let freed = 0;
  for (const old of copiesToRemove(listAside(dataDir, 'before-reclone'), keep)) freed += await treeBytes(old);
  if (keep === 0) freed += local;
  return cloneSpaceRefusal({
    dataBytes: Math.max(local, leaderBytes ?? 0),
    freeBytes: freeBytes(dataDir),
    freedBytes: freed,
  });
}
