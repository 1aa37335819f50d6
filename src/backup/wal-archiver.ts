/**
 * The asynchronous WAL archiver the agent runs beside PostgreSQL (pgBackRest's archive-async model). Starting Node
 * per segment costs ~50 ms, so archive_command (wal-commands.ts) is a shell one-liner that only checks for
 * `<spool>/<file>.ok`; this long-lived process does the work ahead of it:
 *
 *   every interval (and on poke()) scan <data_dir>/pg_wal/archive_status/*.ready
 *   → push up to `parallel` files at a time, history files first, then oldest first
 *   → after each durable push write <spool>/<file>.ok   (archive_command removes it and exits 0)
 *   → on failure write <spool>/<file>.error with the message, retry later with exponential backoff
 *   → remove .ok/.error files whose WAL file is no longer .ready (PostgreSQL marked it .done)
 *
 * While it runs, <spool>/archiver.pid holds its pid: archive_command then waits (up to 5 s) for the .ok of the file
 * PostgreSQL asks for instead of starting Node — otherwise PostgreSQL, whose fast path is quicker than any push, would
 * catch up with the archiver and push the frontier segment itself, competing for the same CPU. A .error, a stale pid
 * (no /proc/<pid>) or the timeout sends it to the slow path.
 *
 * Safety: a .ok is written only after pushWal returned (durable, or identical content already stored), so
 * PostgreSQL never recycles a segment the repository does not hold. When this archiver is down, archive_command falls
 * through to `pgkeel archive-push`, which does the same push synchronously. A WAL_DIFFERENT_CONTENT refusal is a
 * failure like any other: PostgreSQL keeps the segment and its own archive_command reports it in the server log
 * (except a former primary's copy that differs only in WAL the cluster abandoned — wal.ts explains).
 */
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDirFor } from '../lib/proc.js';
import type { Compression } from './codec.js';
import type { BackupStore } from './store.js';
import { pushWal } from './wal.js';
import { compareWalNames, parseWalName } from './wal-names.js';

export interface ArchiverTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface WalArchiverOptions {
  readonly store: BackupStore;
  readonly dataDir: string;
  /** Where .ok/.error files go; archive_command (run by the postgres user) must be able to remove them. */
  readonly spoolDir: string;
  readonly compression?: Compression;
  readonly level?: number;
  /** Files pushed at once (default 4). */
  readonly parallel?: number;
  /** Scan period (default 250 ms). */
  readonly intervalMs?: number;
  /** Retry backoff after a failure: base doubled per consecutive failure of that file, capped (1 s .. 60 s). */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  readonly now?: () => number;
  readonly timers?: ArchiverTimers;
  /** A push failed (`file` is the WAL file), or a scan did (`file` is "(scan)"). */
  readonly onError?: (file: string, err: Error) => void;
  /** A segment counted as archived although the stored copy differs past `switchpoint`: this server left that
   *  timeline there (wal.ts, `abandonedAfter`). */
  readonly onAbandoned?: (file: string, switchpoint: string) => void;
  /** Written to <spool>/archiver.pid (default: this process's). */
  readonly pid?: number;
}

export interface ArchiverStats {
  readonly pushed: number;
  readonly failures: number;
  readonly lastArchived: { readonly name: string; readonly time: number } | null;
  readonly lastFailed: { readonly name: string; readonly time: number; readonly message: string } | null;
  /** .ready files not yet pushed at the last scan or push (the archive lag in files). */
  readonly backlog: number;
}

const READY = '.ready';
/** In the spool while an archiver runs: its pid (wal-commands.ts archiveCommand reads it). */
export const ARCHIVER_PID_FILE = 'archiver.pid';

export class WalArchiver {
  readonly #o: Required<Omit<WalArchiverOptions, 'level' | 'onError' | 'onAbandoned'>> &
    Pick<WalArchiverOptions, 'level' | 'onError' | 'onAbandoned'>;
  #pidWritten = false;
  #timer: unknown = null;
  #running = false;
  #pass: Promise<void> | null = null;
  #again = false;
  /** Files pushed (and .ok written) that are still .ready. */
  readonly #done = new Set<string>();
  readonly #retry = new Map<string, { attempts: number; at: number }>();
  #stats: { -readonly [K in keyof ArchiverStats]: ArchiverStats[K] } = {
    pushed: 0,
    failures: 0,
    lastArchived: null,
    lastFailed: null,
    backlog: 0,
  };

  constructor(opts: WalArchiverOptions) {
    this.#o = {
      ...opts,
      compression: opts.compression ?? 'lz4',
      parallel: Math.max(1, opts.parallel ?? 4),
      intervalMs: opts.intervalMs ?? 250,
      retryBaseMs: opts.retryBaseMs ?? 1000,
      retryMaxMs: opts.retryMaxMs ?? 60_000,
      now: opts.now ?? Date.now,
      pid: opts.pid ?? process.pid,
      timers: opts.timers ?? {
        setTimeout: (fn, ms) => setTimeout(fn, ms),
        clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
      },
    };
  }

  get stats(): ArchiverStats {
    return { ...this.#stats };
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.poke();
  }

  /** Scans now (PostgreSQL just finished a segment, or a test wants a pass). */
  poke(): void {
    if (!this.#running) return;
    if (this.#timer !== null) this.#o.timers.clearTimeout(this.#timer);
    this.#timer = null;
    this.runOnce()
      .catch((err: Error) => this.#o.onError?.('(scan)', err)) // pg_wal unreadable, spool not writable: retry next tick
      .finally(() => this.#schedule());
  }

  /** Stops scanning and waits for pushes in flight (they finish: a half-pushed file is never acknowledged anyway). */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer !== null) this.#o.timers.clearTimeout(this.#timer);
    this.#timer = null;
    await this.#pass;
    if (this.#pidWritten) await rm(join(this.#o.spoolDir, ARCHIVER_PID_FILE), { force: true });
    this.#pidWritten = false;
  }

  #schedule(): void {
    if (!this.#running || this.#timer !== null || this.#pass) return;
    this.#timer = this.#o.timers.setTimeout(() => {
      this.#timer = null;
      this.poke();
    }, this.#o.intervalMs);
  }

  /** One pass: scan, push everything due (at most `parallel` at once), clean the spool. Overlapping calls join. */
  runOnce(): Promise<void> {
    if (this.#pass) {
      this.#again = true;
      return this.#pass;
    }
    this.#pass = (async () => {
      try {
        do {
          this.#again = false;
          await this.#scanAndPush();
        } while (this.#again);
      } finally {
        this.#pass = null;
      }
    })();
    return this.#pass;
  }

  async #scanAndPush(): Promise<void> {
    const statusDir = join(this.#o.dataDir, 'pg_wal', 'archive_status');
    const ready = (await readdir(statusDir))
      .filter((n) => n.endsWith(READY))
      .map((n) => n.slice(0, -READY.length))
      .filter((n) => parseWalName(n) !== null);
    const readySet = new Set(ready);
    for (const n of this.#done) if (!readySet.has(n)) this.#done.delete(n);
    for (const n of this.#retry.keys()) if (!readySet.has(n)) this.#retry.delete(n);
    ensureDirFor(this.#o.spoolDir, 0o750); // the postgres user's: archive_command removes .ok files in it
    if (this.#running && !this.#pidWritten) {
      await writeFile(join(this.#o.spoolDir, ARCHIVER_PID_FILE), `${this.#o.pid}\n`);
      this.#pidWritten = true;
    }
    await this.#cleanSpool(readySet);
    const now = this.#o.now();
    const due = ready.filter((n) => !this.#done.has(n) && (this.#retry.get(n)?.at ?? 0) <= now).sort(compareWalNames);
    this.#stats.backlog = ready.filter((n) => !this.#done.has(n)).length;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < due.length) await this.#pushOne(due[next++] as string);
    };
    await Promise.all(Array.from({ length: Math.min(this.#o.parallel, due.length) }, worker));
  }

  async #pushOne(name: string): Promise<void> {
    const walPath = join(this.#o.dataDir, 'pg_wal', name);
    try {
      const res = await pushWal(this.#o.store, walPath, name, {
        compression: this.#o.compression,
        level: this.#o.level,
      });
      if (res.abandonedAfter) this.#o.onAbandoned?.(name, res.abandonedAfter);
      await writeFile(join(this.#o.spoolDir, `${name}.ok`), '');
      await rm(join(this.#o.spoolDir, `${name}.error`), { force: true });
      this.#done.add(name);
      this.#retry.delete(name);
      this.#stats.pushed++;
      this.#stats.backlog = Math.max(0, this.#stats.backlog - 1);
      this.#stats.lastArchived = { name, time: this.#o.now() };
    } catch (e) {
      const err = e as Error;
      const attempts = (this.#retry.get(name)?.attempts ?? 0) + 1;
      const delay = Math.min(this.#o.retryMaxMs, this.#o.retryBaseMs * 2 ** (attempts - 1));
      const time = this.#o.now();
      this.#retry.set(name, { attempts, at: time + delay });
      this.#stats.failures++;
      this.#stats.lastFailed = { name, time, message: err.message };
      await writeFile(join(this.#o.spoolDir, `${name}.error`), `${err.message}\n`).catch(() => {});
      this.#o.onError?.(name, err);
    }
  }

  /** Removes .ok/.error files of WAL files PostgreSQL no longer has .ready (archived and marked .done). */
  async #cleanSpool(readySet: Set<string>): Promise<void> {
    for (const f of await readdir(this.#o.spoolDir)) {
      const m = /^(.*)\.(ok|error)$/.exec(f);
      if (m && parseWalName(m[1] as string) && !readySet.has(m[1] as string))
        await rm(join(this.#o.spoolDir, f), { force: true });
    }
  }
}
