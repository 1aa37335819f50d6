/**
 * The backup repository port: where backups and archived WAL live. Small on purpose, so an object store can be
 * added beside the POSIX directory (posix-repo.ts) without touching the rest of src/backup/.
 *
 * Contract (repo.contract.ts runs it against every implementation):
 * - Paths are relative, '/'-separated, without '.' or '..' segments; anything else is refused.
 * - `put` stores a whole stream or nothing: the bytes go to a temporary name, are made durable (fsync), and only then
 *   appear under `path` (rename, then fsync of the directory). A failed or aborted put leaves no file under `path` and
 *   no temporary file behind. With `ifAbsent`, an existing file is never replaced: the put reports `created: false`
 *   and the caller decides (WAL: identical content is success, different content an error).
 * - `get` of a missing file rejects with REPO_NOT_FOUND. `stat` returns null for a missing file.
 * - `list(dir)` returns every file below `dir` (recursively), sorted by path; a missing dir lists nothing. Temporary
 *   files of puts in flight are never listed.
 * - `delete` removes a file or a whole directory; deleting what does not exist succeeds.
 * - `rename` is atomic (the new name appears with the whole content or not at all) and durable when it returns.
 */
import type { Readable } from 'node:stream';

export interface RepoFile {
  /** Repository-relative path. */
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
}

export interface PutResult {
  /** Bytes written (the stored size). */
  readonly bytes: number;
  /** False only with `ifAbsent` when a file was already there (it is untouched). */
  readonly created: boolean;
}

export interface PutOptions {
  /** Never replace an existing file (an atomic create-if-absent). */
  readonly ifAbsent?: boolean;
  readonly signal?: AbortSignal;
}

export interface Repo {
  /** Where the repository is, for messages and `backup list --json` (a directory, a URL). */
  readonly location: string;
  put(path: string, source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, opts?: PutOptions): Promise<PutResult>;
  get(path: string): Promise<Readable>;
  stat(path: string): Promise<RepoFile | null>;
  list(dir: string): Promise<RepoFile[]>;
  delete(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /**
   * Optional (local filesystems): like `put`, but `fill` writes the content into the file descriptor of the temporary
   * file itself — so a program (lz4, zstd) can write the repository file with no byte passing through this process.
   * Same guarantees as `put`. `sizeHint`: the most the content can take (a failed fill with less free space than
   * that is reported as REPO_NO_SPACE).
   */
  putFrom?(
    path: string,
    fill: (fd: number) => Promise<void>,
    opts?: PutOptions & { sizeHint?: number },
  ): Promise<PutResult>;
}

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/;

/** Validates a repository-relative path (throws a plain Error: a caller bug, not an operator error). */
export function checkRepoPath(path: string, allowRoot = false): string {
  if (path === '' && allowRoot) return path;
  const parts = path.split('/');
  if (!parts.every((p) => SEGMENT.test(p) && p !== '.' && p !== '..'))
    throw new Error(`invalid repository path "${path}"`);
  return path;
}
