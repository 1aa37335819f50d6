/**
 * `pgkeel restore`: fills an empty data directory from the repository's backups and sets up point-in-time recovery;
 * with --start, starts it on a port of its own, waits until the target is reached and prints the connection string.
 *
 *   pgkeel restore --to DATADIR [--repo PATH] [--key-file F] [--backup ID]
 *                  [--target-time T | --target-lsn L | --target-xid X | --target-name N | --target immediate]
 *                  [--target-action promote|pause|shutdown] [--start --port P] [--json]
 *
 * Progress goes to stderr; the result (text, or one JSON object with --json) to stdout. Exit codes: 0 done,
 * 1 failure, 2 invalid usage.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { backupContext, nodeConfigFor } from '../backup/context.js';
import { BackupError } from '../backup/errors.js';
import { restoreCommand as walRestoreCommand } from '../backup/wal-commands.js';
import { walRepoPath } from '../backup/wal-names.js';
import { switchWal } from '../backup/pg-source.js';
import { DEFAULT_DIR, readLocalCluster } from '../local/layout.js';
import { PosixRepo } from '../backup/posix-repo.js';
import { describeTarget, type RecoveryTarget, RecoveryTargetError, recoveryOf } from '../backup/recovery.js';
import { type RestoreProgress, restoreBackup } from '../backup/restore.js';
import { startRestored } from '../backup/restore-start.js';
import { BackupStore } from '../backup/store.js';
import { chownForPostgres, postgresIdentity, sleep } from '../lib/proc.js';
import { parseArgs, UsageError, usage, type FlagSpec } from './args.js';

const SPEC: Record<string, FlagSpec> = {
  to: { type: 'string', doc: 'the data directory to fill (must not exist, or be empty)', placeholder: 'DATADIR' },
  repo: { type: 'string', doc: 'the backup repository (a directory)', placeholder: 'PATH' },
  dir: {
    type: 'string',
    doc: `local cluster made by \`pgkeel up\` whose repository to restore from (DIR/backup)`,
    placeholder: 'DIR',
  },
  config: { type: 'string', short: 'c', doc: 'a node config: its backup repository and key', placeholder: 'FILE' },
  'key-file': { type: 'string', doc: "the repository's encryption key file", placeholder: 'FILE' },
  backup: {
    type: 'string',
    doc: 'restore this backup (default: the newest that ends before the target)',
    placeholder: 'ID',
  },
  'target-time': { type: 'string', doc: 'recover to this time (ISO 8601 with a zone)', placeholder: 'T' },
  'target-lsn': { type: 'string', doc: 'recover to this WAL position', placeholder: 'LSN' },
  'target-xid': { type: 'string', doc: 'recover to this transaction id', placeholder: 'XID' },
  'target-name': {
    type: 'string',
    doc: 'recover to this restore point (pg_create_restore_point)',
    placeholder: 'NAME',
  },
  target: { type: 'string', doc: 'immediate: stop as soon as the backup is consistent', placeholder: 'immediate' },
  'target-action': { type: 'string', doc: 'promote (default), pause or shutdown at the target', placeholder: 'ACTION' },
  start: { type: 'boolean', doc: 'start the restored server and wait until the target is reached (needs --port)' },
  port: { type: 'number', doc: 'port for the restored server (listens on 127.0.0.1)', placeholder: 'P' },
  json: { type: 'boolean', doc: 'print the result as JSON' },
  help: { type: 'boolean', short: 'h', doc: 'show this help' },
};

/** restore_command for the restored server: archive-get with prefetch into a spool inside the data directory. */
function restoreCommandFor(repo: string, dataDir: string, keyFile?: string): string {
  return walRestoreCommand({ repo, keyFile, prefetch: 8, spool: join(dataDir, PREFETCH_DIR) });
}

const PREFETCH_DIR = 'pgkeel_prefetch';

/** The repository and key: --repo, else the node config's (or the local cluster's) backup section, else the DCS's. */
async function repoFor(flags: Record<string, unknown>): Promise<{ repo: string; keyFile?: string }> {
  const keyFlag = flags['key-file'] ? resolve(flags['key-file'] as string) : undefined;
  if (flags['repo']) return { repo: resolve(flags['repo'] as string), keyFile: keyFlag };
  const where = {
    dir: (flags['dir'] as string | undefined) ?? DEFAULT_DIR,
    config: flags['config'] as string | undefined,
  };
  if (!flags['dir'] && !flags['config'] && !readLocalCluster(where.dir))
    throw new UsageError(`pgkeel restore needs --repo PATH, --dir DIR or -c node.yml (no cluster in ./${DEFAULT_DIR})`);
  const cfg = nodeConfigFor(where);
  if (cfg.backup?.repo) return { repo: cfg.backup.repo, keyFile: keyFlag ?? cfg.backup.encryption_key_file };
  await using ctx = await backupContext(where);
  return { repo: ctx.settings.repo, keyFile: keyFlag ?? ctx.settings.encryption_key_file };
}

/**
 * With a cluster at hand (--dir, -c), closes the leader's current WAL segment and waits (up to 30 s) until it is in
 * the archive, so a restore to "now" or to a minute ago finds the WAL it needs. Best effort: a cluster that is down
 * (the disaster case) is reported and the restore goes on with what the archive has.
 */
async function archiveNewestWal(flags: Record<string, unknown>, store: BackupStore, say: (s: string) => void) {
  const where = {
    dir: (flags['dir'] as string | undefined) ?? DEFAULT_DIR,
    config: flags['config'] as string | undefined,
  };
  try {
    await using ctx = await backupContext(where);
    const view = await ctx.readView();
    const leader = view.members.find((m) => m.name === view.leader);
    if (!leader) throw new Error('the cluster has no leader');
    const seg = await switchWal(ctx.cfg, leader);
    if (!seg) return;
    for (let i = 0; i < 120 && !(await store.find(walRepoPath(seg))); i++) await sleep(250);
    say(
      (await store.find(walRepoPath(seg)))
        ? `closed the leader's WAL segment ${seg}: archived`
        : `closed the leader's WAL segment ${seg}, but it is not archived after 30 s; restoring with what the archive has`,
    );
  } catch (err) {
    say(`could not archive the newest WAL first (${(err as Error).message}); restoring with what the archive has`);
  }
}

/** The one recovery target the flags name (none: latest). */
export function targetFromFlags(flags: Record<string, unknown>): RecoveryTarget {
  const given: RecoveryTarget[] = [];
  const str = (k: string) => flags[k] as string | undefined;
  if (str('target-time') !== undefined) given.push({ kind: 'time', time: str('target-time') as string });
  if (str('target-lsn') !== undefined) given.push({ kind: 'lsn', lsn: str('target-lsn') as string });
  if (str('target-xid') !== undefined) given.push({ kind: 'xid', xid: str('target-xid') as string });
  if (str('target-name') !== undefined) given.push({ kind: 'name', name: str('target-name') as string });
  if (str('target') !== undefined) {
    if (str('target') !== 'immediate')
      throw new UsageError(`--target accepts only "immediate", got "${str('target')}"`);
    given.push({ kind: 'immediate' });
  }
  if (given.length > 1)
    throw new UsageError(
      'give at most one recovery target (--target-time, --target-lsn, --target-xid, --target-name, --target immediate)',
    );
  return given[0] ?? { kind: 'latest' };
}

/**
 * The restored server's socket goes into its own data directory (0700: private to postgres and root), unless that
 * path is too long for a unix socket (107 bytes); then into a new private directory under /tmp.
 */
function socketDirFor(dataDir: string, port: number): string {
  if (`${dataDir}/.s.PGSQL.${port}`.length <= 107) return dataDir;
  const dir = mkdtempSync(join(tmpdir(), 'pgkeel-restore-'));
  chownForPostgres(dir);
  return dir;
}

const mb = (n: number) => `${(n / 1048576).toFixed(0)} MB`;

export async function runRestoreCommand(args: string[]): Promise<number> {
  try {
    return await restoreCommand(args);
  } catch (err) {
    if (!(err instanceof BackupError)) throw err;
    process.stderr.write(`pgkeel restore: ${err.code}: ${err.message}\n`);
    return 1;
  }
}

async function restoreCommand(args: string[]): Promise<number> {
  const { flags, positional } = parseArgs(args, SPEC);
  if (flags['help']) {
    process.stdout.write(
      `Usage: pgkeel restore --to DATADIR [--dir D | -c node.yml | --repo PATH] [options]\n\n${usage(SPEC)}\n`,
    );
    return 0;
  }
  if (positional.length > 0) throw new UsageError(`unexpected argument "${positional[0]}"`);
  const to = flags['to'] as string | undefined;
  if (!to) throw new UsageError('pgkeel restore needs --to DATADIR');
  const port = flags['port'] as number | undefined;
  if (flags['start'] && port === undefined) throw new UsageError('--start needs --port P');
  if (!flags['start'] && port !== undefined) throw new UsageError('--port is for --start');
  if (port !== undefined && (port < 1 || port > 65535)) throw new UsageError(`--port ${port} is not a port`);
  let recovery: ReturnType<typeof recoveryOf>;
  try {
    recovery = recoveryOf(targetFromFlags(flags), (flags['target-action'] as string | undefined) ?? 'promote');
  } catch (err) {
    if (err instanceof RecoveryTargetError) throw new UsageError(err.message);
    throw err;
  }
  const dataDir = resolve(to);
  const { repo, keyFile } = await repoFor(flags);
  const json = flags['json'] === true;
  const say = (s: string) => process.stderr.write(`${s}\n`);
  const store = await BackupStore.open(new PosixRepo(repo, { owner: postgresIdentity() }), { keyFile });
  if (!flags['repo']) await archiveNewestWal(flags, store, say);
  const t0 = performance.now();
  let lastPrint = 0;
  const onProgress = (p: RestoreProgress) => {
    const now = performance.now();
    if (p.archive !== null && now - lastPrint < 1000) return;
    lastPrint = now;
    const pct = p.totalStoredBytes > 0 ? Math.min(100, Math.round((100 * p.storedBytes) / p.totalStoredBytes)) : null;
    say(
      `restore ${p.backup}: ${pct === null ? mb(p.storedBytes) : `${pct}%`} read, ${p.files} files${p.archive ? ` — ${p.archive}` : `, ${mb(p.bytes)}: done`}`,
    );
  };
  const res = await restoreBackup({
    store,
    dataDir,
    backupId: flags['backup'] as string | undefined,
    recovery,
    restoreCommand: restoreCommandFor(repo, dataDir, keyFile),
    onProgress,
  });
  const restoreSeconds = (performance.now() - t0) / 1000;
  const result: Record<string, unknown> = {
    data_dir: dataDir,
    backup: res.backup.id,
    chain: res.chain,
    bytes: res.bytes,
    files: res.files,
    target: recovery.target,
    action: recovery.action,
    restore_seconds: Number(restoreSeconds.toFixed(3)),
  };
  if (!json)
    process.stdout.write(
      `restored backup ${res.backup.id} into ${dataDir}: ${mb(res.bytes)}, ${res.files} files in ${restoreSeconds.toFixed(1)} s; recovery target: ${describeTarget(recovery.target)}, then ${recovery.action}\n${flags['start'] ? '' : `start it as the postgres user (recovery runs first): pg_ctl -D ${dataDir} -l ${dataDir}/pgkeel-restore.log start\n`}`,
    );
  if (flags['start'] && port !== undefined) {
    const ac = new AbortController();
    const onSignal = () => ac.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      let lastLsn: string | null = null;
      const started = await startRestored({
        dataDir,
        port,
        socketDir: socketDirFor(dataDir, port),
        logFile: `${dataDir}/pgkeel-restore.log`,
        recovery,
        signal: ac.signal,
        onProgress: (p) => {
          if (p.replayLsn !== lastLsn)
            say(`replaying WAL: at ${p.replayLsn}${p.replayTime ? ` (${p.replayTime})` : ''}`);
          lastLsn = p.replayLsn;
        },
      });
      result['started'] = {
        pid: started.pid,
        port,
        state: started.state,
        replay_lsn: started.replayLsn,
        connection_string: started.state === 'shutdown' ? null : started.connectionString,
        socket_connection_string: started.state === 'shutdown' ? null : started.socketConnectionString,
      };
      result['total_seconds'] = Number(((performance.now() - t0) / 1000).toFixed(3));
      if (!json) {
        const what =
          started.state === 'shutdown'
            ? 'reached the target and shut down'
            : `${started.state === 'paused' ? 'paused at' : 'promoted at'} the target (pid ${started.pid})`;
        process.stdout.write(`PostgreSQL ${what}; WAL replayed to ${started.replayLsn ?? '?'}\n`);
        if (started.state !== 'shutdown')
          process.stdout.write(`${started.connectionString}\n${started.socketConnectionString}\n`);
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
  if (json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  return 0;
}
