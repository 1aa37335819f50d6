/**
 * The local cluster's backups: `up` waits for the first full backup the leader's agent takes on its own (its
 * schedule finds none and starts one at once), so PITR works from minute one.
 */
import { listRecords, usable } from '../backup/catalog.js';
import { openStore } from '../backup/run.js';
import { isBackupError } from '../backup/errors.js';
import { sleep } from '../lib/proc.js';
import { type LocalCluster, paths } from './layout.js';

export async function waitFirstBackup(
  lc: LocalCluster,
  timeoutMs: number,
  progress: (l: string) => void,
): Promise<void> {
  const repo = paths.backupRepo(lc.dir);
  const deadline = Date.now() + timeoutMs;
  let said = false;
  while (Date.now() < deadline) {
    try {
      const store = await openStore({ repo }, false);
      const records = await listRecords(store);
      const ok = usable(records).at(-1);
      if (ok) {
        progress(
          `${said ? 'first full backup done' : 'last full backup'}: ${ok.id} (${ok.stop_time}), repository ${repo}`,
        );
        return;
      }
    } catch (err) {
      if (!isBackupError(err, 'REPO_NOT_INITIALIZED')) throw err;
    }
    if (!said) progress(`waiting for the first full backup into ${repo} (taken by the leader's agent)`);
    said = true;
    await sleep(500);
  }
  progress(
    `the first full backup is not done after ${Math.round(timeoutMs / 1000)} s; it goes on in the background (pgkeel backup list --dir ${lc.dir}; the leader's agent.log says why)`,
  );
}
