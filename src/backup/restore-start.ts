/**
 * `startRestored`: starts PostgreSQL 15 on a restored data directory as a standalone server on a port of its own and
 * waits until its recovery target is reached (promote: out of recovery; pause: replay paused; shutdown: the server
 * stopped by itself, its control file saying "shut down in recovery"), reporting WAL replay as it goes.
 *
 * The restored copy is isolated from the cluster it came from: it listens on 127.0.0.1 only, on its own port and
 * socket directory, with archive_mode=off (it never archives into the production repository) and logging to one
 * file. To watch recovery without knowing the cluster's passwords, it runs with an hba file of ours: the original
 * pg_hba.conf with one line first, `local all all trust` — on a socket directory only postgres (and root) can enter,
 * so it grants nothing the postgres OS user could not already do to its own data directory.
 */
import { spawn } from 'node:child_process';
import { closeSync, lstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { ensurePostgresDir, ensurePostgresFile, readNoFollow, writeFileForPostgres } from '../lib/ownership.js';
import { pidAlive, postgresIdentity, run, sleep } from '../lib/proc.js';
import { conninfo } from '../postgres/conf.js';
import { readLogTail } from '../postgres/log-problems.js';
import { BackupError } from './errors.js';
import { confString, type Recovery } from './recovery.js';

export const DEFAULT_BIN_DIR = '/usr/lib/postgresql/15/bin';
const RESTORE_HBA = 'pgkeel-restore.hba.conf';

export interface ReplayProgress {
  /** starting: not accepting connections yet (before consistency); replaying: WAL being applied. */
  readonly phase: 'starting' | 'replaying';
  readonly replayLsn: string | null;
  /** Commit time of the last transaction replayed. */
  readonly replayTime: string | null;
}

export interface StartRestoredOptions {
  readonly dataDir: string;
  readonly port: number;
  /** A private directory for the server's socket (created 0700 for postgres, or existing and closed to others). */
  readonly socketDir: string;
  readonly logFile: string;
  readonly recovery: Recovery;
  /** The role to watch recovery as and to name in the connection strings (default postgres). */
  readonly user?: string;
  readonly database?: string;
  readonly binDir?: string;
  readonly pollMs?: number;
  readonly onProgress?: (p: ReplayProgress) => void;
  /** Aborting stops the server (fast shutdown) and rejects; the data directory stays, recovery can be resumed. */
  readonly signal?: AbortSignal;
}

export interface StartedRestore {
  /** The postmaster (still running unless the action was shutdown). */
  readonly pid: number;
  readonly state: 'promoted' | 'paused' | 'shutdown';
  readonly replayLsn: string | null;
  /** TCP, 127.0.0.1 (authentication as in the backed-up pg_hba.conf). */
  readonly connectionString: string;
  /** The private socket (trust, for root and postgres). */
  readonly socketConnectionString: string;
}

export async function startRestored(o: StartRestoredOptions): Promise<StartedRestore> {
  const bin = o.binDir ?? DEFAULT_BIN_DIR;
  const user = o.user ?? 'postgres';
  const database = o.database ?? 'postgres';
  const resume = `the data directory ${o.dataDir} is kept as it is; PostgreSQL's log: ${o.logFile}. Fix the cause, then resume recovery by starting it again (as postgres: ${bin}/pg_ctl -D ${o.dataDir} -l ${o.logFile} start), or remove the directory and restore again`;
  if (o.socketDir.includes('"') || `${o.socketDir}/.s.PGSQL.${o.port}`.length > 107)
    throw new BackupError('RESTORE_FAILED', `socket directory ${o.socketDir} is unusable (too long, or has a quote)`);
  ensurePostgresDir(o.socketDir, 0o700, 'socket');
  if ((lstatSync(o.socketDir).mode & 0o077) !== 0)
    throw new BackupError(
      'RESTORE_FAILED',
      `socket directory ${o.socketDir} is open to other users; the restored server trusts local connections there, so it must be 0700`,
    );
  const hba = readNoFollow(join(o.dataDir, 'pg_hba.conf')) ?? '';
  writeFileForPostgres(
    join(o.dataDir, RESTORE_HBA),
    `# pgkeel restore: the private socket trusts local connections while recovery is watched\nlocal all all trust\n${hba}`,
  );
  ensurePostgresFile(o.logFile, 0o640);
  // In postgresql.auto.conf rather than on the command line, so a resumed start (pg_ctl start) stays as isolated.
  const settings: [string, string][] = [
    ['port', String(o.port)],
    ['listen_addresses', confString('127.0.0.1')],
    ['unix_socket_directories', confString(`"${o.socketDir}"`)],
    ['hba_file', confString(join(o.dataDir, RESTORE_HBA))],
    ['archive_mode', 'off'],
    ['hot_standby', 'on'],
    ['logging_collector', 'off'],
    ...(process.platform === 'linux' ? ([['recovery_init_sync_method', 'syncfs']] as [string, string][]) : []),
  ];
  const auto = join(o.dataDir, 'postgresql.auto.conf');
  writeFileForPostgres(
    auto,
    `${readNoFollow(auto) ?? ''}\n# Added by pgkeel restore --start: a standalone copy on its own port and socket, never archiving\n${settings.map(([k, v]) => `${k} = ${v}\n`).join('')}`,
  );
  const id = postgresIdentity();
  const log = openSync(o.logFile, 'a');
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(join(bin, 'postgres'), ['-D', o.dataDir], {
      detached: true,
      stdio: ['ignore', log, log],
      ...(id ? { uid: id.uid, gid: id.gid, cwd: '/', env: { ...process.env, HOME: id.home } } : {}),
    });
  } finally {
    closeSync(log);
  }
  let exited: string | null = null;
  child.on('exit', (code, sig) => (exited = `exited with ${code ?? sig}`));
  child.on('error', (e) => (exited = `could not be started: ${e.message}`));
  child.unref();
  const pid = child.pid ?? 0;
  const failed = (why: string) =>
    new BackupError('RESTORE_FAILED', `the restored PostgreSQL ${why}; ${resume}\n${logTail(o.logFile)}`);
  const client = { host: o.socketDir, port: o.port, user, database };
  let last: ReplayProgress = { phase: 'starting', replayLsn: null, replayTime: null };
  for (;;) {
    if (o.signal?.aborted) {
      if (pidAlive(pid)) process.kill(pid, 'SIGINT');
      throw new BackupError(
        'RESTORE_FAILED',
        `waiting for recovery was interrupted; the server was stopped. ${resume}`,
      );
    }
    if (exited !== null || (pid > 0 && !pidAlive(pid))) {
      const state = await clusterState(bin, o.dataDir);
      if (o.recovery.action === 'shutdown' && state === 'shut down in recovery')
        return { pid, state: 'shutdown', replayLsn: last.replayLsn, ...strings(o, user, database) };
      throw failed(`${exited ?? 'exited'} before reaching the recovery target (cluster state: ${state})`);
    }
    let s: Status | null;
    try {
      s = await recoveryStatus(client);
    } catch (err) {
      if (pidAlive(pid)) process.kill(pid, 'SIGINT');
      throw new BackupError('RESTORE_FAILED', `${(err as Error).message}; the server was stopped. ${resume}`);
    }
    if (s) {
      last = { phase: 'replaying', replayLsn: s.lsn, replayTime: s.time };
      o.onProgress?.(last);
      if (o.recovery.action === 'promote' && !s.inRecovery)
        return { pid, state: 'promoted', replayLsn: s.lsn, ...strings(o, user, database) };
      if (o.recovery.action === 'pause' && s.pause === 'paused')
        return { pid, state: 'paused', replayLsn: s.lsn, ...strings(o, user, database) };
      if (!s.inRecovery && o.recovery.action !== 'promote')
        throw failed(`ended recovery and promoted instead of the action "${o.recovery.action}"`);
    } else o.onProgress?.(last);
    await sleep(o.pollMs ?? 250, o.signal);
  }
}

function strings(o: StartRestoredOptions, user: string, database: string) {
  return {
    connectionString: `postgresql://${encodeURIComponent(user)}@127.0.0.1:${o.port}/${encodeURIComponent(database)}`,
    socketConnectionString: conninfo([
      ['host', o.socketDir],
      ['port', o.port],
      ['user', user],
      ['dbname', database],
    ]),
  };
}

interface Status {
  inRecovery: boolean;
  lsn: string | null;
  time: string | null;
  pause: string | null;
}

/** One look at recovery; null while the server does not accept connections yet. */
async function recoveryStatus(conn: pg.ClientConfig): Promise<Status | null> {
  const c = new pg.Client({ ...conn, connectionTimeoutMillis: 5000, application_name: 'pgkeel restore' });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const r = await c.query(
      `SELECT pg_is_in_recovery() AS rec, pg_last_wal_replay_lsn()::text AS lsn,
              pg_last_xact_replay_timestamp()::text AS time,
              CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() END AS pause`,
    );
    const row = r.rows[0] as { rec: boolean; lsn: string | null; time: string | null; pause: string | null };
    return { inRecovery: row.rec, lsn: row.lsn, time: row.time, pause: row.pause };
  } catch (err) {
    // Not accepting connections yet (57P03, a refused socket) is the wait; a role or database that does not exist
    // would never change by waiting.
    const code = (err as { code?: string }).code;
    if (code !== undefined && FATAL_CONNECT.has(code))
      throw new BackupError(
        'RESTORE_FAILED',
        `cannot watch the restored server as role "${conn.user}" in database "${conn.database}": ${(err as Error).message} (give the cluster's superuser and an existing database)`,
      );
    return null;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** SQLSTATEs of a connection that will not succeed by waiting: invalid authorization, no such database. */
const FATAL_CONNECT = new Set(['28000', '28P01', '3D000']);

/** pg_controldata's "Database cluster state" (e.g. "in archive recovery", "shut down in recovery"). */
export async function clusterState(binDir: string, dataDir: string): Promise<string> {
  const r = await run(join(binDir, 'pg_controldata'), ['-D', dataDir], { env: { LC_ALL: 'C' }, timeoutMs: 30_000 });
  const m = /^Database cluster state:\s*(.+)$/m.exec(r.stdout);
  return m ? (m[1] as string).trim() : `unknown (pg_controldata: ${(r.stderr || r.stdout).trim().slice(0, 200)})`;
}

function logTail(file: string): string {
  try {
    return readLogTail(file).trim().split('\n').slice(-10).join('\n');
  } catch {
    try {
      return readFileSync(file, 'utf8').slice(-2000);
    } catch {
      return '';
    }
  }
}
