/**
 * Incremental and differential backups, at file level (PostgreSQL 15 has no incremental BASE_BACKUP): between
 * `pg_backup_start` and `pg_backup_stop` on the source member, the files of its data directory whose size or
 * modification time differ from the parent's list are copied (tar as `postgres`, compressed by the lz4/zstd program);
 * the backup records the complete file list — each file with the backup holding its content — and the files deleted
 * since the parent. A restore extracts the chain oldest first, deletes what each step deleted, and writes the last
 * step's backup_label. Like pgBackRest, a file whose timestamp is not older than the parent's start is copied again
 * whatever its size (a write within the same second would not change the mtime).
 *
 * incr: parent = the newest usable backup; diff: parent = the newest usable full backup.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BackupError } from './errors.js';

export interface FileEntry {
  /** Relative to the data directory, '/'-separated. */
  readonly path: string;
  readonly size: number;
  /** Modification time, whole seconds since the epoch. */
  readonly mtime: number;
  /** The backup whose archive holds this file's content. */
  readonly ref: string;
}

export interface ScannedFile {
  readonly path: string;
  readonly size: number;
  readonly mtime: number;
}

/** What a base backup leaves out of a data directory (PostgreSQL's basebackup.c exclusions). */
const EXCLUDED_DIR_CONTENTS = new Set([
  'pg_wal',
  'pg_dynshmem',
  'pg_notify',
  'pg_replslot',
  'pg_serial',
  'pg_snapshots',
  'pg_stat_tmp',
  'pg_subtrans',
]);
const EXCLUDED_FILES = new Set([
  'postmaster.pid',
  'postmaster.opts',
  'backup_label',
  'backup_label.old',
  'tablespace_map',
  'standby.signal',
  'recovery.signal',
  'postgresql.auto.conf.tmp',
  'current_logfiles.tmp',
  'pg_internal.init',
]);

export function excluded(path: string): boolean {
  const parts = path.split('/');
  const name = parts[parts.length - 1] as string;
  if (EXCLUDED_FILES.has(name) || name.startsWith('pgsql_tmp')) return true;
  return parts.length > 1 && EXCLUDED_DIR_CONTENTS.has(parts[0] as string);
}

/** Every regular file of a data directory that a backup covers, with size and mtime (seconds). */
export async function scanDataDir(dataDir: string): Promise<ScannedFile[]> {
  const out: ScannedFile[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(rel ? join(dataDir, rel) : dataDir, { withFileTypes: true }).catch(
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return []; // removed while we walked: WAL replay recreates what matters
        throw err;
      },
    );
    for (const e of entries) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (excluded(p)) continue;
      if (e.isDirectory()) await walk(p);
      else if (e.isSymbolicLink() && rel === 'pg_tblspc')
        throw new BackupError(
          'BACKUP_FAILED',
          'incremental backups of a cluster with tablespaces are not built yet; take a full backup (--type full)',
        );
      else if (e.isFile()) {
        const st = await lstat(join(dataDir, p)).catch(() => null);
        if (st) out.push({ path: p, size: st.size, mtime: Math.floor(st.mtimeMs / 1000) });
      }
    }
  };
  await walk('');
  return out.sort((a, b) => (a.path < b.path ? -1 : 1));
}

/** A full backup's file list, from PostgreSQL's backup manifest (Path/Encoded-Path, Size, Last-Modified). */
export function fileListFromManifest(backupId: string, manifest: string): FileEntry[] {
  const m = JSON.parse(manifest) as {
    Files?: { Path?: string; 'Encoded-Path'?: string; Size: number; 'Last-Modified': string }[];
  };
  return (m.Files ?? [])
    .map((f) => ({
      path: f.Path ?? Buffer.from(f['Encoded-Path'] ?? '', 'hex').toString('utf8'),
      size: f.Size,
      // "2026-12-03 05:36:37 GMT"
      mtime: Math.floor(Date.parse(f['Last-Modified'].replace(' GMT', 'Z').replace(' ', 'T')) / 1000),
      ref: backupId,
    }))
    .filter((f) => !excluded(f.path));
}

export interface IncrementalPlan {
  /** Files to copy into this backup (new or changed). */
  readonly copy: string[];
  /** Files the parent had that are gone. */
  readonly deleted: string[];
  /** The complete list after this backup. */
  readonly list: FileEntry[];
}

/**
 * Which files an incremental backup copies. `parentStart`: the parent's start time (seconds); files modified at or
 * after it are copied even with an unchanged size and mtime.
 */
export function planIncremental(
  parent: readonly FileEntry[],
  current: readonly ScannedFile[],
  parentStart: number,
  id: string,
): IncrementalPlan {
  const before = new Map(parent.map((f) => [f.path, f]));
  const copy: string[] = [];
  const list: FileEntry[] = [];
  for (const f of current) {
    const p = before.get(f.path);
    const same = p && p.size === f.size && p.mtime === f.mtime && f.mtime < parentStart;
    if (same) list.push(p);
    else {
      copy.push(f.path);
      list.push({ ...f, ref: id });
    }
  }
  const now = new Set(current.map((f) => f.path));
  const deleted = parent.filter((f) => !now.has(f.path)).map((f) => f.path);
  return { copy, deleted, list };
}
