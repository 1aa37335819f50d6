/**
 * The backup component's error catalogue: stable codes, the identifiers involved as fields. docs/errors.md lists
 * them (config/errors-doc.ts).
 */
export const backupErrorCatalogue = {
  REPO_NOT_FOUND: {
    where: 'backup',
    summary:
      'A file or directory asked of the backup repository does not exist (a missing backup, WAL segment or repo).',
  },
  REPO_NO_SPACE: {
    where: 'backup',
    summary:
      "The repository's filesystem is full (ENOSPC) or over quota; the file being written is removed, nothing already stored is touched, and the operation fails (WAL stays in pg_wal until archiving succeeds).",
  },
  REPO_IO: {
    where: 'backup',
    summary:
      'Reading or writing the repository failed (permissions, I/O error); the message names the path and the cause.',
  },
  REPO_NOT_INITIALIZED: {
    where: 'backup',
    summary:
      'The directory is not a pgkeel backup repository (no repo.json); the first backup or archived segment creates it.',
  },
  REPO_KEY_MISMATCH: {
    where: 'backup',
    summary:
      'The encryption key does not open this repository (its key check differs), or the repository is encrypted and no key was given, or a key was given for an unencrypted one. Nothing is decrypted with a wrong key.',
  },
  REPO_DECRYPT_FAILED: {
    where: 'backup',
    summary:
      'A stored file failed AES-256-GCM authentication: it was changed or truncated after it was written. The file is named; its contents are not used.',
  },
  REPO_CODEC_FAILED: {
    where: 'backup',
    summary: 'Compressing or decompressing a file failed (the lz4/zstd program is missing or the data is corrupt).',
  },
  WAL_DIFFERENT_CONTENT: {
    where: 'backup',
    summary:
      'archive-push refused a WAL file: the repository already holds a different file under the same name. The stored file is kept; PostgreSQL keeps the segment and retries. Usually two primaries wrote the same timeline — investigate before anything else.',
  },
  WAL_NOT_FOUND: {
    where: 'backup',
    summary:
      'archive-get: the repository has no such WAL file. PostgreSQL asks for files that do not exist (the next segment, history files) routinely; this ends recovery or makes a replica switch to streaming.',
  },
  BACKUP_IN_PROGRESS: {
    where: 'backup',
    summary: 'Another backup of this cluster holds the backup lease in the DCS; one backup runs at a time.',
  },
  BACKUP_FAILED: {
    where: 'backup',
    summary:
      'A backup did not complete; its directory is marked failed and removed, no usable backup is listed for it, and the next run starts afresh.',
  },
  BACKUP_NO_SOURCE: {
    where: 'backup',
    summary: 'No member can serve the backup (--from names a member that is not running, or no member is healthy).',
  },
  BACKUP_NOT_FOUND: {
    where: 'backup',
    summary: 'No usable backup matches (the id given, or one that ends before the recovery target).',
  },
  VERIFY_FAILED: {
    where: 'backup',
    summary:
      'backup verify found a changed, missing or extra file, or a gap in the WAL a backup needs; each problem is listed by name and the command exits 1.',
  },
  RESTORE_TARGET_NOT_EMPTY: {
    where: 'backup',
    summary: 'pgkeel restore refuses a target directory that exists and is not empty; nothing in it is touched.',
  },
  RECOVERY_TARGET_INVALID: {
    where: 'restore',
    summary:
      'A recovery target flag is malformed (a time without a zone, an LSN not X/Y in hex, an xid not a number) or two targets were given; usage error, exit 2, nothing touched.',
  },
  RESTORE_FAILED: {
    where: 'backup',
    summary:
      'A restore step failed; the message says which and how to resume. The repository is never modified by a restore.',
  },
} as const;

export type BackupErrorCode = keyof typeof backupErrorCatalogue;

export interface BackupErrorContext {
  /** The repository-relative path concerned. */
  readonly path?: string;
  /** The backup id concerned. */
  readonly backup?: string;
  /** The WAL file concerned. */
  readonly wal?: string;
}

export class BackupError extends Error {
  override readonly name = 'BackupError';
  constructor(
    readonly code: BackupErrorCode,
    message: string,
    readonly context: BackupErrorContext = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isBackupError(err: unknown, code?: BackupErrorCode): err is BackupError {
  return err instanceof BackupError && (code === undefined || err.code === code);
}
