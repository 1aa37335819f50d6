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
import { fileURLToPath } from 'node:url';
import { BackupError } from '../backup/errors.js';
import { PosixRepo } from '../backup/posix-repo.js';
import { describeTarget, type RecoveryTarget, RecoveryTargetError, recoveryOf } from '../backup/recovery.js';
import { type RestoreProgress, restoreBackup } from '../backup/restore.js';
import { startRestored } from '../backup/restore-start.js';
import { BackupStore } from '../backup/store.js';
import { chownForPostgres, postgresIdentity } from '../lib/proc.js';
import { parseArgs, UsageError, usage, type FlagSpec } from './args.js';

const SPEC: Record<string, FlagSpec> = {
  to: { type: 'string', doc: 'the data directory to fill (must not exist, or be empty)', placeholder: 'DATADIR' },
  repo: { type: 'string', doc: 'the backup repository (a directory)', placeholder: 'PATH' },
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

/** Placeholder until wal-commands.ts's restoreCommand() is merged: `node main.js archive-get --repo R %f %p`. */
function restoreCommandFor(repo: string, keyFile?: string): string {
  const main = fileURLToPath(new URL('./main.js', import.meta.url));
  const sh = (s: string) => (/^[A-Za-z0-9_./=:-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  const words = [process.execPath, main, 'archive-get', '--repo', repo, ...(keyFile ? ['--key-file', keyFile] : [])];
  return `${words.map(sh).join(' ')} %f %p`;
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
    process.stdout.write(`Usage: pgkeel restore --to DATADIR --repo PATH [options]\n\n${usage(SPEC)}\n`);
    return 0;
  }
  if (positional.length > 0) throw new UsageError(`unexpected argument "${positional[0]}"`);
  const to = flags['to'] as string | undefined;
  const repoDir = flags['repo'] as string | undefined;
  if (!to) throw new UsageError('pgkeel restore needs --to DATADIR');
  if (!repoDir) throw new UsageError('pgkeel restore needs --repo PATH');
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
  const repo = resolve(repoDir);
  const keyFile = flags['key-file'] ? resolve(flags['key-file'] as string) : undefined;
  const json = flags['json'] === true;
  const say = (s: string) => process.stderr.write(`${s}\n`);
  const store = await BackupStore.open(new PosixRepo(repo, { owner: postgresIdentity() }), { keyFile });
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
    restoreCommand: restoreCommandFor(repo, keyFile),
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
