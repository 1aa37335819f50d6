/**
 * `pgkeel up --restore-from OLD_REPO [--target-time T | --target-lsn L] [--key-file F]`: a new local cluster
 * bootstrapped from another cluster's backup (bootstrap.restore in every node.yml; the member that initializes the
 * cluster restores and promotes, the others clone from it). Checked before anything is created: the target, the
 * repository (readable, with the key) and a usable backup that ends before the target — so a typo fails at once,
 * not minutes later in an agent's log. The new cluster archives into its own DIR/backup.
 */
import { resolve } from 'node:path';
import { listRecords } from '../backup/catalog.js';
import { PosixRepo } from '../backup/posix-repo.js';
import { describeTarget, recoveryOf } from '../backup/recovery.js';
import { chooseBackup } from '../backup/restore.js';
import { BackupStore } from '../backup/store.js';
import { bootstrapRestoreProblems, type BootstrapRestoreConfig, restoreTargetOf } from '../config/bootstrap-restore.js';
import { postgresIdentity } from '../lib/proc.js';
import { LocalClusterError, paths } from './layout.js';

export interface RestoreFromOptions {
  /** The repository to restore from (any path; made absolute). */
  readonly repo: string;
  readonly keyFile?: string;
  readonly targetTime?: string;
  readonly targetLsn?: string;
}

/** bootstrap.restore for a new cluster in `dir`, checked against the repository; throws LocalClusterError. */
export async function restoreSection(
  dir: string,
  o: RestoreFromOptions,
  progress: (l: string) => void,
): Promise<BootstrapRestoreConfig> {
  const r: BootstrapRestoreConfig = {
    repo: resolve(o.repo),
    ...(o.keyFile !== undefined ? { encryption_key_file: resolve(o.keyFile) } : {}),
    ...(o.targetTime !== undefined ? { target_time: o.targetTime } : {}),
    ...(o.targetLsn !== undefined ? { target_lsn: o.targetLsn } : {}),
  };
  const problems = bootstrapRestoreProblems(r, [paths.backupRepo(resolve(dir))]);
  if (problems.length > 0)
    throw new LocalClusterError(
      `--restore-from: ${problems.map((p) => p.message.replace('set backup.repo to another directory', 'restore into another --dir')).join('; ')}`,
    );
  const target = restoreTargetOf(r);
  try {
    const store = await BackupStore.open(new PosixRepo(r.repo, { owner: postgresIdentity() }), {
      keyFile: r.encryption_key_file,
    });
    const chain = chooseBackup(await listRecords(store), recoveryOf(target, 'promote'));
    const b = chain[chain.length - 1];
    progress(
      `restoring from ${r.repo}: backup ${b?.id} (ended ${b?.stop_time}), then WAL to ${describeTarget(target)}`,
    );
  } catch (err) {
    throw new LocalClusterError(`--restore-from ${r.repo}: ${(err as Error).message}`);
  }
  return r;
}
