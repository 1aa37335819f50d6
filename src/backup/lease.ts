/**
 * One backup at a time per cluster: the backup key in the DCS (`/<namespace>/<scope>/backup`), created only if
 * absent and attached to a lease that the holder keeps alive. A holder that dies (a killed agent or CLI) loses the
 * key when its lease expires, so the next backup can start — and cleans the record the dead one left `running`.
 */
import type { Store } from '../dcs/store.js';
import { BackupError } from './errors.js';

export interface BackupLease {
  /** Stops the keep-alive and deletes the key. */
  release(): Promise<void>;
  /** Aborted when the lease was lost (the backup must stop: another may start). */
  readonly signal: AbortSignal;
}

export interface LeaseOptions {
  readonly ttlSeconds?: number;
  /** What holds it: shown to whoever is refused. */
  readonly holder: Record<string, unknown>;
}

export async function takeBackupLease(store: Store, key: string, opts: LeaseOptions): Promise<BackupLease> {
  const ttl = opts.ttlSeconds ?? 30;
  const lease = await store.grantLease(ttl);
  const value = JSON.stringify(opts.holder);
  if (!(await store.create(key, value, { lease }))) {
    await store.revokeLease(lease).catch(() => {});
    const cur = await store.get(key).catch(() => undefined);
    throw new BackupError(
      'BACKUP_IN_PROGRESS',
      `another backup is running in this cluster (${cur?.value ?? 'holder unknown'})`,
    );
  }
  const ac = new AbortController();
  const timer = setInterval(
    () => {
      store.keepAlive(lease).then(
        (alive) => {
          if (!alive) ac.abort(new Error('the backup lease in the DCS was lost'));
        },
        () => {}, // a DCS hiccup: the next round retries; the lease outlives a few missed rounds
      );
    },
    Math.max(1000, (ttl * 1000) / 3),
  );
  timer.unref();
  return {
    signal: ac.signal,
    async release() {
      clearInterval(timer);
      await store.revokeLease(lease).catch(() => {});
    },
  };
}
