/**
 * Running a backup end to end, for the CLI and the agent's schedule: the lease, cleaning what a dead backup left,
 * the choice of member, the backup itself, and the wait for its last WAL segment in the archive.
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import type { ClusterView, MemberView } from '../cluster/view.js';
import type { Store } from '../dcs/store.js';
import { postgresIdentity } from '../lib/proc.js';
import { type BackupRecord, type BackupType, listRecords } from './catalog.js';
import type { BackupSettings } from './config.js';
import { BackupError } from './errors.js';
import { type BaseBackupSource, failBackup, runFullBackup } from './full-backup.js';
import { expire } from './expire.js';
import { runIncrementalBackup } from './incremental-run.js';
import { takeBackupLease } from './lease.js';
import { PosixRepo } from './posix-repo.js';
import { chooseSource } from './source.js';
import { BackupStore } from './store.js';
import { walRepoPath } from './wal-names.js';

/** Opens the settings' repository (creating it on first use), its files owned by postgres when we are root. */
export async function openStore(
  s: Pick<BackupSettings, 'repo' | 'encryption_key_file'>,
  create = true,
): Promise<BackupStore> {
  const repo = new PosixRepo(s.repo, { owner: postgresIdentity() });
  return BackupStore.open(repo, { keyFile: s.encryption_key_file, create });
}

export interface BackupRunDeps {
  readonly settings: BackupSettings;
  readonly dcs: Store;
  readonly leaseKey: string;
  readonly readView: () => Promise<ClusterView>;
  /** A replication connection to the member (closed by the caller of `close`). */
  readonly connectSource: (m: MemberView) => Promise<BaseBackupSource & { close(): Promise<void> }>;
  /**
   * On the leader: a restore point named `point` (a WAL record after the backup's stop LSN, and a target users can
   * name), then `pg_switch_wal()`, so the backup's last segment is complete and archived now.
   */
  readonly switchWal: (leader: MemberView, point: string) => Promise<unknown>;
  readonly now: () => Date;
  readonly progress?: (line: string) => void;
  /** Who runs it, for the lease and for messages ("cli", "agent node1"). */
  readonly who: string;
  /** How long to wait for the backup's last WAL segment in the archive (default 120 s). */
  readonly walTimeoutMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** A superuser SQL session on the member (incremental and differential backups: pg_backup_start/stop). */
  readonly connectSql?: (m: MemberView) => Promise<pg.Client>;
}

/**
 * After a successful backup, still under the lease, the retention is applied (as pgBackRest's backup does): a
 * failure to expire is reported and does not fail the backup.
 */
async function expireAfter(d: BackupRunDeps, store: BackupStore, rec: BackupRecord): Promise<BackupRecord> {
  try {
    const res = await expire(store, await listRecords(store), d.settings.retention, d.now());
    if (res.remove.length || res.walRemoved.length)
      d.progress?.(
        `retention (${res.reason}): removed backups ${res.remove.join(', ') || 'none'} and ${res.walRemoved.length} WAL files`,
      );
  } catch (err) {
    d.progress?.(`retention not applied: ${(err as Error).message}`);
  }
  return rec;
}

/**
 * The member an incremental backup reads: as chooseSource picks, but its data directory must be readable here; with
 * replica/auto, the best member on this host (replicas first).
 */
export function localSource(view: ClusterView, from: string): MemberView {
  const readable = (m: MemberView) => !!m.data_dir && existsSync(join(m.data_dir, 'PG_VERSION'));
  const first = chooseSource(view, from);
  if (readable(first) || (from !== 'replica' && from !== 'auto')) return first;
  const here = view.members
    .filter((m) => readable(m) && (m.state === 'streaming' || (m.name === view.leader && m.state === 'running')))
    .sort((a, b) => (a.name === view.leader ? 1 : 0) - (b.name === view.leader ? 1 : 0));
  return here[0] ?? first;
}

export interface BackupRequest {
  readonly type: BackupType;
  readonly from?: string;
  readonly delta?: boolean;
}

export async function runBackup(d: BackupRunDeps, req: BackupRequest): Promise<BackupRecord> {
  if (req.type !== 'full' && !d.connectSql)
    throw new BackupError('BACKUP_FAILED', `${req.type} backups need a SQL session on the member (not available here)`);
  if (req.delta)
    throw new BackupError(
      'BACKUP_FAILED',
      '--delta (comparing files by checksum) is not built yet: incremental backups compare size and modification time',
    );
  const store = await openStore(d.settings);
  const lease = await takeBackupLease(d.dcs, d.leaseKey, {
    holder: { who: d.who, host: hostname(), pid: process.pid, since: d.now().toISOString() },
  });
  try {
    // Holding the lease, no other backup runs: a record still `running` belongs to a writer that died.
    for (const r of await listRecords(store)) {
      if (r.status !== 'running') continue;
      const by = r.writer ? ` (${r.writer.host} pid ${r.writer.pid})` : '';
      d.progress?.(`cleaning backup ${r.id}: interrupted, its writer${by} stopped before it finished`);
      await failBackup(store, r, new Error(`interrupted: its writer${by} stopped before it finished`));
    }
    const view = await d.readView();
    const member =
      req.type === 'full'
        ? chooseSource(view, req.from ?? d.settings.from)
        : localSource(view, req.from ?? d.settings.from);
    const leader = view.members.find((m) => m.name === view.leader);
    d.progress?.(`backing up from ${member.name} (${member.name === view.leader ? 'leader' : 'replica'})`);
    const sleep = d.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const waitForWal = async (walFile: string, _timeline: number, id: string) => {
      const deadline = d.now().getTime() + (d.walTimeoutMs ?? 120_000);
      let switched = false;
      for (;;) {
        if (await store.find(walRepoPath(walFile))) return;
        // From a replica (or a quiet leader) the last segment may not be complete yet: close it on the leader.
        if (!switched && leader) {
          switched = true;
          await d
            .switchWal(leader, `pgkeel_backup_${id}`)
            .catch((err: Error) => d.progress?.(`pg_switch_wal on ${leader.name}: ${err.message}`));
        }
        if (d.now().getTime() > deadline)
          throw new Error(
            `WAL segment ${walFile} did not reach the archive within ${Math.round((d.walTimeoutMs ?? 120_000) / 1000)} s: is archiving working? (pgkeel status, pg_stat_archiver on the leader)`,
          );
        await sleep(250);
      }
    };
    const common = {
      store,
      compression: d.settings.compression,
      level: d.settings.level,
      now: d.now,
      signal: lease.signal,
      progress: d.progress,
      waitForWal,
    };
    if (req.type !== 'full') {
      const sql = await (d.connectSql as NonNullable<BackupRunDeps['connectSql']>)(member);
      try {
        return await expireAfter(
          d,
          store,
          await runIncrementalBackup({
            ...common,
            type: req.type,
            records: await listRecords(store),
            member: member.name,
            dataDir: member.data_dir as string,
            sql,
          }),
        );
      } finally {
        await sql.end().catch(() => {});
      }
    }
    const source = await d.connectSource(member);
    try {
      return await expireAfter(d, store, await runFullBackup({ ...common, source }));
    } finally {
      await source.close().catch(() => {});
    }
  } finally {
    await lease.release();
  }
}
