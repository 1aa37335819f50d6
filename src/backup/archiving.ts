/**
 * What backup settings mean for a node's PostgreSQL: archive_mode, archive_command (the shell fast path on the
 * archiver's spool) and restore_command. Pure.
 *
 * archive_mode is `always`: replicas archive the WAL they receive too. Pushes of identical content are free
 * successes, so the repository gets each segment from whichever member has it first — and when a leader dies with
 * segments not yet archived, its replicas have already pushed them: no gap across a failover.
 */
import type { NodeConfig } from '../config/node.js';
import { type BackupSettings, effectiveBackup } from './config.js';
import { archiveCommand, restoreCommand } from './wal-commands.js';

/** Where the agent's archiver leaves its .ok files for archive_command (beside the data directory, postgres-owned). */
export function spoolDirFor(dataDir: string): string {
  return `${dataDir.replace(/\/+$/, '')}-archive-spool`;
}

/** The node's effective backup settings (null: no repository, no archiving). */
export function nodeBackupSettings(
  cfg: NodeConfig,
  dynamicBackup: Parameters<typeof effectiveBackup>[0],
): { settings: BackupSettings | null; problems: string[] } {
  const allow = cfg.postgresql.allow_dynamic_parameters.some((p) => p.toLowerCase() === 'archive_command');
  return effectiveBackup(dynamicBackup, cfg.backup, allow);
}

/** The PostgreSQL parameters backup settings add (none without a repository). */
export function archiveParameters(settings: BackupSettings | null, dataDir: string): Record<string, string | number> {
  if (!settings) return {};
  const common = { repo: settings.repo, keyFile: settings.encryption_key_file };
  return {
    archive_mode: 'always',
    archive_command: archiveCommand({
      ...common,
      spool: spoolDirFor(dataDir),
      compression: settings.compression,
      level: settings.level,
    }),
    // A quiet primary still closes a segment a minute, so the recoverable window never lags more than that.
    archive_timeout: 60,
    restore_command: restoreCommand(common),
  };
}
