/**
 * `PostgresInstance`, the real LocalInstance (the port and its contract: local-instance.ts): the data directory's
 * files (managed configuration, standby.signal, moving aside), the programs (initdb, pg_ctl, pg_basebackup,
 * pg_rewind) and, through queries.ts, the SQL the HA loop runs. Programs run as the `postgres` OS user when pgkeel
 * runs as root.
 */
import { existsSync, readFileSync, renameSync, rmSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { NodeConfig } from '../config/node.js';
import { parseListen } from '../lib/net.js';
import type { Logger } from '../lib/log.js';
import {
  ensurePostgresDir,
  ensurePostgresFile,
  makeDirs,
  readNoFollow,
  writeFileForPostgres,
} from '../lib/ownership.js';
import { pidAlive, run, sleep, type RunResult } from '../lib/proc.js';
import {
  INCLUDE_LINE,
  MANAGED_CONF,
  managedParameters,
  memberConninfo,
  pgpassLine,
  renderConf,
  renderHba,
  sslEnabled,
  type ConfInput,
} from './conf.js';
import { syncTlsFiles } from './tls-files.js';
import { readLogTail } from './log-problems.js';
import { parseLsn } from './lsn.js';
import {
  PostgresError,
  type ControlData,
  type HostPort,
  type LocalInstance,
  type PgStatus,
  type RestoreSource,
  type TimelineSwitch,
} from './local-instance.js';
import { restoreFrom, restoreStandby } from './restore-from.js';
import { InstanceSql } from './queries.js';
import { AT_MOST_ONE, asideName, copiesToRemove, listAside, type AsideKind } from './aside.js';

export {
  PostgresError,
  receiverStalled,
  type ControlData,
  type PgStatus,
  type ReplicationRow,
} from './local-instance.js';

/** How long to wait for init to reap a killed postmaster before treating its lock files as stale. */
const ZOMBIE_WAIT_MS = 15_000;

const tail = (r: RunResult) => (r.stderr || r.stdout).trim().split('\n').slice(-5).join('\n');

/** PostgreSQL's server log (stderr, `pg_ctl -l`): beside the data directory, where `pgkeel report` finds it. */
export function serverLogFile(dataDir: string): string {
  return join(dirname(dataDir), 'postgresql.log');
}

export class PostgresInstance implements LocalInstance {
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logFile: string;
  readonly host: string;
  readonly port: number;
  private readonly sql: InstanceSql;
  private readonly tlsWarned = new Set<string>();

  constructor(
    readonly cfg: NodeConfig,
    private readonly log: Logger,
  ) {
    this.dataDir = cfg.postgresql.data_dir;
    this.socketDir = cfg.postgresql.socket_dir;
    this.logFile = serverLogFile(cfg.postgresql.data_dir);
    const hp = parseListen(cfg.postgresql.listen);
    this.host = hp.hosts[0] as string;
    this.port = hp.port;
    this.sql = new InstanceSql(cfg, this.socketDir, this.port);
  }

  bin(name: string): string {
    return join(this.cfg.postgresql.bin_dir, name);
  }

  /** 'ready' when the directory holds an initialized cluster (PG_VERSION and global/pg_control). */
  dataDirState(): 'empty' | 'ready' {
    return existsSync(join(this.dataDir, 'PG_VERSION')) && existsSync(join(this.dataDir, 'global', 'pg_control'))
      ? 'ready'
      : 'empty';
  }

  /** The postmaster's pid if postmaster.pid names a live process. */
  postmasterPid(): number | null {
    try {
      const pid = Number(readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return pidAlive(pid) ? pid : null;
    } catch {
      return null;
    }
  }

  hasStandbySignal(): boolean {
    return existsSync(join(this.dataDir, 'standby.signal'));
  }

  removeStandbySignal(): void {
    rmSync(join(this.dataDir, 'standby.signal'), { force: true });
  }

  isRunning(): boolean {
    return this.postmasterPid() !== null;
  }

  async controlData(): Promise<ControlData | null> {
    if (this.dataDirState() !== 'ready') return null;
    const r = await run(this.bin('pg_controldata'), ['-D', this.dataDir], { env: { LC_ALL: 'C' }, timeoutMs: 10_000 });
    if (r.code !== 0) return null;
    const get = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(r.stdout)?.[1]?.trim();
    const sysid = get('Database system identifier');
    if (!sysid) return null;
    return {
      sysid,
      state: get('Database cluster state') ?? 'unknown',
      timeline: Number(get("Latest checkpoint's TimeLineID") ?? 0),
      checkpointLsn: parseLsn(get('Latest checkpoint location')),
    };
  }

  /** Writes the libpq password file the agent's PostgreSQL-side tools use (pg_basebackup, pg_rewind, walreceiver). */
  writePgpass(): void {
    const a = this.cfg.postgresql.authentication;
    const lines = [
      pgpassLine('*', '*', a.replication.username, a.replication.password, 'replication'),
      pgpassLine('*', '*', a.replication.username, a.replication.password),
      pgpassLine('*', '*', a.superuser.username, a.superuser.password),
    ];
    const file = this.cfg.postgresql.pgpass;
    makeDirs(dirname(file));
    writeFileForPostgres(file, lines.join('\n') + '\n', 0o600);
  }

  /** The node folder (root's), the socket directory and log file (postgres'), pgpass — see lib/ownership.ts. */
  private prepareDirs(): void {
    makeDirs(dirname(this.dataDir));
    ensurePostgresDir(this.socketDir, 0o755, 'socket');
    ensurePostgresFile(this.logFile, 0o640);
    this.writePgpass();
  }

  /** The directories prepared, and what is left in a data directory without a cluster moved aside as `why`. */
  private prepareEmptyDataDir(why: AsideKind): void {
    this.prepareDirs();
    if (existsSync(this.dataDir) && readdirSync(this.dataDir).length > 0) this.moveAside(why);
  }

  /** initdb with data checksums; the superuser gets its password, local and host auth are scram-sha-256. */
  async initdb(): Promise<void> {
    this.prepareDirs();
    ensurePostgresDir(this.dataDir, 0o700, 'data');
    const su = this.cfg.postgresql.authentication.superuser;
    const pwfile = join(dirname(this.dataDir), `.pwfile-${process.pid}`);
    writeFileForPostgres(pwfile, su.password + '\n', 0o600);
    try {
      const extra = this.cfg.bootstrap.initdb.map((o) => (o.startsWith('-') ? o : `--${o}`));
      const args = [
        '-D',
        this.dataDir,
        '--data-checksums',
        '-U',
        su.username,
        `--pwfile=${pwfile}`,
        '--auth-local=scram-sha-256',
        '--auth-host=scram-sha-256',
        ...extra,
      ];
      if (!extra.some((o) => o.startsWith('--encoding') || o.startsWith('-E'))) args.push('--encoding=UTF8');
      if (!extra.some((o) => o.startsWith('--locale') || o.startsWith('--lc-'))) args.push('--locale=C.UTF-8');
      const r = await run(this.bin('initdb'), args, { timeoutMs: 300_000 });
      if (r.code !== 0) throw new PostgresError('PG_INITDB_FAILED', `initdb failed for ${this.dataDir}`, tail(r));
    } finally {
      rmSync(pwfile, { force: true });
    }
    this.ensureInclude();
  }

  /** postgresql.conf ends with an include of pgkeel's managed file, so pgkeel's settings win. */
  private ensureInclude(): void {
    const conf = join(this.dataDir, 'postgresql.conf');
    const text = readNoFollow(conf) ?? '';
    if (!text.includes(INCLUDE_LINE))
      writeFileForPostgres(conf, `${text}\n# pgkeel manages the settings in ${MANAGED_CONF}\n${INCLUDE_LINE}\n`, 0o600);
  }

  /** Writes postgresql.pgkeel.conf, pg_hba.conf and standby.signal (replica) — returns whether the conf changed. */
  writeConfig(inp: ConfInput, role: 'primary' | 'replica'): { changed: boolean } {
    this.prepareDirs();
    this.ensureInclude();
    const tls = this.tlsFiles();
    const file = join(this.dataDir, MANAGED_CONF);
    const text = renderConf(managedParameters({ ...inp, tlsFiles: tls.files }));
    const old = readNoFollow(file) ?? '';
    if (old !== text) writeFileForPostgres(file, text, 0o600);
    const hba = join(this.dataDir, 'pg_hba.conf');
    const hbaText = renderHba(this.cfg, sslEnabled(this.cfg, inp.dcsParameters));
    const hbaChanged = readNoFollow(hba) !== hbaText;
    if (hbaChanged) writeFileForPostgres(hba, hbaText, 0o600);
    const signal = join(this.dataDir, 'standby.signal');
    if (role === 'replica' && !existsSync(signal)) {
      writeFileForPostgres(signal, '', 0o600);
    } else if (role === 'primary' && existsSync(signal)) {
      rmSync(signal);
    }
    return { changed: old !== text || hbaChanged || tls.changed };
  }

  /** PostgreSQL's copies of the local config's TLS files (see tls-files.ts). */
  private tlsFiles(): ReturnType<typeof syncTlsFiles> {
    return syncTlsFiles(this.cfg, this.log, this.tlsWarned);
  }

  /** Starts PostgreSQL and waits until it accepts connections (a replica: until it is consistent and accepts). */
  async start(timeoutMs: number): Promise<void> {
    if (this.isRunning()) return;
    this.prepareDirs();
    await this.awaitDeadPostmaster();
    const r = await run(
      this.bin('pg_ctl'),
      ['start', '-D', this.dataDir, '-l', this.logFile, '-w', '-t', String(Math.ceil(timeoutMs / 1000)), '-s'],
      { timeoutMs: timeoutMs + 5000 },
    );
    if (r.code !== 0) {
      const logTail = this.logTail();
      throw new PostgresError(
        'PG_START_FAILED',
        `PostgreSQL did not start in ${this.dataDir} (see ${this.logFile})`,
        `${tail(r)}\n${logTail}`.trim(),
      );
    }
  }

  /**
   * A postmaster killed with SIGKILL stays a zombie until its parent (init) reaps it, and PostgreSQL's own interlock
   * (postmaster.pid, the socket lock file) counts a zombie as alive and refuses to start. Wait for the process entry
   * to go. postmaster.pid is never removed while its process exists in any form: it also guards the shared memory
   * of backends that may outlive a killed postmaster for a moment. Only a zombie that is still not reaped after
   * ZOMBIE_WAIT_MS — dead for certain, its backends long gone — has its stale lock files removed.
   */
  private async awaitDeadPostmaster(): Promise<void> {
    const pidFile = join(this.dataDir, 'postmaster.pid');
    let pid: number;
    try {
      pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    } catch {
      return;
    }
    if (!Number.isInteger(pid) || pid <= 0) return;
    const exists = () => existsSync(`/proc/${pid}`);
    for (let waited = 0; exists() && waited < ZOMBIE_WAIT_MS; waited += 100) await sleep(100);
    if (!exists()) return;
    this.log.warn(`the old postmaster (pid ${pid}) is an unreaped zombie; removing its stale lock files`, {
      dataDir: this.dataDir,
    });
    rmSync(pidFile, { force: true });
    rmSync(join(this.socketDir, `.s.PGSQL.${this.port}.lock`), { force: true });
  }

  /** The last lines of PostgreSQL's log for an error's detail, read from its end only (a log can be large). */
  logTail(lines = 8): string {
    return readLogTail(this.logFile).trim().split('\n').slice(-lines).join('\n');
  }

  /** Stops PostgreSQL: `fast` (with a shutdown checkpoint) and, if not down within the timeout, `immediate`. */
  async stop(mode: 'fast' | 'immediate', timeoutMs: number): Promise<void> {
    await this.disconnect();
    if (!this.isRunning()) return;
    const r = await run(
      this.bin('pg_ctl'),
      ['stop', '-D', this.dataDir, '-m', mode, '-w', '-t', String(Math.max(1, Math.ceil(timeoutMs / 1000))), '-s'],
      { timeoutMs: timeoutMs + 5000 },
    );
    if (r.code === 0 || !this.isRunning()) return;
    if (mode === 'fast') {
      this.log.warn('fast shutdown timed out, stopping immediately', { dataDir: this.dataDir });
      return this.stop('immediate', 30_000);
    }
    throw new PostgresError('PG_STOP_FAILED', `PostgreSQL in ${this.dataDir} did not stop`, tail(r));
  }

  async reload(): Promise<void> {
    const r = await run(this.bin('pg_ctl'), ['reload', '-D', this.dataDir, '-s'], { timeoutMs: 10_000 });
    if (r.code !== 0) throw new PostgresError('PG_COMMAND_FAILED', 'pg_ctl reload failed', tail(r));
  }

  async promote(timeoutMs: number): Promise<void> {
    const r = await run(
      this.bin('pg_ctl'),
      ['promote', '-D', this.dataDir, '-w', '-t', String(Math.ceil(timeoutMs / 1000)), '-s'],
      { timeoutMs: timeoutMs + 5000 },
    );
    if (r.code !== 0)
      throw new PostgresError('PG_PROMOTE_FAILED', 'pg_ctl promote failed', `${tail(r)}\n${this.logTail()}`.trim());
  }

  // SQL (queries.ts)

  disconnect(): Promise<void> {
    return this.sql.disconnect();
  }

  /** Runs one statement as the superuser over the unix socket (tests and tools; the agent uses the methods below). */
  query<R extends Record<string, unknown>>(sql: string, params: unknown[] = [], timeoutMs = 5000): Promise<R[]> {
    return this.sql.query<R>(sql, params, timeoutMs);
  }

  status(timeoutMs = 5000): Promise<PgStatus> {
    return this.sql.status(timeoutMs);
  }

  checkpoint(timeoutMs: number): Promise<void> {
    return this.sql.checkpoint(timeoutMs);
  }

  switchWal(timeoutMs: number, restorePoint?: string): Promise<void> {
    return this.sql.switchWal(timeoutMs, restorePoint);
  }

  latestTimelineSwitch(): Promise<TimelineSwitch | null> {
    return this.sql.latestTimelineSwitch();
  }

  transactionsInFlight(timeoutMs: number): Promise<number> {
    return this.sql.transactionsInFlight(timeoutMs);
  }

  ensureReplicationRole(): Promise<void> {
    return this.sql.ensureReplicationRole();
  }

  slots(): Promise<Map<string, number | null>> {
    return this.sql.slots();
  }

  lostSlots(): Promise<Set<string>> {
    return this.sql.lostSlots();
  }

  createSlot(name: string): Promise<void> {
    return this.sql.createSlot(name);
  }

  dropSlot(name: string): Promise<void> {
    return this.sql.dropSlot(name);
  }

  remoteDatabaseBytes(from: HostPort, timeoutMs = 5000): Promise<number | null> {
    return this.sql.remoteDatabaseBytes(from, timeoutMs);
  }

  /** Clones the leader into the (empty) data directory with pg_basebackup; a failed clone is moved aside, not deleted. */
  async clone(from: HostPort, timeoutMs: number): Promise<void> {
    this.prepareEmptyDataDir('before-clone');
    ensurePostgresDir(this.dataDir, 0o700, 'data');
    const src = memberConninfo(this.cfg, 'replication', from, this.tlsFiles().files, [['connect_timeout', 5]]);
    const r = await run(
      this.bin('pg_basebackup'),
      ['-D', this.dataDir, '-d', src, '-X', 'stream', '-c', 'fast', '--no-password', '--progress'],
      {
        env: {
          PGPASSFILE: this.cfg.postgresql.pgpass,
          PGAPPNAME: `pgkeel_clone_${this.cfg.name}`,
          PGCONNECT_TIMEOUT: '5',
        },
        timeoutMs,
      },
    );
    if (r.code !== 0) {
      const aside = this.moveAside('failed-clone');
      throw new PostgresError(
        'PG_CLONE_FAILED',
        `pg_basebackup from ${from.host}:${from.port} failed${aside ? `; the partial copy was moved to ${aside}` : ''}`,
        tail(r),
      );
    }
    this.ensureInclude();
  }

  /** A replica from the newest backup (restore-from.ts); a failed restore is moved aside, as a failed clone is. */
  async cloneFromBackup(src: Pick<RestoreSource, 'repo' | 'keyFile'>, timeoutMs: number): Promise<void> {
    this.prepareEmptyDataDir('before-clone');
    try {
      await restoreStandby(this.dataDir, src, AbortSignal.timeout(timeoutMs));
    } catch (err) {
      const aside = this.moveAside('failed-clone');
      throw new PostgresError(
        'PG_CLONE_FAILED',
        `restoring the newest backup of ${src.repo} failed${aside ? `; the partial copy was moved to ${aside}` : ''}`,
        (err as Error).message,
      );
    }
    this.ensureInclude();
  }

  /** Bootstrap from a backup (restore-from.ts); a data directory that holds a cluster is refused and left alone. */
  async restoreFrom(src: RestoreSource, conf: ConfInput, timeoutMs: number): Promise<void> {
    if (this.dataDirState() === 'ready')
      throw new PostgresError(
        'PG_RESTORE_FAILED',
        `refusing to restore into ${this.dataDir}: it holds a database cluster`,
      );
    this.prepareEmptyDataDir('failed-bootstrap');
    await restoreFrom(
      {
        dataDir: this.dataDir,
        logFile: this.logFile,
        port: this.port,
        binDir: this.cfg.postgresql.bin_dir,
        superuser: this.cfg.postgresql.authentication.superuser,
        log: this.log,
        writeConfig: (c, role) => void this.writeConfig(c, role),
        stop: (mode, ms) => this.stop(mode, ms),
      },
      src,
      conf,
      timeoutMs,
    );
  }

  /** pg_rewind against the new leader (PostgreSQL must be stopped cleanly first). */
  async rewind(from: HostPort, timeoutMs: number): Promise<void> {
    const src = memberConninfo(this.cfg, 'superuser', from, this.tlsFiles().files, [
      ['dbname', 'postgres'],
      ['connect_timeout', 5],
    ]);
    const r = await run(this.bin('pg_rewind'), ['-D', this.dataDir, `--source-server=${src}`, '--progress'], {
      env: { PGPASSFILE: this.cfg.postgresql.pgpass },
      timeoutMs,
    });
    if (r.code !== 0)
      throw new PostgresError('PG_REWIND_FAILED', `pg_rewind from ${from.host}:${from.port} failed`, tail(r));
    // pg_rewind sets this directory's minimum recovery point to the source's WAL insert position. On an idle leader
    // just after a segment switch (archive_timeout, a backup's pg_switch_wal) that position is past the last record
    // and stays so until the leader writes again: the replica would never become consistent and its start would
    // time out. One transaction with an xid on the source writes a commit record past it.
    const nudge = await run(this.bin('psql'), ['-X', '-q', '-A', '-t', '-d', src, '-c', 'SELECT txid_current()'], {
      env: { PGPASSFILE: this.cfg.postgresql.pgpass },
      timeoutMs: 15_000,
    });
    if (nudge.code !== 0)
      this.log.warn(`could not write a WAL record on ${from.host}:${from.port} after pg_rewind`, {
        detail: tail(nudge),
      });
  }

  /**
   * Renames the data directory to "<data_dir>.<why>-<time>" and returns the new path (null if there was nothing,
   * or when keep_moved_aside is 0 and the directory was deleted instead). Older copies of the same kind beyond the
   * retention (postgresql.keep_moved_aside; one for failed attempts) are removed first, oldest first.
   */
  moveAside(why: AsideKind): string | null {
    if (!existsSync(this.dataDir)) return null;
    const keep = AT_MOST_ONE.has(why)
      ? Math.min(1, this.cfg.postgresql.keep_moved_aside)
      : this.cfg.postgresql.keep_moved_aside;
    for (const old of copiesToRemove(listAside(this.dataDir, why), keep)) {
      rmSync(old, { recursive: true, force: true });
      this.log.info('removed an older moved-aside copy of the data directory', { path: old, keep });
    }
    if (keep === 0) {
      rmSync(this.dataDir, { recursive: true, force: true });
      this.log.warn('removed the data directory (postgresql.keep_moved_aside is 0)', { dataDir: this.dataDir, why });
      return null;
    }
    const base = asideName(this.dataDir, why, new Date());
    let to = base;
    for (let i = 1; existsSync(to); i++) to = `${base}-${i}`; // two in one millisecond: still ordered by age
    renameSync(this.dataDir, to);
    this.log.warn('moved the data directory aside', { from: this.dataDir, to });
    return to;
  }
}
