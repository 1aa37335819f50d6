/**
 * `bootstrap.restore`: Patroni's custom bootstrap from a backup. The member that wins the initialize race restores
 * a backup of another cluster's repository (with its archived WAL, to a target) instead of running initdb, promotes
 * it, and leads a new cluster; the others clone from it as usual (docs/backup.md).
 *
 * Rules (crossFieldProblems): at most one target; the time and LSN are checked as `pgkeel restore` checks them; the
 * new cluster's own repository (backup.repo, local or in bootstrap.dcs) must be another directory — the restored
 * copy leaves recovery on a new timeline, and its WAL must never mix with the history of the cluster it came from.
 */
import { resolve } from 'node:path';
import { checkTarget, type RecoveryTarget, RecoveryTargetError } from '../backup/recovery.js';
import type { Problem, Schema } from './schema.js';

const ABS_PATH = /^\/.*/;

export const bootstrapRestoreSchema: Schema = {
  kind: 'object',
  optional: true,
  doc: "Bootstrap the cluster from a backup instead of initdb (Patroni's custom bootstrap): the member that initializes the cluster restores a backup of `repo` and its archived WAL to the target, promotes, and leads; the others clone from it. The cluster's own backup.repo must be another directory.",
  fields: {
    repo: {
      kind: 'string',
      doc: 'The repository to restore from (another cluster’s backup.repo); only read.',
      required: true,
      pattern: ABS_PATH,
      expected: 'an absolute path, e.g. /var/lib/pgkeel/old-backup',
    },
    encryption_key_file: {
      kind: 'string',
      doc: 'The key file of an encrypted `repo`.',
      pattern: ABS_PATH,
      expected: 'an absolute path to a key file',
    },
    backup: {
      kind: 'string',
      doc: 'Restore this backup (default: the newest usable backup that ends before the target).',
      pattern: /^[A-Za-z0-9_.-]+$/,
      expected: 'a backup id, as `pgkeel backup list` shows it',
    },
    target_time: {
      kind: 'string',
      doc: 'Recover to this time (ISO 8601 with a zone, e.g. "2026-12-03 14:03:00+00"); absent with target_lsn: all archived WAL (latest).',
      expected: 'an ISO 8601 time with a zone',
    },
    target_lsn: {
      kind: 'string',
      doc: 'Recover to this WAL position (e.g. 0/3000060); not with target_time.',
      expected: 'an LSN, e.g. 0/3000060',
    },
  },
};

export interface BootstrapRestoreConfig {
  repo: string;
  encryption_key_file?: string;
  backup?: string;
  target_time?: string;
  target_lsn?: string;
}

/** The recovery target a checked bootstrap.restore names (latest when none). */
export function restoreTargetOf(r: BootstrapRestoreConfig): RecoveryTarget {
  if (r.target_time !== undefined) return checkTarget({ kind: 'time', time: r.target_time });
  if (r.target_lsn !== undefined) return checkTarget({ kind: 'lsn', lsn: r.target_lsn });
  return { kind: 'latest' };
}

/** Cross-field rules of bootstrap.restore against the node's repositories (see the header). */
export function bootstrapRestoreProblems(
  r: BootstrapRestoreConfig | undefined,
  ownRepos: readonly (string | undefined)[],
): Problem[] {
  if (!r) return [];
  const out: Problem[] = [];
  const at = 'bootstrap.restore';
  if (r.target_time !== undefined && r.target_lsn !== undefined)
    out.push({ path: `${at}.target_lsn`, message: 'give at most one target: target_time or target_lsn, not both' });
  else
    try {
      restoreTargetOf(r);
    } catch (err) {
      if (!(err instanceof RecoveryTargetError)) throw err;
      out.push({ path: `${at}.${r.target_time !== undefined ? 'target_time' : 'target_lsn'}`, message: err.message });
    }
  const from = resolve(r.repo);
  for (const own of ownRepos)
    if (own !== undefined && resolve(own) === from)
      out.push({
        path: `${at}.repo`,
        message: `is this cluster's own backup repository (${own}); a cluster bootstrapped from a backup writes a new history and needs a repository of its own: set backup.repo to another directory`,
      });
  return out;
}
