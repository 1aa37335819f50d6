/**
 * `restoreBackup`: fills an empty data directory from a backup chain and leaves it ready for archive recovery
 * (recovery.signal + the recovery settings). The repository is only read.
 *
 * Invariants:
 * - A target that exists and is not empty is refused before anything is read or written (RESTORE_TARGET_NOT_EMPTY).
 * - Archives stream from the repository (decrypted, decompressed by the lz4/zstd programs) straight into `tar -x`
 *   run as the postgres OS user: no temporary copy, and every file lands owned by postgres; the data directory is
 *   0700 as PostgreSQL requires.
 * - The chain is applied oldest first, a later backup's archives overriding earlier files (restorePlan). Only full
 *   backups exist so far; an incremental step will add its archives and a per-backup list of deleted files there.
 * - Once anything was written, a failure is RESTORE_FAILED naming the step, the partial directory and the way out.
 */
import { chmodSync, lstatSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePostgresDir, readNoFollow, writeFileForPostgres } from '../lib/ownership.js';
import { type BackupRecord, backupDir, chainOf, listRecords, selectBackup, usable } from './catalog.js';
import { BackupError } from './errors.js';
import { FILE_LIST } from './incremental-run.js';
import { describeTarget, type Recovery, renderRecoveryConf, selectionOf } from './recovery.js';
import type { BackupStore } from './store.js';
import { leadingMember } from './tar.js';
import { type ExtractCounters, extractArchive } from './extract.js';

export interface RestoreProgress {
  readonly backup: string;
  /** The archive being extracted (stored path), or null once extraction is over. */
  readonly archive: string | null;
  /** Bytes read from the repository so far, and in all (the archives' stored sizes): progress, exactly. */
  readonly storedBytes: number;
  readonly totalStoredBytes: number;
  /** Plain bytes extracted, counted as each archive completes. */
  readonly bytes: number;
  /** Files (non-directory entries) extracted so far. */
  readonly files: number;
}

export interface RestoreOptions {
  readonly store: BackupStore;
  readonly dataDir: string;
  /** A backup id; default: the newest usable backup that ends before the target. */
  readonly backupId?: string;
  readonly recovery: Recovery;
  /** The shell command PostgreSQL runs to fetch WAL (wal-commands.ts builds pgkeel's). */
  readonly restoreCommand: string;
  /** Keep archive_mode as backed up (default: off in the restored copy, so it never archives into the repo). */
  readonly archiving?: boolean;
  /** Leave standby.signal instead of recovery.signal: a new replica that replays the archive, then streams. */
  readonly standby?: boolean;
  /** Tablespace oid → directory to restore it into, instead of the path recorded in tablespace_map. */
  readonly tablespaces?: Readonly<Record<string, string>>;
  readonly onProgress?: (p: RestoreProgress) => void;
  readonly signal?: AbortSignal;
}

export interface RestoreResult {
  readonly backup: BackupRecord;
  /** The chain applied, full backup first. */
  readonly chain: readonly string[];
  readonly bytes: number;
  readonly files: number;
  /** Tablespaces restored: oid and the directory they are in now. */
  readonly tablespaces: readonly { oid: string; path: string }[];
}

/** One archive to extract: into the data directory (base) or into a tablespace's directory. */
export interface ExtractStep {
  readonly backup: string;
  /** Stored path in the repository. */
  readonly stored: string;
  /** Its stored size, as the record lists it. */
  readonly size: number;
  readonly into: { readonly kind: 'base' } | { readonly kind: 'tablespace'; readonly oid: string };
  /** An incremental/differential step: after extracting, delete what it deleted and take its backup_label. */
  readonly increment?: boolean;
}

const TABLESPACE_ARCHIVE = /^(\d+)\.tar(\.[a-z0-9]+)?$/;
const BASE_ARCHIVE = /^base\.tar(\.[a-z0-9]+)?$/;
const INCR_ARCHIVE_RE = /^incr\.tar(\.[a-z0-9]+)?$/;

/**
 * The archives to extract for a chain, in order: the full backup's base archive, then its tablespace archives; then
 * each incremental/differential backup's archive of changed files (incremental-run.ts), whose files win, after which
 * the files it records as deleted go and its backup_label replaces the one before.
 */
export function restorePlan(chain: readonly BackupRecord[]): ExtractStep[] {
  const steps: ExtractStep[] = [];
  for (const b of chain) {
    const names = b.files.map((f) => f.name);
    const size = (n: string) => b.files.find((f) => f.name === n)?.size ?? 0;
    if (b.type !== 'full') {
      const incr = names.find((n) => INCR_ARCHIVE_RE.test(n));
      if (!incr)
        throw new BackupError('RESTORE_FAILED', `backup ${b.id} lists no archive of changed files (incr.tar*)`, {
          backup: b.id,
        });
      steps.push({
        backup: b.id,
        stored: `${backupDir(b.id)}/${incr}`,
        size: size(incr),
        into: { kind: 'base' },
        increment: true,
      });
      continue;
    }
    const base = names.find((n) => BASE_ARCHIVE.test(n));
    if (!base)
      throw new BackupError('RESTORE_FAILED', `backup ${b.id} lists no base archive (base.tar*) among its files`, {
        backup: b.id,
      });
    steps.push({ backup: b.id, stored: `${backupDir(b.id)}/${base}`, size: size(base), into: { kind: 'base' } });
    for (const n of names.sort()) {
      const m = TABLESPACE_ARCHIVE.exec(n);
      if (m)
        steps.push({
          backup: b.id,
          stored: `${backupDir(b.id)}/${n}`,
          size: size(n),
          into: { kind: 'tablespace', oid: m[1] as string },
        });
    }
  }
  return steps;
}

/** The backup to restore: the one asked for (it must be usable and end before the target) or the newest such. */
export function chooseBackup(records: readonly BackupRecord[], recovery: Recovery, id?: string): BackupRecord[] {
  const sel = selectionOf(recovery.target);
  const what = describeTarget(recovery.target);
  if (id === undefined) {
    const b = selectBackup(records, sel);
    if (!b) {
      const all = usable(records);
      throw new BackupError(
        'BACKUP_NOT_FOUND',
        all.length === 0
          ? 'the repository holds no usable backup; take one with `pgkeel backup`'
          : `no usable backup ends before ${what} (the oldest, ${all[0]?.id}, ends at ${all[0]?.stop_time} / LSN ${all[0]?.stop_lsn})`,
      );
    }
    return chainOf(records, b.id);
  }
  const rec = records.find((r) => r.id === id);
  if (!rec) throw new BackupError('BACKUP_NOT_FOUND', `no backup ${id} in the repository`, { backup: id });
  if (!usable(records).some((r) => r.id === id))
    throw new BackupError(
      'BACKUP_NOT_FOUND',
      `backup ${id} is not usable (status ${rec.status}${rec.error ? `: ${rec.error}` : ''}, or its chain is broken)`,
      { backup: id },
    );
  const chain = chainOf(records, id);
  if (selectBackup(chain, sel)?.id !== id)
    throw new BackupError(
      'BACKUP_NOT_FOUND',
      `backup ${id} ends after ${what} (at ${rec.stop_time} / LSN ${rec.stop_lsn}); choose an older backup or omit --backup`,
      { backup: id },
    );
  return chain;
}

/** Refuses a target that exists and is not an empty directory; nothing is touched. */
export function assertEmptyTarget(dir: string, what = 'data directory'): void {
  let entries: string[];
  try {
    const st = lstatSync(dir);
    if (!st.isDirectory())
      throw new BackupError('RESTORE_TARGET_NOT_EMPTY', `the restore ${what} ${dir} exists and is not a directory`);
    entries = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (entries.length > 0)
    throw new BackupError(
      'RESTORE_TARGET_NOT_EMPTY',
      `the restore ${what} ${dir} is not empty (${entries.length} entries, e.g. ${entries.slice(0, 3).join(', ')}); nothing in it was changed: restore into a new or empty directory`,
    );
}

export async function restoreBackup(o: RestoreOptions): Promise<RestoreResult> {
  assertEmptyTarget(o.dataDir);
  const chain = chooseBackup(await listRecords(o.store), o.recovery, o.backupId);
  const backup = chain[chain.length - 1] as BackupRecord;
  const steps = restorePlan(chain);
  const conf = renderRecoveryConf(o.recovery, {
    restoreCommand: o.restoreCommand,
    archiving: o.archiving,
    comment: `backup ${backup.id} (ended ${backup.stop_time}, LSN ${backup.stop_lsn}); target: ${describeTarget(o.recovery.target)}`,
  });
  let step = '';
  const totals: ExtractCounters = { stored: 0, bytes: 0, files: 0 };
  const totalStoredBytes = steps.reduce((n, s) => n + s.size, 0);
  const report = (archive: string | null) =>
    o.onProgress?.({
      backup: backup.id,
      archive,
      storedBytes: totals.stored,
      totalStoredBytes,
      bytes: totals.bytes,
      files: totals.files,
    });
  // Tablespace directories must be new or empty too: known from tablespace_map at the head of the base archive, so
  // they are checked before anything is written.
  const planned =
    steps.some((s) => s.into.kind === 'tablespace') || Object.keys(o.tablespaces ?? {}).length > 0
      ? await plannedTablespaces(o.store, steps[0] as ExtractStep, o.tablespaces ?? {})
      : [];
  for (const t of planned) assertEmptyTarget(t.path, `directory of tablespace ${t.oid}`);
  try {
    ensurePostgresDir(o.dataDir, 0o700, 'data');
    chmodSync(o.dataDir, 0o700);
  } catch (err) {
    throw new BackupError('RESTORE_FAILED', `cannot restore into ${o.dataDir}: ${(err as Error).message}`, {
      backup: backup.id,
    });
  }
  try {
    let spaces: { oid: string; path: string }[] | null = null;
    for (const s of steps) {
      let dir = o.dataDir;
      if (s.into.kind === 'tablespace') {
        step = 'create the tablespace directories';
        spaces ??= tablespaceDirs(o.dataDir, o.tablespaces ?? {}, planned);
        const oid = s.into.oid;
        const ts = spaces.find((t) => t.oid === oid);
        if (!ts)
          throw new Error(`the backup has an archive for tablespace ${oid}, but tablespace_map does not list it`);
        dir = ts.path;
      }
      step = `extract ${s.stored} into ${dir}`;
      await extractArchive(o.store, s.stored, dir, totals, () => report(s.stored), o.signal);
      if (s.increment) {
        step = `apply backup ${s.backup}'s deletions and backup_label`;
        await applyIncrement(o.store, s.backup, o.dataDir);
      }
    }
    step = `prepare ${o.dataDir} for recovery`;
    prepareForRecovery(o.dataDir, conf, o.standby ? 'standby.signal' : 'recovery.signal');
    report(null);
    return {
      backup,
      chain: chain.map((b) => b.id),
      bytes: totals.bytes,
      files: totals.files,
      tablespaces: spaces ?? [],
    };
  } catch (err) {
    throw new BackupError(
      'RESTORE_FAILED',
      `restore of backup ${backup.id} failed at "${step}": ${(err as Error).message}. ${o.dataDir} is partially restored and not usable: remove it (and any tablespace directories restored) and run the restore again; the repository was not changed`,
      { backup: backup.id },
      { cause: err },
    );
  }
}

/** tablespace_map ("<oid> <path>" per line) as oid → directory, relocated as asked. */
export function parseTablespaceMap(
  text: string,
  relocate: Readonly<Record<string, string>>,
): { oid: string; path: string }[] {
  const out: { oid: string; path: string }[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const m = /^(\d+) (.+)$/.exec(line);
    if (!m) throw new Error(`tablespace_map has a malformed line: ${JSON.stringify(line)}`);
    out.push({ oid: m[1] as string, path: relocate[m[1] as string] ?? (m[2] as string) });
  }
  const unknown = Object.keys(relocate).filter((oid) => !out.some((t) => t.oid === oid));
  if (unknown.length > 0)
    throw new BackupError(
      'RESTORE_FAILED',
      `the backup has no tablespace ${unknown.join(', ')} to relocate (it has: ${out.map((t) => t.oid).join(', ') || 'none'})`,
    );
  return out;
}

/** The tablespaces as the base archive's tablespace_map names them, read from the head of the stored archive. */
async function plannedTablespaces(
  store: BackupStore,
  base: ExtractStep,
  relocate: Readonly<Record<string, string>>,
): Promise<{ oid: string; path: string }[]> {
  const map = await leadingMember(await store.get(base.stored), 'tablespace_map');
  return parseTablespaceMap(map?.toString('utf8') ?? '', relocate);
}

/**
 * After the base archive: the tablespace directories from the extracted tablespace_map (which must be the one
 * checked beforehand), created for postgres; tablespace_map is rewritten with relocated paths, and PostgreSQL makes
 * the pg_tblspc symlinks from it when recovery starts.
 */
function tablespaceDirs(
  dataDir: string,
  relocate: Readonly<Record<string, string>>,
  planned: readonly { oid: string; path: string }[],
): { oid: string; path: string }[] {
  const out = parseTablespaceMap(readNoFollow(join(dataDir, 'tablespace_map')) ?? '', relocate);
  if (JSON.stringify(out) !== JSON.stringify(planned))
    throw new Error('the extracted tablespace_map differs from the one at the head of the archive');
  for (const t of out) {
    assertEmptyTarget(t.path, `directory of tablespace ${t.oid}`);
    ensurePostgresDir(t.path, 0o700, 'data');
  }
  if (Object.keys(relocate).length > 0)
    writeFileForPostgres(join(dataDir, 'tablespace_map'), out.map((t) => `${t.oid} ${t.path}\n`).join(''));
  return out;
}

/** After an incremental step: remove the files it recorded as deleted, write its backup_label and tablespace_map. */
async function applyIncrement(store: BackupStore, id: string, dataDir: string): Promise<void> {
  const listPath = await store.find(`${backupDir(id)}/${FILE_LIST}`);
  if (!listPath) throw new Error(`backup ${id} has no file list`);
  const list = JSON.parse((await store.read(listPath)).toString('utf8')) as { deleted: string[] };
  for (const rel of list.deleted) {
    if (rel.split('/').some((p) => p === '..' || p === '') || rel.startsWith('/'))
      throw new Error(`backup ${id} lists a deleted file outside the data directory: ${JSON.stringify(rel)}`);
    rmSync(join(dataDir, rel), { force: true });
  }
  for (const name of ['backup_label', 'tablespace_map']) {
    const stored = await store.find(`${backupDir(id)}/${name}`);
    if (stored) writeFileForPostgres(join(dataDir, name), (await store.read(stored)).toString('utf8'), 0o600);
    else if (name === 'tablespace_map') rmSync(join(dataDir, name), { force: true });
  }
}

/**
 * Removes what must not survive into the restored server and writes the recovery settings: no postmaster.pid or
 * stale signal files, an empty pg_wal (with archive_status) so every segment comes from the archive, recovery.signal,
 * and the settings appended to postgresql.auto.conf. Files are replaced, never written through a symlink.
 */
function prepareForRecovery(dataDir: string, conf: string, signal: 'recovery.signal' | 'standby.signal'): void {
  for (const f of ['postmaster.pid', 'postmaster.opts', 'standby.signal', 'recovery.signal', 'backup_label.old'])
    rmSync(join(dataDir, f), { force: true });
  const wal = join(dataDir, 'pg_wal');
  let walIsDir = false;
  try {
    walIsDir = lstatSync(wal).isDirectory();
  } catch {
    // absent: created below
  }
  if (walIsDir) {
    for (const e of readdirSync(wal))
      if (e !== 'archive_status') rmSync(join(wal, e), { recursive: true, force: true });
  } else rmSync(wal, { force: true });
  ensurePostgresDir(wal, 0o700, 'data');
  const status = join(wal, 'archive_status');
  rmSync(status, { recursive: true, force: true });
  ensurePostgresDir(status, 0o700, 'data');
  if (!readNoFollow(join(dataDir, 'backup_label')))
    throw new Error('the restored data directory has no backup_label (not a base backup?)');
  const auto = join(dataDir, 'postgresql.auto.conf');
  writeFileForPostgres(auto, (readNoFollow(auto) ?? '') + conf, 0o600);
  writeFileForPostgres(join(dataDir, signal), '', 0o600);
}
