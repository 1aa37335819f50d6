/**
 * One full backup: PostgreSQL's BASE_BACKUP, compressed by the server, streamed into the repository as it arrives.
 * The bytes are never decompressed or recompressed here; they only pass through encryption when the repository is
 * encrypted. See catalog.ts for the record's life (running → ok | failed).
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { PassThrough } from 'node:stream';
import type { Compression } from './codec.js';
import { type BackupRecord, backupDir, makeBackupId, type StoredFile, writeRecord } from './catalog.js';
import { BackupError } from './errors.js';
import type { BackupStore } from './store.js';
import { segmentOfLsn } from './wal-names.js';

/** What a full backup needs from the member it reads: a replication connection running BASE_BACKUP. */
export interface BaseBackupSource {
  readonly member: string;
  /** IDENTIFY_SYSTEM: the system identifier and the current timeline. */
  identify(): Promise<{ systemId: string; timeline: number }>;
  serverVersion(): Promise<number>;
  baseBackup(
    opts: { label: string; compression: Compression; level?: number; signal?: AbortSignal },
    sink: ArchiveSink,
  ): Promise<void>;
}

/** The callbacks BASE_BACKUP's stream drives (awaited: backpressure). */
export interface ArchiveSink {
  start(info: { startLsn: string; timeline: number }): Promise<void> | void;
  archive(name: string, tablespacePath: string): Promise<void>;
  data(chunk: Buffer): Promise<void>;
  manifest(): Promise<void>;
  end(info: { endLsn: string; timeline: number }): Promise<void>;
}

export interface FullBackupOptions {
  readonly store: BackupStore;
  readonly source: BaseBackupSource;
  readonly compression: Compression;
  readonly level?: number;
  readonly now: () => Date;
  readonly signal?: AbortSignal;
  /** Waits until `walFile` is in the repository (the backup is not usable before); throws if it never arrives. */
  readonly waitForWal: (walFile: string, timeline: number, backupId: string) => Promise<void>;
  readonly walSegmentSize?: number;
  readonly progress?: (line: string) => void;
}

/** Runs a full backup; returns its `ok` record, or throws BACKUP_FAILED after marking the record failed. */
export async function runFullBackup(o: FullBackupOptions): Promise<BackupRecord> {
  const started = o.now();
  const { systemId, timeline } = await o.source.identify();
  await o.store.claimSystem(systemId);
  const rec: BackupRecord = {
    id: makeBackupId('full', started),
    type: 'full',
    parent: null,
    member: o.source.member,
    timeline,
    start_lsn: '0/0',
    stop_lsn: null,
    start_time: started.toISOString(),
    stop_time: null,
    bytes: 0,
    repo_bytes: 0,
    duration_s: null,
    status: 'running',
    system_identifier: systemId,
    pg_version: await o.source.serverVersion(),
    compression: o.compression,
    wal_start: null,
    wal_stop: null,
    files: [],
    writer: { host: hostname(), pid: process.pid },
  };
  await writeRecord(o.store, rec);
  const dir = backupDir(rec.id);
  let current: { pass: PassThrough; done: Promise<StoredFile> } | null = null;
  let manifest: Buffer[] | null = null;

  const open = (name: string, precompressed: boolean, compression: Compression) => {
    const pass = new PassThrough({ highWaterMark: 1 << 20 });
    pass.on('error', () => {}); // surfaces through the put's iteration; not an uncaught 'error' before it starts
    const hash = createHash('sha256');
    let size = 0;
    const counted = (async function* () {
      for await (const c of pass) yield c as Buffer;
    })();
    const done = o.store
      .put(`${dir}/${name}`, counted, compression, { precompressed, signal: o.signal, hashInto: hash })
      .then((r): StoredFile => {
        size = r.bytes;
        return { name: r.path.slice(dir.length + 1), size, sha256: hash.digest('hex') };
      });
    return { pass, done };
  };
  const closeCurrent = async () => {
    if (!current) return;
    const c = current;
    current = null;
    c.pass.end();
    rec.files.push(await c.done);
  };

  try {
    await o.source.baseBackup(
      { label: `pgkeel ${rec.id}`, compression: o.compression, level: o.level, signal: o.signal },
      {
        start(info) {
          rec.start_lsn = info.startLsn;
          rec.timeline = info.timeline;
        },
        async archive(name) {
          await closeCurrent();
          // base.tar (the data directory) or <oid>.tar for a tablespace; PostgreSQL names them so, + .lz4 etc.
          const plain = name.replace(/\.(lz4|zst|gz)$/, '');
          if (!/^(base|\d+)\.tar$/.test(plain)) throw new Error(`unexpected archive name from the server: ${name}`);
          current = open(plain, true, o.compression);
          current.done.catch(() => {}); // observed by closeCurrent
        },
        async data(chunk) {
          if (manifest) {
            manifest.push(Buffer.from(chunk));
            return;
          }
          if (!current) throw new Error('archive data before any archive started');
          const c = current;
          // Wait for room — or for the put to fail (a full repository): it stops reading, so no drain would come.
          if (!c.pass.write(chunk))
            await Promise.race([new Promise<void>((r) => c.pass.once('drain', r)), c.done.then(() => undefined)]);
        },
        async manifest() {
          await closeCurrent();
          manifest = [];
        },
        async end(info) {
          await closeCurrent();
          rec.stop_lsn = info.endLsn;
        },
      },
    );
    if (!manifest || !rec.stop_lsn) throw new Error('the server ended the backup without a manifest');
    const man = Buffer.concat(manifest);
    rec.bytes = manifestBytes(man);
    rec.files.push(await storeSmallFile(o.store, `${dir}/backup_manifest`, man));
    return await completeBackup(o, rec, started);
  } catch (err) {
    const cur = current as { pass: PassThrough } | null;
    cur?.pass.destroy(err as Error);
    await failBackup(o.store, rec, err);
    throw new BackupError(
      'BACKUP_FAILED',
      `backup ${rec.id} failed: ${(err as Error).message}`,
      { backup: rec.id },
      { cause: err },
    );
  }
}

/**
 * The end every backup type shares, once its files are stored: the WAL range it needs, the wait until its last
 * segment is archived, then the record rewritten as `ok`.
 */
export async function completeBackup(
  o: Pick<FullBackupOptions, 'store' | 'now' | 'waitForWal' | 'walSegmentSize' | 'progress'>,
  rec: BackupRecord,
  started: Date,
): Promise<BackupRecord> {
  const segSize = o.walSegmentSize ?? 16 * 1024 * 1024;
  rec.wal_start = segmentOfLsn(rec.timeline, rec.start_lsn, segSize);
  // The segment holding the stop LSN: recovery reads the record there to pass it (a backup from a standby may stop
  // exactly at a segment boundary, and then that next segment must be archived too — the restore point the leader
  // writes before switching makes sure it is not empty).
  rec.wal_stop = segmentOfLsn(rec.timeline, rec.stop_lsn as string, segSize);
  o.progress?.(`backup ${rec.id}: data stored; waiting for WAL ${rec.wal_stop} in the archive`);
  await o.waitForWal(rec.wal_stop, rec.timeline, rec.id);
  const stopped = o.now();
  rec.stop_time = stopped.toISOString();
  rec.duration_s = Math.round((stopped.getTime() - started.getTime()) / 100) / 10;
  rec.repo_bytes = rec.files.reduce((s, f) => s + f.size, 0);
  rec.status = 'ok';
  delete rec.writer;
  await writeRecord(o.store, rec);
  return rec;
}

/** Stores a small file (a manifest, a label, a file list) and returns its entry for the record. */
export async function storeSmallFile(
  store: BackupStore,
  path: string,
  data: Buffer,
  compression: Compression = 'none',
  level?: number,
): Promise<StoredFile> {
  const hash = createHash('sha256');
  const r = await store.put(path, [data], compression, { hashInto: hash, level });
  return { name: r.path.slice(r.path.lastIndexOf('/') + 1), size: r.bytes, sha256: hash.digest('hex') };
}

/** Marks a backup failed and removes its data (the record stays, so `backup list` shows what happened). */
export async function failBackup(store: BackupStore, rec: BackupRecord, err: unknown): Promise<void> {
  rec.status = 'failed';
  rec.error = (err as Error).message;
  delete rec.writer;
  // The whole directory, temporary files of a killed writer included; then the record alone again.
  await store.repo.delete(backupDir(rec.id)).catch(() => {});
  rec.files = [];
  await writeRecord(store, rec).catch(() => {});
}

/** Sum of the file sizes a PostgreSQL backup manifest lists. */
export function manifestBytes(manifest: Buffer): number {
  const m = JSON.parse(manifest.toString('utf8')) as { Files?: { Size?: number }[] };
  return (m.Files ?? []).reduce((s, f) => s + (f.Size ?? 0), 0);
}
