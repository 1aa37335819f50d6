/**
 * Running programs, as the `postgres` OS user when pgkeel runs as root (PostgreSQL refuses to run as root).
 */
import { spawn, type SpawnOptions } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, constants, existsSync, fchownSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface RunAs {
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

let cached: RunAs | null | undefined;

/** The identity PostgreSQL processes run under: `postgres` when we are root, otherwise ourselves (null). */
export function postgresIdentity(): RunAs | null {
  if (cached !== undefined) return cached;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return (cached = null);
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return (cached = { uid, gid, home: '/var/lib/postgresql' });
  } catch {
    throw new Error(
      'running as root, but there is no "postgres" OS user to run PostgreSQL as; install Debian\'s postgresql-15 package (it creates the user) or run pgkeel as a non-root user',
    );
  }
}

/**
 * mkdir -p; the directory itself, when this call creates it, is handed to the PostgreSQL user (as root). Missing
 * parents are created root-owned (0755), and a directory that already exists is left alone: pgkeel never chowns a
 * directory it did not create (lib/ownership.ts has the checked variants the agent uses).
 */
export function ensureDirFor(path: string, mode = 0o700): void {
  if (existsSync(path)) return;
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  mkdirSync(path, { mode });
  chmodSync(path, mode);
  chownForPostgres(path);
}

/** Hands a file or directory pgkeel just made to the PostgreSQL user (as root); never follows a symlink. */
export function chownForPostgres(path: string): void {
  const id = postgresIdentity();
  if (!id) return;
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    fchownSync(fd, id.uid, id.gid);
  } finally {
    closeSync(fd);
  }
}

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly input?: string;
  /** Run as the PostgreSQL OS user (when root). Default true. */
  readonly asPostgres?: boolean;
}

/** Runs a program to completion, capturing output (last 64 KiB of each stream). Never throws for a non-zero exit. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const id = opts.asPostgres === false ? null : postgresIdentity();
  const so: SpawnOptions = {
    env: { ...process.env, ...(id ? { HOME: id.home } : {}), ...opts.env },
    cwd: opts.cwd ?? (id ? '/' : undefined),
    stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    ...(id ? { uid: id.uid, gid: id.gid } : {}),
  };
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args as string[], so);
    let stdout = '';
    let stderr = '';
    const cap = (s: string, d: Buffer) => (s + d.toString('utf8')).slice(-65536);
    child.stdout?.on('data', (d: Buffer) => (stdout = cap(stdout, d)));
    child.stderr?.on('data', (d: Buffer) => (stderr = cap(stderr, d)));
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    const onAbort = () => child.kill('SIGKILL');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      reject(err);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({ code, signal, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/**
 * True if a process with this pid exists and is not a zombie. Zombies matter: where PID 1 does not reap orphans
 * (some containers), a SIGKILLed postmaster stays a zombie forever and signal 0 still "reaches" it.
 */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 3, after the parenthesised command name (which may itself contain spaces or parentheses).
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (not Linux): signal 0 is all we know
  }
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
