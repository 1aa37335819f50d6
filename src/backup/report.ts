/**
 * What `pgkeel backup list --json`, `pgkeel status` and the metrics say about a repository: its backups, the
 * archived WAL range, and the recoverable window — from the end of the oldest usable backup to the newest archived
 * WAL (the moment that segment reached the repository: everything committed before it can be restored).
 */
import { type BackupRecord, backupDir, listRecords, usable } from './catalog.js';
import type { BackupStore } from './store.js';
import { logicalPath } from './store.js';
import { parseWalName } from './wal-names.js';

export type BackupListEntry = Pick<
  BackupRecord,
  | 'id'
  | 'type'
  | 'parent'
  | 'member'
  | 'timeline'
  | 'start_lsn'
  | 'stop_lsn'
  | 'start_time'
  | 'stop_time'
  | 'bytes'
  | 'repo_bytes'
  | 'duration_s'
  | 'status'
  | 'error'
> & {
  /** The backup's directory in the repository. */
  path: string;
};

export interface BackupReport {
  repo: string;
  backups: BackupListEntry[];
  wal: { first: string | null; last: string | null; count: number; last_archived_time: string | null };
  recoverable_from: string | null;
  recoverable_to: string | null;
}

export async function backupReport(store: BackupStore): Promise<BackupReport> {
  const records = await listRecords(store);
  const segs = (await store.repo.list('wal'))
    .map((f) => ({ name: logicalPath(f.path).split('/').pop() ?? '', mtimeMs: f.mtimeMs }))
    .filter((f) => parseWalName(f.name)?.kind === 'segment')
    .sort((a, b) =>
      a.name.slice(8) < b.name.slice(8) ? -1 : a.name.slice(8) > b.name.slice(8) ? 1 : a.name < b.name ? -1 : 1,
    );
  const lastArchived = segs.reduce((m, f) => Math.max(m, f.mtimeMs), 0);
  const ok = usable(records);
  const first = ok[0];
  return {
    repo: store.repo.location,
    backups: records.map(entry),
    wal: {
      first: segs[0]?.name ?? null,
      last: segs.at(-1)?.name ?? null,
      count: segs.length,
      last_archived_time: lastArchived ? new Date(lastArchived).toISOString() : null,
    },
    recoverable_from: first?.stop_time ?? null,
    recoverable_to:
      first && lastArchived
        ? new Date(Math.max(lastArchived, new Date(ok.at(-1)?.stop_time ?? 0).getTime())).toISOString()
        : null,
  };
}

function entry(r: BackupRecord): BackupListEntry {
  return {
    id: r.id,
    type: r.type,
    parent: r.parent,
    member: r.member,
    timeline: r.timeline,
    start_lsn: r.start_lsn,
    stop_lsn: r.stop_lsn,
    start_time: r.start_time,
    stop_time: r.stop_time,
    bytes: r.bytes,
    repo_bytes: r.repo_bytes,
    duration_s: r.duration_s,
    status: r.status,
    ...(r.error ? { error: r.error } : {}),
    path: backupDir(r.id),
  };
}

const units = ['B', 'kB', 'MB', 'GB', 'TB'];
export function humanBytes(n: number): string {
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

/** "3 h 12 min", "45 s": how long ago. */
export function humanAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 120) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}
