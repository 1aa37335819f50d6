/**
 * Running an incremental or differential backup (incremental.ts says what is copied): the member's own data
 * directory must be readable here (the same host: `pgkeel up` clusters, or the agent backing up its own node).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { postgresIdentity } from '../lib/proc.js';
import { type BackupRecord, backupDir, makeBackupId, type StoredFile, usable, writeRecord } from './catalog.js';
import type { Compression } from './codec.js';
import { BackupError } from './errors.js';
import { completeBackup, failBackup, storeSmallFile } from './full-backup.js';
import { type FileEntry, fileListFromManifest, planIncremental, scanDataDir } from './incremental.js';
import type { BackupStore } from './store.js';

export const FILE_LIST = 'filelist.json';
export const INCR_ARCHIVE = 'incr.tar';

export interface IncrementalOptions {
  readonly store: BackupStore;
  readonly type: 'incr' | 'diff';
  readonly records: readonly BackupRecord[];
  readonly member: string;
  readonly dataDir: string;
  /** A superuser session on the member (kept from pg_backup_start to pg_backup_stop). */
  readonly sql: pg.Client;
  readonly compression: Compression;
  readonly level?: number;
  readonly now: () => Date;
  readonly signal?: AbortSignal;
  readonly waitForWal: (walFile: string, timeline: number, backupId: string) => Promise<void>;
  readonly progress?: (line: string) => void;
}

/** The complete file list of a stored backup (a full one's from its manifest). */
export async function fileListOf(store: BackupStore, rec: BackupRecord): Promise<FileEntry[]> {
  if (rec.type === 'full') {
    const stored = await store.find(`${backupDir(rec.id)}/backup_manifest`);
    if (!stored) throw new BackupError('BACKUP_FAILED', `backup ${rec.id} has no manifest to compare with`);
    return fileListFromManifest(rec.id, (await store.read(stored)).toString('utf8'));
  }
  const stored = await store.find(`${backupDir(rec.id)}/${FILE_LIST}`);
  if (!stored) throw new BackupError('BACKUP_FAILED', `backup ${rec.id} has no file list to compare with`);
  return (JSON.parse((await store.read(stored)).toString('utf8')) as { files: FileEntry[] }).files;
}

export function parentFor(type: 'incr' | 'diff', records: readonly BackupRecord[]): BackupRecord | null {
  const ok = usable(records);
  return (type === 'diff' ? ok.filter((r) => r.type === 'full') : ok).at(-1) ?? null;
}

export async function runIncrementalBackup(o: IncrementalOptions): Promise<BackupRecord> {
  const parent = parentFor(o.type, o.records);
  if (!parent)
    throw new BackupError(
      'BACKUP_NOT_FOUND',
      `an ${o.type} backup needs a full backup first: run pgkeel backup --type full`,
    );
  if (!existsSync(join(o.dataDir, 'PG_VERSION')))
    throw new BackupError(
      'BACKUP_NO_SOURCE',
      `an ${o.type} backup reads the member's data directory, and ${o.dataDir} (${o.member}) is not readable here: run it on that member's host (pgkeel backup -c its node.yml) or choose a member on this host with --from`,
    );
  const started = o.now();
  const sys = await o.sql.query<{ id: string; v: string }>(
    'SELECT system_identifier::text AS id, current_setting($1) AS v FROM pg_control_system()',
    ['server_version_num'],
  );
  const systemId = String(sys.rows[0]?.id);
  if (parent.system_identifier && parent.system_identifier !== systemId)
    throw new BackupError(
      'BACKUP_FAILED',
      `member ${o.member} belongs to database system ${systemId}, the repository to ${parent.system_identifier}`,
    );
  const rec: BackupRecord = {
    id: makeBackupId(o.type, started, parent.id),
    type: o.type,
    parent: parent.id,
    member: o.member,
    timeline: 0,
    start_lsn: '0/0',
    stop_lsn: null,
    start_time: started.toISOString(),
    stop_time: null,
    bytes: 0,
    repo_bytes: 0,
    duration_s: null,
    status: 'running',
    system_identifier: systemId,
    pg_version: Number(sys.rows[0]?.v ?? 0),
    compression: o.compression,
    wal_start: null,
    wal_stop: null,
    files: [],
    writer: { host: hostname(), pid: process.pid },
  };
  // Ids have second resolution: two backups in one second would share one.
  if (o.records.some((r) => r.id === rec.id))
    throw new BackupError('BACKUP_IN_PROGRESS', `a backup with id ${rec.id} exists; wait a second and run it again`);
  await writeRecord(o.store, rec);
  const dir = backupDir(rec.id);
  try {
    const parentList = await fileListOf(o.store, parent);
    const start = await o.sql.query<{ lsn: string }>('SELECT pg_backup_start($1, true)::text AS lsn', [
      `pgkeel ${rec.id}`,
    ]);
    rec.start_lsn = String(start.rows[0]?.lsn);
    const plan = planIncremental(
      parentList,
      await scanDataDir(o.dataDir),
      Math.floor(Date.parse(parent.start_time) / 1000),
      rec.id,
    );
    o.progress?.(
      `${o.type} backup ${rec.id} from ${o.member}: ${plan.copy.length} changed files, ${plan.deleted.length} deleted since ${parent.id}`,
    );
    rec.bytes = plan.list.filter((f) => f.ref === rec.id).reduce((s, f) => s + f.size, 0);
    rec.files.push(await storeTar(o, `${dir}/${INCR_ARCHIVE}`, plan.copy));
    const stop = await o.sql.query<{ lsn: string; labelfile: string; spcmapfile: string }>(
      'SELECT lsn::text AS lsn, labelfile, spcmapfile FROM pg_backup_stop(false)',
    );
    const s = stop.rows[0];
    if (!s) throw new Error('pg_backup_stop returned nothing');
    rec.stop_lsn = s.lsn;
    const tli = /START TIMELINE: (\d+)/.exec(s.labelfile);
    rec.timeline = tli ? Number(tli[1]) : 1;
    rec.files.push(await storeSmallFile(o.store, `${dir}/backup_label`, Buffer.from(s.labelfile)));
    if (s.spcmapfile) rec.files.push(await storeSmallFile(o.store, `${dir}/tablespace_map`, Buffer.from(s.spcmapfile)));
    const list = Buffer.from(JSON.stringify({ parent: parent.id, deleted: plan.deleted, files: plan.list }));
    rec.files.push(await storeSmallFile(o.store, `${dir}/${FILE_LIST}`, list, o.compression, o.level));
    return await completeBackup(o, rec, started);
  } catch (err) {
    await o.sql.query('SELECT pg_backup_stop(false)').catch(() => {}); // if it was started
    await failBackup(o.store, rec, err);
    throw new BackupError(
      'BACKUP_FAILED',
      `backup ${rec.id} failed: ${(err as Error).message}`,
      { backup: rec.id },
      { cause: err },
    );
  }
}

/** tar of `files` (relative to the data directory), run as postgres, compressed into the repository. */
async function storeTar(o: IncrementalOptions, path: string, files: readonly string[]): Promise<StoredFile> {
  const id = postgresIdentity();
  const tar = spawn('tar', ['-c', '-f', '-', '--null', '--no-recursion', '--ignore-failed-read', '-T', '-'], {
    cwd: o.dataDir,
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(id ? { uid: id.uid, gid: id.gid } : {}),
  });
  let stderr = '';
  tar.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((res) => tar.on('close', (code) => res(code)));
  tar.stdin.end(files.map((f) => `${f}\0`).join(''));
  const hash = createHash('sha256');
  let r: Awaited<ReturnType<BackupStore['put']>>;
  try {
    r = await o.store.put(path, tar.stdout, o.compression, { hashInto: hash, level: o.level, signal: o.signal });
  } catch (err) {
    tar.kill('SIGKILL'); // it would block on a pipe nobody reads
    await exited;
    throw err;
  }
  const code = await exited;
  // GNU tar exits 1 when a file changed or vanished while it was read: expected here, WAL replay repairs it.
  if (code !== 0 && code !== 1) throw new Error(`tar of the changed files failed (exit ${code}): ${stderr.trim()}`);
  return { name: r.path.slice(r.path.lastIndexOf('/') + 1), size: r.bytes, sha256: hash.digest('hex') };
}
