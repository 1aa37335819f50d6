/**
 * Backup records: what `backups/<id>/backup.json` holds, how ids are made, which backups are usable, and the
 * recoverable window. Pure, except the read/write helpers at the end (through BackupStore).
 *
 * A record is written as `running` before the first byte of a backup is stored and rewritten as `ok` (or `failed`)
 * at the end; only `ok` records are usable. A `running` record whose writer is gone (a killed agent or CLI) is
 * cleaned by the next backup, which holds the cluster's backup lease and so knows no other backup runs.
 */
import { BackupError } from './errors.js';
import type { BackupStore } from './store.js';

export const BACKUP_TYPES = ['full', 'incr', 'diff'] as const;
export type BackupType = (typeof BACKUP_TYPES)[number];
export type BackupStatus = 'running' | 'ok' | 'failed';

export interface StoredFile {
  /** Stored path, relative to the backup's directory (e.g. base.tar.lz4). */
  readonly name: string;
  /** Stored bytes and their SHA-256 (what verify re-reads). */
  readonly size: number;
  readonly sha256: string;
}

export interface BackupRecord {
  id: string;
  type: BackupType;
  /** The backup this one depends on (incr/diff), else null. */
  parent: string | null;
  /** The member the data was read from. */
  member: string;
  timeline: number;
  start_lsn: string;
  stop_lsn: string | null;
  start_time: string;
  stop_time: string | null;
  /** Bytes of database files covered (uncompressed). */
  bytes: number;
  /** Bytes stored in the repository for this backup. */
  repo_bytes: number;
  duration_s: number | null;
  status: BackupStatus;
  error?: string;
  system_identifier: string;
  pg_version: number;
  /** How the archives are compressed (server-side for full backups). */
  compression: string;
  /** WAL segment files (on `timeline`) holding start_lsn and stop_lsn: restore needs both and all between. */
  wal_start: string | null;
  wal_stop: string | null;
  files: StoredFile[];
  /** Who writes a running backup (host + pid), to tell a stale one from a live one in messages. */
  writer?: { host: string; pid: number };
}

export const backupDir = (id: string) => `backups/${id}`;
export const recordPath = (id: string) => `backups/${id}/backup.json`;

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
const ID_RE = /^(\d{8}-\d{6})([FID])(?:_(\d{8}-\d{6})([ID]))?$/;

/** pgBackRest-style ids: 20261203-051500F for a full, <full id>_20261203-061500I|D for incr/diff. */
export function makeBackupId(type: BackupType, at: Date, full?: string): string {
  const stamp = `${at.getUTCFullYear()}${pad(at.getUTCMonth() + 1)}${pad(at.getUTCDate())}-${pad(at.getUTCHours())}${pad(at.getUTCMinutes())}${pad(at.getUTCSeconds())}`;
  if (type === 'full') return `${stamp}F`;
  if (!full) throw new Error('an incremental or differential backup id needs its full backup');
  return `${full.slice(0, 16)}_${stamp}${type === 'incr' ? 'I' : 'D'}`;
}

export function isBackupId(s: string): boolean {
  return ID_RE.test(s);
}

/** Usable backups, oldest first. */
export function usable(records: readonly BackupRecord[]): BackupRecord[] {
  const ok = new Map(records.filter((r) => r.status === 'ok').map((r) => [r.id, r]));
  // A backup whose parent chain is broken (parent expired or failed) is not usable either.
  const chainOk = (r: BackupRecord, depth = 0): boolean =>
    r.parent === null || (depth < 1000 && ok.has(r.parent) && chainOk(ok.get(r.parent) as BackupRecord, depth + 1));
  return [...ok.values()].filter((r) => chainOk(r)).sort(byStart);
}

export function byStart(a: BackupRecord, b: BackupRecord): number {
  return a.start_time < b.start_time ? -1 : a.start_time > b.start_time ? 1 : a.id < b.id ? -1 : 1;
}

/** The chain to restore `id`: its full backup first, `id` last. */
export function chainOf(records: readonly BackupRecord[], id: string): BackupRecord[] {
  const byId = new Map(records.map((r) => [r.id, r]));
  const out: BackupRecord[] = [];
  for (let r = byId.get(id); r; r = r.parent ? byId.get(r.parent) : undefined) {
    out.unshift(r);
    if (out.length > 1000) break;
  }
  if (out[0]?.type !== 'full')
    throw new BackupError('BACKUP_NOT_FOUND', `backup ${id} has no complete chain back to a full backup`, {
      backup: id,
    });
  return out;
}

/**
 * The newest usable backup that can reach `target`: for a time, one that stopped at or before it; for an LSN, one
 * whose stop LSN is at or before it; for anything else (latest, immediate, xid, name), the newest.
 */
export function selectBackup(
  records: readonly BackupRecord[],
  target: { time?: Date; lsn?: bigint } = {},
): BackupRecord | null {
  const candidates = usable(records).filter((r) => {
    if (target.time && r.stop_time && new Date(r.stop_time).getTime() > target.time.getTime()) return false;
    if (target.lsn !== undefined && r.stop_lsn && parseLsn(r.stop_lsn) > target.lsn) return false;
    return true;
  });
  return candidates.at(-1) ?? null;
}

export function parseLsn(lsn: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn);
  if (!m) throw new Error(`invalid LSN "${lsn}" (expected X/Y in hex, e.g. 0/3000060)`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(v: bigint): string {
  return `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;
}

// ---- I/O through the store ----

export async function readRecord(store: BackupStore, id: string): Promise<BackupRecord> {
  return JSON.parse((await store.read(recordPath(id))).toString('utf8')) as BackupRecord;
}

export async function writeRecord(store: BackupStore, rec: BackupRecord): Promise<void> {
  await store.put(recordPath(rec.id), [Buffer.from(`${JSON.stringify(rec, null, 2)}\n`)], 'none');
}

/** Every record in the repository (unreadable ones are reported as failed records, never skipped silently). */
export async function listRecords(store: BackupStore): Promise<BackupRecord[]> {
  const files = await store.repo.list('backups');
  const ids = [...new Set(files.map((f) => f.path.split('/')[1] ?? ''))].filter(isBackupId);
  const out: BackupRecord[] = [];
  for (const id of ids) {
    try {
      out.push(await readRecord(store, id));
    } catch (err) {
      out.push(brokenRecord(id, `unreadable record: ${(err as Error).message}`));
    }
  }
  return out.sort(byStart);
}

function brokenRecord(id: string, error: string): BackupRecord {
  return {
    id,
    type: id.endsWith('F') ? 'full' : id.endsWith('I') ? 'incr' : 'diff',
    parent: null,
    member: '',
    timeline: 0,
    start_lsn: '0/0',
    stop_lsn: null,
    start_time: '',
    stop_time: null,
    bytes: 0,
    repo_bytes: 0,
    duration_s: null,
    status: 'failed',
    error,
    system_identifier: '',
    pg_version: 0,
    compression: 'none',
    wal_start: null,
    wal_stop: null,
    files: [],
  };
}
