/**
 * Hands the local config's TLS files to PostgreSQL (the I/O half of tls.ts): when pgkeel runs as root, each file is
 * copied into "<data_dir>-ssl" as a postgres-owned 0600 file, which both the server (ssl_key_file) and libpq (sslkey)
 * accept. Not root: nothing is copied, PostgreSQL runs as us and reads the files as configured.
 *
 * The copy directory belongs to postgres, so every write there is made safe against what postgres may have put in
 * it: a new file is created under a fresh name (O_EXCL: never through a symlink) and renamed over the old one.
 */
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  constants,
  fchownSync,
  fstatSync,
  lstatSync,
  type Stats,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { NodeConfig } from '../config/node.js';
import type { Logger } from '../lib/log.js';
import { chownForPostgres, postgresIdentity, type RunAs } from '../lib/proc.js';
import { rootTrustedPath, tlsCopyDir, tlsFilePlan, type TlsFiles, type Who } from './tls.js';

/** Certificates and keys are a few KiB; anything this large is not one. */
const MAX_TLS_FILE = 1024 * 1024;

export class TlsFileError extends Error {
  readonly code = 'PG_TLS_FILE';
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(message);
    this.name = 'TlsFileError';
  }
}

let groups: readonly number[] | undefined;
function postgresWho(id: RunAs): Who {
  groups ??= execFileSync('id', ['-G', 'postgres'], { encoding: 'utf8' })
    .trim()
    .split(/\s+/)
    .map(Number)
    .filter(Number.isInteger);
  return { uid: id.uid, gids: [id.gid, ...groups] };
}

function readNoFollow(path: string): Buffer | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_TLS_FILE) return null;
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < st.size) {
      const n = readSync(fd, buf, off, st.size - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

function settingName(setting: string): string {
  return setting.includes('.') ? `postgresql.authentication.${setting}` : `postgresql.parameters.${setting}`;
}

/** The copy directory, created (postgres-owned 0700) when missing; an existing one must be a real directory of postgres'. */
function ensureCopyDir(dir: string, id: RunAs): void {
  let st: Stats;
  try {
    st = lstatSync(dir);
  } catch {
    mkdirSync(dir, { mode: 0o700 });
    chownForPostgres(dir);
    return;
  }
  if (!st.isDirectory() || st.uid !== id.uid)
    throw new TlsFileError(
      '',
      `${dir} must be a directory owned by postgres (pgkeel keeps PostgreSQL's copies of its TLS files there); remove it and pgkeel recreates it`,
    );
}

function writeCopy(target: string, content: Buffer, id: RunAs): void {
  const tmp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, content);
    fchownSync(fd, id.uid, id.gid);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, target);
}

/**
 * Brings the copies up to date and returns setting → path to give PostgreSQL, and whether a copy changed (a
 * reload makes the server pick up new certificates). A file that cannot be read is an error naming the setting.
 * `warned` keeps one warning per file for a source that postgres could swap (it is used in place, uncopied).
 */
export function syncTlsFiles(cfg: NodeConfig, log: Logger, warned: Set<string>): { files: TlsFiles; changed: boolean } {
  const id = postgresIdentity();
  const plan = tlsFilePlan(cfg);
  if (!id || plan.length === 0) return { files: {}, changed: false };
  const who = postgresWho(id);
  const dir = tlsCopyDir(cfg);
  ensureCopyDir(dir, id);
  const files: Record<string, string> = {};
  let changed = false;
  for (const f of plan) {
    const name = settingName(f.setting);
    let real: string | null;
    try {
      real = rootTrustedPath(f.source, who);
    } catch (err) {
      throw new TlsFileError(f.setting, `${name}: cannot read ${f.source}: ${(err as Error).message}`);
    }
    if (real === null) {
      if (!warned.has(f.source)) {
        warned.add(f.source);
        log.warn(
          `${name}: ${f.source} lies in a directory the postgres user can change; pgkeel (root) does not copy it, PostgreSQL reads it itself`,
          { file: f.source },
        );
      }
      files[f.setting] = f.source;
      continue;
    }
    const content = readNoFollow(real);
    if (!content)
      throw new TlsFileError(
        f.setting,
        `${name}: ${f.source} is not a readable regular file of at most ${MAX_TLS_FILE} bytes`,
      );
    const old = readNoFollow(f.copy);
    if (!old || !old.equals(content)) {
      writeCopy(f.copy, content, id);
      changed = true;
    }
    files[f.setting] = f.copy;
  }
  return { files, changed };
}
