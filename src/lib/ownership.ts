/**
 * Who owns what when pgkeel runs as root and PostgreSQL as `postgres`. The invariant: nothing the root-run agent
 * reads, writes or executes can be replaced by `postgres`, and pgkeel hands to `postgres` only what it created for
 * PostgreSQL (the data and socket directories, the log file and pgpass) — never a directory it found.
 *
 * - Directories pgkeel creates on the way to a data directory stay root's (0755): `data_dir: /pgdata` must not
 *   hand `/` to `postgres`.
 * - Files root writes where `postgres` can write too (inside the data directory) are unlinked and created afresh
 *   with O_EXCL, so a symlink planted by `postgres` (pg_hba.conf → /etc/shadow) is replaced, never followed.
 */
import {
  chmodSync,
  closeSync,
  constants,
  fchownSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { dirname, resolve } from 'node:path';
import { chownForPostgres, postgresIdentity } from './proc.js';

export type OwnershipCode = 'FS_NOT_USABLE_BY_POSTGRES' | 'FS_SYMLINK_REFUSED' | 'CONFIG_INSECURE';

export class OwnershipError extends Error {
  constructor(
    readonly code: OwnershipCode,
    message: string,
  ) {
    super(message);
    this.name = 'OwnershipError';
  }
}

/** mkdir -p; returns the directories it created, outermost first. Created directories are root's (or ours). */
export function makeDirs(path: string, mode = 0o755): string[] {
  const missing: string[] = [];
  for (let p = resolve(path); ; p = dirname(p)) {
    if (exists(p)) break;
    missing.unshift(p);
    if (dirname(p) === p) break;
  }
  for (const p of missing) {
    mkdirSync(p, { mode });
    chmodSync(p, mode); // the umask must not decide who may enter
  }
  return missing;
}

/** lstat-based: a dangling symlink exists too. */
export function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * A directory PostgreSQL writes (data directory, socket directory). Missing parents are created root-owned; the
 * directory itself, when pgkeel creates it, is handed to `postgres`. One that already exists is never chowned:
 * it must already be usable — the data directory owned by `postgres` (PostgreSQL refuses any other owner), a
 * socket directory writable by it.
 */
export function ensurePostgresDir(path: string, mode: number, use: 'data' | 'socket'): void {
  makeDirs(dirname(path));
  const created = !exists(path);
  if (created) {
    mkdirSync(path, { mode });
    chmodSync(path, mode);
  }
  const id = postgresIdentity();
  if (!id) return;
  const st = lstatSync(path);
  if (st.isSymbolicLink()) {
    const target = statSync(path);
    if (!target.isDirectory()) throw notUsable(path, 'is a symlink to something that is not a directory', use);
    if (!usable(target, id, use))
      throw notUsable(path, `points to a directory owned by uid ${target.uid} (mode ${octal(target.mode)})`, use);
    return;
  }
  if (created) {
    chownForPostgres(path);
    return;
  }
  if (!st.isDirectory()) throw notUsable(path, 'exists and is not a directory', use);
  if (!usable(st, id, use)) throw notUsable(path, `exists and is owned by uid ${st.uid} (mode ${octal(st.mode)})`, use);
}

function usable(st: Stats, id: { uid: number; gid: number }, use: 'data' | 'socket'): boolean {
  if (use === 'data') return st.uid === id.uid;
  if (st.uid === id.uid) return (st.mode & 0o300) === 0o300;
  if (st.gid === id.gid && (st.mode & 0o030) === 0o030) return true;
  return (st.mode & 0o003) === 0o003;
}

const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, '0');

function notUsable(path: string, why: string, use: 'data' | 'socket'): OwnershipError {
  const what = use === 'data' ? 'data directory' : 'socket directory';
  return new OwnershipError(
    'FS_NOT_USABLE_BY_POSTGRES',
    `the PostgreSQL ${what} ${path} ${why}; PostgreSQL runs as the "postgres" OS user and pgkeel never changes the owner of a directory it did not create: \`chown postgres:postgres ${path}\` if it is meant for this node${use === 'data' ? ', or point postgresql.data_dir at a path that does not exist yet' : ''}`,
  );
}

/**
 * Writes a file for PostgreSQL to read (pgpass, postgresql.pgkeel.conf, pg_hba.conf): the old entry is unlinked
 * (a symlink goes, its target stays untouched), the new one created with O_EXCL at `mode` and owned by `postgres`.
 */
export function writeFileForPostgres(path: string, text: string, mode = 0o600): void {
  rmSync(path, { force: true });
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    const id = postgresIdentity();
    if (id) fchownSync(fd, id.uid, id.gid);
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

/** Reads a file root did not write alone, refusing to follow a symlink; null when it does not exist. */
export function readNoFollow(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP')
      throw new OwnershipError(
        'FS_SYMLINK_REFUSED',
        `${path} is a symlink; pgkeel does not follow symlinks in directories PostgreSQL can write: remove it`,
      );
    throw err;
  }
  try {
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * A file PostgreSQL appends to (its log), created when missing; an existing one must be a regular file — a
 * symlink is refused, since root would otherwise chown (and later read) whatever it points to.
 */
export function ensurePostgresFile(path: string, mode = 0o640): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP')
      throw new OwnershipError(
        'FS_SYMLINK_REFUSED',
        `${path} is a symlink; pgkeel writes PostgreSQL's log only to a regular file: remove it`,
      );
    throw err;
  }
  try {
    const id = postgresIdentity();
    if (id) fchownSync(fd, id.uid, id.gid);
  } finally {
    closeSync(fd);
  }
}

/**
 * ssh's StrictModes for the agent's own config: as root, the file and every directory above it must be root's and
 * not writable by group or others (a sticky directory such as /tmp is fine: others cannot rename root's entries).
 * Anyone who could rewrite node.yml could run commands as root through it. Returns the problems (empty: safe).
 */
export function insecurePathProblems(
  file: string,
  stat: (p: string) => { uid: number; mode: number } = statSync,
): string[] {
  const real = realpathSync(file);
  const out: string[] = [];
  const f = stat(real);
  if (f.uid !== 0) out.push(`${real} is owned by uid ${f.uid}, not root`);
  if (f.mode & 0o022)
    out.push(`${real} is writable by ${f.mode & 0o002 ? 'everyone' : 'its group'} (mode ${octal(f.mode)})`);
  for (let d = dirname(real); ; d = dirname(d)) {
    const s = stat(d);
    if (s.uid !== 0) out.push(`directory ${d} is owned by uid ${s.uid}, not root`);
    else if (s.mode & 0o022 && !(s.mode & 0o1000))
      out.push(`directory ${d} is writable by ${s.mode & 0o002 ? 'everyone' : 'its group'} (mode ${octal(s.mode)})`);
    if (dirname(d) === d) break;
  }
  return out;
}

/** Refuses to run as root from a config others could rewrite (CONFIG_INSECURE), naming each problem and the fix. */
export function assertConfigSecure(file: string): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return;
  if (!exists(file)) return; // loading it reports the missing file with the usual config error
  const problems = insecurePathProblems(file);
  if (!problems.length) return;
  throw new OwnershipError(
    'CONFIG_INSECURE',
    `refusing to run as root with ${file}: ${problems.join('; ')}. Whoever can change this file can run commands as root through it. Fix: \`chown root: <path> && chmod go-w <path>\` for each path named (for a cluster made by \`pgkeel up\`, running \`pgkeel up\` again repairs its folders)`,
  );
}
