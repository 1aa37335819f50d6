/**
 * The repository as a POSIX directory (a local disk or a mounted NFS volume). See repo.ts for the contract.
 *
 * As root, every directory and file this creates is handed to `owner` (the `postgres` OS user), because PostgreSQL's
 * archive_command — which runs as postgres — writes into the same tree as the agent.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, link, lstat, mkdir, open, readdir, rename, rm, stat, statfs, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { BackupError } from './errors.js';
import { checkRepoPath, type PutOptions, type PutResult, type Repo, type RepoFile } from './repo.js';

const TMP_MARK = '.tmp-';
const WRITE_BATCH = 4 << 20;

/** What is left of `chunks` after a short writev of `n` bytes. */
function skipWritten(chunks: Uint8Array[], n: number): Uint8Array[] {
  let left = n;
  let i = 0;
  while (i < chunks.length && left >= (chunks[i] as Uint8Array).byteLength)
    left -= (chunks[i++] as Uint8Array).byteLength;
  if (i >= chunks.length) return [];
  const rest = chunks.slice(i);
  if (left > 0) rest[0] = (rest[0] as Uint8Array).subarray(left);
  return rest;
}

export interface PosixRepoOptions {
  /** Owner for created files and directories (applied only when running as root). */
  readonly owner?: { readonly uid: number; readonly gid: number } | null;
  /** Mode for created files (default 0640) and directories (default 0750). */
  readonly fileMode?: number;
  readonly dirMode?: number;
}

export class PosixRepo implements Repo {
  readonly location: string;
  readonly #owner: { uid: number; gid: number } | null;
  readonly #fileMode: number;
  readonly #dirMode: number;

  constructor(
    readonly root: string,
    opts: PosixRepoOptions = {},
  ) {
    this.location = root;
    const root0 = typeof process.getuid === 'function' && process.getuid() === 0;
    this.#owner = root0 && opts.owner ? { uid: opts.owner.uid, gid: opts.owner.gid } : null;
    this.#fileMode = opts.fileMode ?? 0o640;
    this.#dirMode = opts.dirMode ?? 0o750;
  }

  #abs(path: string, allowRoot = false): string {
    return join(this.root, checkRepoPath(path, allowRoot));
  }

  /** mkdir -p below the root, handing each directory created to the owner; fsyncs the parent of each new one. */
  async #ensureDir(dir: string): Promise<void> {
    const missing: string[] = [];
    for (let d = dir; ; d = dirname(d)) {
      try {
        await stat(d);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(err, d);
        missing.unshift(d);
        if (d === this.root || dirname(d) === d) break;
      }
    }
    for (const d of missing) {
      try {
        await mkdir(d, { mode: this.#dirMode });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(err, d);
        continue;
      }
      if (this.#owner) {
        const fh = await open(d, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
        try {
          await fh.chown(this.#owner.uid, this.#owner.gid);
        } finally {
          await fh.close();
        }
      }
      await fsyncDir(dirname(d));
    }
  }

  put(
    path: string,
    source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
    opts: PutOptions = {},
  ): Promise<PutResult> {
    return this.#write(path, opts, async (fh) => {
      // Chunks are gathered into writes of up to 4 MiB: one write per small chunk is what makes a sink slow.
      let bytes = 0;
      let batch: Uint8Array[] = [];
      let batched = 0;
      const flush = async () => {
        let pending = batch;
        batch = [];
        batched = 0;
        while (pending.length) {
          const { bytesWritten } = await fh.writev(pending);
          pending = skipWritten(pending, bytesWritten);
        }
      };
      for await (const chunk of source) {
        opts.signal?.throwIfAborted();
        if (chunk.byteLength === 0) continue;
        batch.push(chunk);
        batched += chunk.byteLength;
        bytes += chunk.byteLength;
        if (batched >= WRITE_BATCH) await flush();
      }
      await flush();
      return bytes;
    });
  }

  /**
   * See Repo.putFrom. A program reports a full disk as a plain write error (lz4: "Write error", no errno): when `fill`
   * fails and less than `sizeHint` bytes are free afterwards, the failure is REPO_NO_SPACE.
   */
  putFrom(
    path: string,
    fill: (fd: number) => Promise<void>,
    opts: PutOptions & { sizeHint?: number } = {},
  ): Promise<PutResult> {
    return this.#write(path, opts, async (fh) => {
      try {
        await fill(fh.fd);
      } catch (err) {
        const fs = await statfs(dirname(this.#abs(path))).catch(() => null);
        const free = fs ? fs.bavail * fs.bsize : Number.POSITIVE_INFINITY;
        if (opts.sizeHint !== undefined && free < opts.sizeHint)
          throw new BackupError(
            'REPO_NO_SPACE',
            `repository is full: could not write ${path} (${free} bytes free, ${(err as Error).message})`,
            { path },
            { cause: err },
          );
        throw err;
      }
      return (await fh.stat()).size;
    });
  }

  /** A temporary file filled by `content`, fsync'd, then published under `path` (renamed, or linked with ifAbsent). */
  async #write(path: string, opts: PutOptions, content: (fh: FileHandle) => Promise<number>): Promise<PutResult> {
    const final = this.#abs(path);
    const dir = dirname(final);
    await this.#ensureDir(dir);
    const tmp = `${final}${TMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`;
    let bytes = 0;
    try {
      const fh = await open(
        tmp,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        this.#fileMode,
      );
      try {
        if (this.#owner) await fh.chown(this.#owner.uid, this.#owner.gid);
        bytes = await content(fh);
        opts.signal?.throwIfAborted();
        await fh.sync();
      } finally {
        await fh.close();
      }
      if (opts.ifAbsent) {
        try {
          await link(tmp, final);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
            await unlink(tmp);
            return { bytes: 0, created: false };
          }
          throw err;
        }
        await unlink(tmp);
      } else {
        await rename(tmp, final);
      }
      await fsyncDir(dir);
      return { bytes, created: true };
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => {});
      if (err instanceof BackupError) throw err;
      if ((err as Error).name === 'AbortError') throw err;
      throw ioError(err, path);
    }
  }

  async get(path: string): Promise<Readable> {
    const abs = this.#abs(path);
    const fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW).catch((err: unknown) => {
      throw ioError(err, path);
    });
    return fh.createReadStream({ highWaterMark: 1 << 20 });
  }

  async stat(path: string): Promise<RepoFile | null> {
    try {
      const s = await lstat(this.#abs(path));
      return s.isFile() ? { path, size: s.size, mtimeMs: s.mtimeMs } : null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw ioError(err, path);
    }
  }

  async list(dir: string): Promise<RepoFile[]> {
    const out: RepoFile[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await readdir(this.#abs(rel, true), { withFileTypes: true });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return;
        throw ioError(err, rel);
      }
      for (const e of entries) {
        const p = rel === '' ? e.name : `${rel}/${e.name}`;
        if (e.isDirectory()) await walk(p);
        else if (e.isFile() && !e.name.includes(TMP_MARK)) {
          const s = await lstat(join(this.root, p)).catch(() => null);
          if (s) out.push({ path: p, size: s.size, mtimeMs: s.mtimeMs });
        }
      }
    };
    await walk(dir === '' ? '' : checkRepoPath(dir));
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  async delete(path: string): Promise<void> {
    const abs = this.#abs(path);
    try {
      await rm(abs, { recursive: true, force: true });
      await fsyncDir(dirname(abs));
    } catch (err) {
      throw ioError(err, path);
    }
  }

  async rename(from: string, to: string): Promise<void> {
    const a = this.#abs(from);
    const b = this.#abs(to);
    try {
      await this.#ensureDir(dirname(b));
      await rename(a, b);
      await fsyncDir(dirname(b));
      if (dirname(a) !== dirname(b)) await fsyncDir(dirname(a));
    } catch (err) {
      throw ioError(err, from);
    }
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Maps a filesystem error to the catalogue: ENOENT → REPO_NOT_FOUND, ENOSPC/EDQUOT → REPO_NO_SPACE, else REPO_IO. */
export function ioError(err: unknown, path: string): BackupError {
  if (err instanceof BackupError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT')
    return new BackupError('REPO_NOT_FOUND', `repository: no such file: ${path}`, { path }, { cause: err });
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return new BackupError(
      'REPO_NO_SPACE',
      `repository is full: could not write ${path} (${code})`,
      { path },
      { cause: err },
    );
  return new BackupError('REPO_IO', `repository: ${path}: ${(err as Error).message}`, { path }, { cause: err });
}
