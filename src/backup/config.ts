/**
 * The `backup` settings: declared once here, used in the dynamic configuration (bootstrap.dcs.backup and the DCS
 * config key: schedule, retention, compression, ...) and in a node's local file (repo, encryption_key_file).
 *
 * The repository and the key file are paths the root-run agent and PostgreSQL's archive_command (as postgres) write
 * and read: like archive_command itself they are local-only. A node uses `backup.repo` / `backup.encryption_key_file`
 * from the dynamic configuration only when its own file allows archive_command there
 * (postgresql.allow_dynamic_parameters: [archive_command]); its local `backup` section always wins.
 */
import type { Schema } from '../config/schema.js';
import { COMPRESSIONS, COMPRESSION_LEVELS, type Compression } from './codec.js';
import { CRON_EXPECTED, cronProblem, DURATION_EXPECTED, durationProblem } from './cron.js';

const ABS_PATH = /^\/.*/;

const repoField: Schema = {
  kind: 'string',
  doc: 'The backup repository: a directory on a local disk or a mounted NFS volume, the same for every member. Setting it turns on WAL archiving (archive_mode, restart needed) and backups.',
  pattern: ABS_PATH,
  expected: 'an absolute path, e.g. /var/lib/pgkeel/backup',
};
const keyField: Schema = {
  kind: 'string',
  doc: 'Encrypts everything stored in the repository with AES-256-GCM, the key derived from this file (at least 32 bytes: `openssl rand -base64 48 > FILE`, mode 0600). Fixed when the repository is created; a wrong key is refused.',
  pattern: ABS_PATH,
  expected: 'an absolute path to a key file',
};
const cron = (doc: string, def: string): Schema => ({
  kind: 'string',
  doc,
  default: def,
  expected: CRON_EXPECTED,
  check: cronProblem,
});

export const backupDynamicFields: Record<string, Schema> = {
  repo: repoField,
  encryption_key_file: keyField,
  compression: {
    kind: 'enum',
    doc: 'Compression of base backups (done by PostgreSQL, server-side) and archived WAL.',
    values: COMPRESSIONS,
    default: 'lz4',
  },
  compression_level: {
    kind: 'int',
    doc: 'Compression level (lz4 1-12, zstd 1-19, gzip 1-9); default: lz4 1, zstd 3, gzip 6.',
    min: 0,
    max: 19,
  },
  schedule: {
    kind: 'object',
    doc: "When the leader's agent starts backups (cron syntax, UTC; empty: never).",
    fields: {
      full: cron('Full backups.', '0 1 * * 0'),
      incr: cron('Incremental backups (what changed since the previous backup).', '0 1 * * 1-6'),
      diff: cron('Differential backups (what changed since the last full backup).', ''),
    },
  },
  retention: {
    kind: 'object',
    doc: 'What expiry keeps. Backups inside the window (or among the newest `full` full backups) and every WAL file they need are never removed.',
    fields: {
      full: { kind: 'int', doc: 'Full backups to keep (with their incrementals).', default: 2, min: 1, max: 1000 },
      window: {
        kind: 'string',
        doc: 'Keep what is needed to restore to any moment this far back (overrides `full` when set).',
        expected: DURATION_EXPECTED,
        check: durationProblem,
      },
    },
  },
  from: {
    kind: 'string',
    doc: 'Which member backups read from: replica (a healthy streaming replica, the leader if none), leader, or a member name.',
    default: 'replica',
    pattern: /^[A-Za-z0-9_.-]+$/,
    expected: 'replica, leader or a member name',
  },
  verify_schedule: cron('When the leader runs `backup verify --restore` (cron, UTC; empty: never).', ''),
};

export const backupLocalFields: Record<string, Schema> = { repo: repoField, encryption_key_file: keyField };

export interface BackupConfig {
  repo?: string;
  encryption_key_file?: string;
  compression: Compression;
  compression_level?: number;
  schedule: { full: string; incr: string; diff: string };
  retention: { full: number; window?: string };
  from: string;
  verify_schedule: string;
}

export interface BackupLocalConfig {
  repo?: string;
  encryption_key_file?: string;
}

/** The settings a node acts on, or null when it has no repository. */
export interface BackupSettings extends BackupConfig {
  repo: string;
  level: number;
}

/** Cross-field rule: a level within its compression's range. */
export function compressionLevelProblem(
  b: Pick<BackupConfig, 'compression' | 'compression_level'>,
): string | undefined {
  if (b.compression_level === undefined) return undefined;
  const r = COMPRESSION_LEVELS[b.compression];
  if (b.compression_level < r.min || b.compression_level > r.max)
    return `backup.compression_level: expected ${r.min}-${r.max} for ${b.compression}, got ${b.compression_level}`;
  return undefined;
}

/**
 * Local over dynamic; the dynamic repo/key only when `allowDynamicRepo` (see the header). Returns null without a
 * repository.
 */
export function effectiveBackup(
  dynamic: BackupConfig | undefined,
  local: BackupLocalConfig | undefined,
  allowDynamicRepo: boolean,
): { settings: BackupSettings | null; problems: string[] } {
  const problems: string[] = [];
  if (!dynamic && !local?.repo) return { settings: null, problems };
  const base: BackupConfig = dynamic ?? {
    compression: 'lz4',
    schedule: { full: '0 1 * * 0', incr: '0 1 * * 1-6', diff: '' },
    retention: { full: 2 },
    from: 'replica',
    verify_schedule: '',
  };
  let repo = local?.repo;
  let key = local?.encryption_key_file;
  if (!repo && dynamic?.repo) {
    if (allowDynamicRepo) {
      repo = dynamic.repo;
      key = key ?? dynamic.encryption_key_file;
    } else
      problems.push(
        'backup.repo: set in the dynamic configuration, which this node does not accept for paths PostgreSQL writes; set backup.repo in its local file, or allow it with postgresql.allow_dynamic_parameters: [archive_command]',
      );
  }
  const levelProblem = compressionLevelProblem(base);
  if (levelProblem) problems.push(levelProblem);
  if (!repo) return { settings: null, problems };
  const level =
    !levelProblem && base.compression_level !== undefined
      ? base.compression_level
      : COMPRESSION_LEVELS[base.compression].default;
  return { settings: { ...base, repo, encryption_key_file: key, level }, problems };
}
