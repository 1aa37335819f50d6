/**
 * PostgreSQL's archive_command and restore_command for a pgkeel repository, and what `pgkeel archive-get` does.
 *
 * archive_command — the fast path costs a shell, not a Node start: the agent's archiver (wal-archiver.ts) has
 * usually pushed the segment already and left `<spool>/<file>.ok`; if the archiver runs (its pid file names a live
 * process) the command waits up to 5 s for that .ok (unless a .error shows the archiver failed on it); otherwise
 * (agent down, archiver failing) it runs `pgkeel archive-push` itself, which is correct on its own, only slower:
 *
 *   test -f S/%f.ok && rm -f S/%f.ok && exit 0
 *   if read p < S/archiver.pid && test -d /proc/$p; then  (wait for S/%f.ok, 25 ms steps, while no S/%f.error)  fi
 *   exec NODE MAIN archive-push --repo R [...] %p
 *
 * restore_command — with prefetch, `pgkeel archive-get` answers %f and fetches the next N segments in parallel into
 * the spool before it exits (synchronously: nothing outlives the command, and PostgreSQL's startup process asks for
 * one file at a time, so no two archive-gets race on the spool). The next N requests are then a `mv` in the shell:
 *
 *   mv -f SPOOL/%f %p 2>/dev/null || exec NODE MAIN archive-get --repo R [...] --prefetch N --spool SPOOL %f %p
 *
 * The spool holds only whole files (fetched through a temporary name and renamed). archive-get exits 0 (restored),
 * 1 (not in the repository, or any error: PostgreSQL then tries streaming or ends recovery) or 2 (usage), never
 * above 125, which would abort recovery.
 *
 * Quoting: every path is single-quoted for sh, then `%` is doubled for PostgreSQL's placeholder expansion. The
 * result is the setting's value; writing it into postgresql.conf quotes it again (postgres/conf.ts doubles `'` and
 * `\`). Paths with control characters are refused (a conf string cannot hold a newline).
 */
import { copyFile, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Compression } from './codec.js';
import { isBackupError } from './errors.js';
import type { BackupStore } from './store.js';
import { getWal } from './wal.js';
import { ARCHIVER_PID_FILE } from './wal-archiver.js';
import { DEFAULT_WAL_SEGMENT_SIZE, nextSegment, parseWalName } from './wal-names.js';

/** How long archive_command waits for a running archiver's .ok: 200 × 25 ms = 5 s. */
const WAIT_STEPS = 200;

export interface WalCommandOptions {
  /** The repository directory. */
  readonly repo: string;
  readonly keyFile?: string;
  /** The Node binary (default: this process's). */
  readonly node?: string;
  /** The CLI entry point (default: dist/src/cli/wal-main.js, which loads only what these commands need). */
  readonly main?: string;
}

export interface ArchiveCommandOptions extends WalCommandOptions {
  /** The archiver's spool (its .ok files make the fast path); without it every segment starts Node. */
  readonly spool?: string;
  readonly compression?: Compression;
  readonly level?: number;
}

export interface RestoreCommandOptions extends WalCommandOptions {
  /** Segments fetched ahead into `spool` (0: none). */
  readonly prefetch?: number;
  readonly spool?: string;
  readonly walSegmentSize?: number;
}

/** A word for sh, with `%` doubled for PostgreSQL's %p/%f expansion. */
export function shellArg(word: string): string {
  if (/[\u0000-\u001f\u007f]/.test(word))
    throw new Error(`refusing a path with a control character: ${JSON.stringify(word)}`);
  const quoted = /^[A-Za-z0-9_./=:+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
  return quoted.replace(/%/g, '%%');
}

function pgkeel(o: WalCommandOptions, cmd: string): string[] {
  const main = o.main ?? fileURLToPath(new URL('../cli/wal-main.js', import.meta.url));
  const words = [o.node ?? process.execPath, main, cmd, '--repo', o.repo];
  if (o.keyFile) words.push('--key-file', o.keyFile);
  return words.map(shellArg);
}

/** The archive_command value (see the header). */
export function archiveCommand(o: ArchiveCommandOptions): string {
  const words = pgkeel(o, 'archive-push');
  if (o.compression) words.push('--compress', o.compression);
  if (o.level !== undefined) words.push('--level', String(o.level));
  const push = `exec ${words.join(' ')} %p`;
  if (!o.spool) return push;
  const s = shellArg(o.spool);
  const took = `test -f ${s}/%f.ok && rm -f ${s}/%f.ok && exit 0`;
  const wait =
    `if read p < ${s}/${ARCHIVER_PID_FILE} && test -d /proc/$p; then i=0; ` +
    `while test $i -lt ${WAIT_STEPS} && ! test -f ${s}/%f.error; do ${took}; sleep 0.025; i=$((i+1)); done; fi 2>/dev/null`;
  return `${took}; ${wait}; ${push}`;
}

/** The restore_command value (see the header). */
export function restoreCommand(o: RestoreCommandOptions): string {
  const words = pgkeel(o, 'archive-get');
  const prefetch = o.prefetch ?? 0;
  if (prefetch > 0 && !o.spool) throw new Error('restore_command: prefetch needs a spool directory');
  if (prefetch > 0 && o.spool) words.push('--prefetch', String(prefetch), '--spool', shellArg(o.spool));
  if (o.walSegmentSize && o.walSegmentSize !== DEFAULT_WAL_SEGMENT_SIZE)
    words.push('--wal-segment-size', String(o.walSegmentSize));
  const get = `${words.join(' ')} %f %p`;
  return prefetch > 0 && o.spool ? `mv -f ${shellArg(o.spool)}/%f %p 2>/dev/null || exec ${get}` : get;
}

export interface ArchiveGetOptions {
  readonly prefetch?: number;
  readonly spool?: string;
  readonly walSegmentSize?: number;
}

export type ArchiveGetResult = 'spool' | 'repo' | 'missing';

/**
 * `pgkeel archive-get FILE DEST`: from the spool if prefetched, else from the repository; then (with prefetch) the
 * next segments into the spool. Prefetch failures are ignored: each of those files is asked for again later.
 */
export async function archiveGet(
  store: BackupStore,
  fileName: string,
  dest: string,
  o: ArchiveGetOptions = {},
): Promise<ArchiveGetResult> {
  const w = parseWalName(fileName);
  const spool = o.prefetch && o.spool ? o.spool : null;
  if (spool && w?.kind === 'segment') {
    await cleanSpool(spool, fileName);
    if (await takeFromSpool(join(spool, fileName), dest)) return 'spool';
  }
  try {
    await getWal(store, fileName, dest);
  } catch (err) {
    if (isBackupError(err, 'WAL_NOT_FOUND')) return 'missing';
    throw err;
  }
  if (spool && w?.kind === 'segment') {
    const segSize = o.walSegmentSize ?? DEFAULT_WAL_SEGMENT_SIZE;
    const ahead: string[] = [];
    for (let n = fileName, i = 0; i < (o.prefetch as number); i++) ahead.push((n = nextSegment(n, segSize)));
    await mkdir(spool, { recursive: true });
    await Promise.all(ahead.map((n) => getWal(store, n, join(spool, n)).catch(() => undefined)));
  }
  return 'repo';
}

async function takeFromSpool(from: string, dest: string): Promise<boolean> {
  try {
    await rename(from, dest);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return false;
    if (code !== 'EXDEV') throw err;
  }
  await copyFile(from, `${dest}.pgkeel-tmp`);
  await rename(`${dest}.pgkeel-tmp`, dest);
  await rm(from, { force: true });
  return true;
}

/**
 * Removes what a killed archive-get left (temporary files) and segments of this timeline before `current`:
 * recovery has passed them (they were fetched directly while a prefetch was still writing them).
 */
async function cleanSpool(spool: string, current: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(spool);
  } catch {
    return;
  }
  const tli = current.slice(0, 8);
  for (const n of names)
    if (n.endsWith('.pgkeel-tmp') || (parseWalName(n)?.kind === 'segment' && n.startsWith(tli) && n < current))
      await rm(join(spool, n), { force: true });
}
