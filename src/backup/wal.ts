/**
 * The WAL archive in the repository: push one file (archive_command), get one back (restore_command), list, and the
 * presence check the verifier uses. Paths follow wal-names.ts `walRepoPath`; the compression suffix is the store's.
 *
 * Invariants:
 * - A push returns only once the file is durable in the repository (the repo's put fsyncs the file and directory).
 * - A name is never overwritten: a push of content identical to what is stored (whatever compression it was stored
 *   with) succeeds without writing; different content fails with WAL_DIFFERENT_CONTENT and the stored file stays —
 *   two primaries on one timeline must be investigated, never papered over. One exception, proven from the bytes:
 *   the segment in which this server's own pg_wal says its timeline was left (a history file of a later timeline
 *   names the switchpoint), when both copies are equal up to that switchpoint. That is a former primary after
 *   pg_rewind: the replica that followed the new timeline archived the segment up to the fork (archive_mode=always
 *   archives a standby's last segment of the old timeline), and this copy differs only in WAL the cluster abandoned.
 *   It counts as archived (`abandonedAfter` says so), else PostgreSQL would retry it forever and stop archiving.
 * - A get writes the destination through a temporary name and a rename: PostgreSQL never sees half a segment.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Compression } from './codec.js';
import { BackupError, isBackupError } from './errors.js';
import type { BackupStore } from './store.js';
import { logicalPath } from './store.js';
import {
  compareWalNames,
  DEFAULT_WAL_SEGMENT_SIZE,
  historyFileName,
  parseHistory,
  parseWalName,
  segmentStartLsn,
  walRepoPath,
} from './wal-names.js';

export interface PushOptions {
  readonly compression?: Compression;
  readonly level?: number;
  readonly signal?: AbortSignal;
}

export interface PushResult {
  /** The stored path (with its compression suffix). */
  readonly path: string;
  /** False when an identical file was already archived (nothing written). */
  readonly created: boolean;
  /** Bytes stored (0 when nothing was written). */
  readonly bytes: number;
  /** Set when the stored copy differs only past the switchpoint where this server's timeline was left (see the
   *  invariants): that switchpoint; nothing was written. */
  readonly abandonedAfter?: string;
}

function checkName(fileName: string): string {
  if (!parseWalName(fileName)) throw new Error(`"${fileName}" is not a WAL file name`);
  return fileName;
}

/** Archives the WAL file at `walPath` under `fileName` (see the invariants above). */
export async function pushWal(
  store: BackupStore,
  walPath: string,
  fileName: string,
  opts: PushOptions = {},
): Promise<PushResult> {
  const logical = walRepoPath(checkName(fileName));
  await stat(walPath); // a missing file is ENOENT, not a compression program's complaint
  const existing = await store.find(logical);
  if (existing) return sameOrRefuse(store, existing, await readFile(walPath), fileName, walPath);
  const res = await store.putFile(logical, walPath, opts.compression ?? 'lz4', {
    ifAbsent: true,
    level: opts.level,
    signal: opts.signal,
  });
  // Lost a race with another pusher of the same name (the agent's archiver and archive_command): compare with theirs.
  if (!res.created) return sameOrRefuse(store, res.path, await readFile(walPath), fileName, walPath);
  return { path: res.path, created: true, bytes: res.bytes };
}

async function sameOrRefuse(
  store: BackupStore,
  storedPath: string,
  content: Buffer,
  fileName: string,
  walPath: string,
): Promise<PushResult> {
  const stored = await store.read(storedPath);
  if (stored.equals(content)) return { path: storedPath, created: false, bytes: 0 };
  const fork = await leftAt(dirname(walPath), fileName);
  if (fork && fork.offset <= stored.length && fork.offset <= content.length) {
    if (stored.subarray(0, fork.offset).equals(content.subarray(0, fork.offset)))
      return { path: storedPath, created: false, bytes: 0, abandonedAfter: fork.lsn };
  }
  throw new BackupError(
    'WAL_DIFFERENT_CONTENT',
    `WAL file ${fileName} is already archived as ${store.repo.location}/${storedPath} with different content (${stored.length} bytes stored, ${content.length} here); the stored file is kept and ${fileName} stays in pg_wal — two servers may have written the same timeline`,
    { wal: fileName, path: storedPath },
  );
}

/**
 * Where, within segment `fileName`, its timeline was left according to the history files beside it in pg_wal (the
 * newest later timeline's history names the switchpoint); null when none does or the switchpoint is not inside it.
 */
export async function leftAt(walDir: string, fileName: string): Promise<{ offset: number; lsn: string } | null> {
  const seg = parseWalName(fileName);
  if (seg?.kind !== 'segment') return null;
  let names: string[];
  try {
    names = await readdir(walDir);
  } catch {
    return null;
  }
  const later = names
    .map((n) => parseWalName(n))
    .filter((n): n is NonNullable<typeof n> => n?.kind === 'history' && n.timeline > seg.timeline)
    .sort((a, b) => b.timeline - a.timeline)[0];
  if (!later) return null;
  const entry = parseHistory(await readFile(join(walDir, historyFileName(later.timeline)), 'utf8')).find(
    (e) => e.timeline === seg.timeline,
  );
  if (!entry) return null;
  const start = segmentStartLsn(fileName);
  const offset = entry.switchpoint - start;
  if (offset < 0 || offset >= DEFAULT_WAL_SEGMENT_SIZE) return null;
  return { offset, lsn: entry.switchpointText };
}

/**
 * Restores a WAL file into `destPath` (through `destPath.<random>.pgkeel-tmp`, renamed when whole). Missing →
 * WAL_NOT_FOUND. Not fsync'd: PostgreSQL fetches again after a crash, and recovery speed is the point here.
 */
export async function getWal(
  store: BackupStore,
  fileName: string,
  destPath: string,
): Promise<{ path: string; bytes: number }> {
  const stored = await findWal(store, fileName);
  if (!stored)
    throw new BackupError('WAL_NOT_FOUND', `WAL file ${fileName} is not in the repository ${store.repo.location}`, {
      wal: fileName,
    });
  const tmp = `${destPath}.${randomBytes(4).toString('hex')}.pgkeel-tmp`;
  try {
    const out = createWriteStream(tmp, { flags: 'wx', mode: 0o600 });
    await pipeline(await store.get(stored), out);
    await rename(tmp, destPath);
    return { path: stored, bytes: out.bytesWritten };
  } catch (err) {
    await rm(tmp, { force: true });
    if (isBackupError(err, 'REPO_NOT_FOUND'))
      throw new BackupError('WAL_NOT_FOUND', `WAL file ${fileName} vanished from ${store.repo.location}`, {
        wal: fileName,
      });
    throw err;
  }
}

/** The stored path of a WAL file, or null. */
export function findWal(store: BackupStore, fileName: string): Promise<string | null> {
  return store.find(walRepoPath(checkName(fileName)));
}

export interface ArchivedWal {
  readonly name: string;
  /** The stored path (with compression suffix) and its stored size. */
  readonly path: string;
  readonly size: number;
}

/** Every archived WAL file (history files first, then timeline and position — wal-names.ts compareWalNames). */
export async function listWal(store: BackupStore): Promise<ArchivedWal[]> {
  const out: ArchivedWal[] = [];
  for (const f of await store.repo.list('wal')) {
    const name = logicalPath(f.path).split('/').pop() as string;
    if (parseWalName(name) && walRepoPath(name) === logicalPath(f.path)) out.push({ name, path: f.path, size: f.size });
  }
  return out.sort((a, b) => compareWalNames(a.name, b.name));
}

/** Which of `names` are archived (one listing of the repository, not a lookup per name). */
export async function walPresent(
  store: BackupStore,
  names: readonly string[],
): Promise<{ present: string[]; missing: string[] }> {
  const have = new Set((await listWal(store)).map((w) => w.name));
  const present: string[] = [];
  const missing: string[] = [];
  for (const n of names) (have.has(n) ? present : missing).push(n);
  return { present, missing };
}
