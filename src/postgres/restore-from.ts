/**
 * `PostgresInstance.restoreFrom` (the LocalInstance contract: local-instance.ts): bootstrap a new cluster from a
 * backup of another cluster's repository, as Patroni's custom bootstrap does, with pgkeel's own restore:
 *
 *   restoreBackup (archive_mode off, recovery target, action promote) → pgkeel's managed configuration as primary →
 *   startRestored on this node's port with a private socket, until promoted → the configured superuser password →
 *   fast stop → the recovery settings and restore leftovers removed, so the agent's normal start path takes over.
 *
 * The old repository is only read: the restored copy runs with archive_mode off until it is promoted and stopped,
 * and the recovery block (archive_mode = off, restore_command, the target) is cut from postgresql.auto.conf after.
 * The new timeline's history file is marked ready, so the new cluster's own archiver puts it in its repository.
 * The restored cluster keeps the old one's roles: its superuser gets the configured password (Patroni's
 * post_bootstrap does the same), over the private socket that trusts local connections while recovery is watched.
 */
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { PosixRepo } from '../backup/posix-repo.js';
import { recoveryOf } from '../backup/recovery.js';
import { restoreBackup } from '../backup/restore.js';
import { startRestored } from '../backup/restore-start.js';
import { BackupStore } from '../backup/store.js';
import { restoreCommand } from '../backup/wal-commands.js';
import type { Logger } from '../lib/log.js';
import { readNoFollow, writeFileForPostgres } from '../lib/ownership.js';
import { postgresIdentity } from '../lib/proc.js';
import type { ConfInput } from './conf.js';
import { PostgresError, type RestoreSource } from './local-instance.js';

/** The first line of the block restoreBackup appends to postgresql.auto.conf (backup/recovery.ts). */
const RECOVERY_BLOCK_HEAD = '\n# Added by pgkeel restore:';
/** What startRestored and the restore_command leave in the data directory (backup/restore-start.ts, restore-cmd.ts). */
const LEFTOVERS = ['pgkeel-restore.hba.conf', 'pgkeel_prefetch', 'recovery.signal'];
const PREFETCH = 8;
/** startRestored polls every 250 ms. */
const PROGRESS_EVERY = 40;

/** What restoreFrom needs of the instance. */
export interface RestoreTarget {
  readonly dataDir: string;
  readonly logFile: string;
  readonly port: number;
  readonly binDir: string;
  readonly superuser: { readonly username: string; readonly password: string };
  readonly log: Logger;
  writeConfig(conf: ConfInput, role: 'primary'): void;
  stop(mode: 'fast' | 'immediate', timeoutMs: number): Promise<void>;
}

/** postgresql.auto.conf without the recovery block restoreBackup appended (the text before it, unchanged). */
export function withoutRecoveryBlock(text: string): string {
  const at = text.lastIndexOf(RECOVERY_BLOCK_HEAD);
  return at < 0 ? text : text.slice(0, at);
}

export async function restoreFrom(
  t: RestoreTarget,
  src: RestoreSource,
  conf: ConfInput,
  timeoutMs: number,
): Promise<void> {
  const socketDir = join(dirname(t.dataDir), 'run-restore');
  let step = `open the repository ${src.repo}`;
  try {
    const from = await readFrom(src, t.dataDir);
    const recovery = recoveryOf(src.target, 'promote');
    step = 'restore the backup';
    const res = await restoreBackup({ ...from, backupId: src.backupId, recovery, archiving: false });
    t.log.info(`restored backup ${res.backup.id} from ${src.repo}: recovering`, {
      bytes: res.bytes,
      files: res.files,
    });
    step = 'write the managed configuration';
    t.writeConfig(conf, 'primary');
    step = 'recover to the target and promote';
    // One line when the phase changes, then one every PROGRESS_EVERY polls (about 10 s) while WAL is replayed.
    let said = '';
    let polls = 0;
    const started = await startRestored({
      dataDir: t.dataDir,
      port: t.port,
      socketDir,
      logFile: t.logFile,
      recovery,
      user: t.superuser.username,
      binDir: t.binDir,
      signal: AbortSignal.timeout(timeoutMs),
      onProgress: (p) => {
        if (p.phase === said && ++polls % PROGRESS_EVERY !== 0) return;
        said = p.phase;
        t.log.info(`recovery: ${p.phase}`, { replay_lsn: p.replayLsn, replay_time: p.replayTime });
      },
    });
    step = "set the superuser's password";
    await setSuperuserPassword(socketDir, t.port, t.superuser);
    step = 'stop the promoted server';
    await t.stop('fast', 60_000);
    step = 'remove the recovery settings';
    cleanUp(t.dataDir);
    t.log.info('bootstrapped from a backup: promoted and stopped', { backup: res.backup.id, lsn: started.replayLsn });
  } catch (err) {
    await t.stop('immediate', 30_000).catch(() => {});
    const e = err as Error;
    const [first, ...rest] = e.message.split('\n');
    throw Object.assign(
      new PostgresError(
        'PG_RESTORE_FAILED',
        `bootstrap from ${src.repo} failed at "${step}": ${first}`,
        rest.join('\n'),
      ),
      { cause: err },
    );
  } finally {
    rmSync(socketDir, { recursive: true, force: true });
  }
}

/**
 * A new replica from the newest usable backup (create_replica_methods: backup): the data directory filled as a
 * standby (standby.signal), restore_command reading the archive; archive_mode is left to pgkeel's configuration
 * (a replica never archives what it restored). The agent then writes primary_conninfo and starts it: it replays the
 * archive, then streams from the leader.
 */
export async function restoreStandby(
  dataDir: string,
  src: Pick<RestoreSource, 'repo' | 'keyFile'>,
  signal: AbortSignal,
): Promise<void> {
  await restoreBackup({
    ...(await readFrom(src, dataDir)),
    recovery: recoveryOf({ kind: 'latest' }),
    archiving: true,
    standby: true,
    signal,
  });
}

/** The repository opened for reading, and the restore_command (with prefetch into the data directory) reading it. */
async function readFrom(
  src: Pick<RestoreSource, 'repo' | 'keyFile'>,
  dataDir: string,
): Promise<{ store: BackupStore; dataDir: string; restoreCommand: string }> {
  const store = await BackupStore.open(new PosixRepo(src.repo, { owner: postgresIdentity() }), {
    keyFile: src.keyFile,
  });
  const spool = join(dataDir, 'pgkeel_prefetch');
  return {
    store,
    dataDir,
    restoreCommand: restoreCommand({ repo: src.repo, keyFile: src.keyFile, prefetch: PREFETCH, spool }),
  };
}

async function setSuperuserPassword(
  socketDir: string,
  port: number,
  su: { readonly username: string; readonly password: string },
): Promise<void> {
  const c = new pg.Client({
    host: socketDir,
    port,
    user: su.username,
    database: 'postgres',
    connectionTimeoutMillis: 5000,
  });
  c.on('error', () => undefined);
  await c.connect();
  try {
    await c.query(
      `ALTER ROLE ${c.escapeIdentifier(su.username)} WITH SUPERUSER LOGIN PASSWORD ${c.escapeLiteral(su.password)}`,
    );
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * After the promoted server stopped: the recovery block out of postgresql.auto.conf (archive_mode comes from
 * pgkeel's configuration again), startRestored's hba file, the prefetch spool; the newest timeline history file
 * marked ready for the archiver.
 */
function cleanUp(dataDir: string): void {
  const auto = join(dataDir, 'postgresql.auto.conf');
  const text = readNoFollow(auto);
  if (text !== null && text !== withoutRecoveryBlock(text)) writeFileForPostgres(auto, withoutRecoveryBlock(text));
  for (const f of LEFTOVERS) rmSync(join(dataDir, f), { recursive: true, force: true });
  const wal = join(dataDir, 'pg_wal');
  const history = readdirSync(wal)
    .filter((f) => /^[0-9A-F]{8}\.history$/.test(f))
    .sort()
    .at(-1);
  const status = join(wal, 'archive_status');
  if (history && lstatSync(status).isDirectory() && !readdirSync(status).some((f) => f.startsWith(`${history}.`)))
    writeFileForPostgres(join(status, `${history}.ready`), '');
}
