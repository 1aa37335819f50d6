/**
 * The local PostgreSQL instance: initdb, managed configuration, start/stop/restart/reload/promote, clone and rewind,
 * and the status queries the HA loop needs. Programs run as the `postgres` OS user when pgkeel runs as root.
 */
import { existsSync, readFileSync, renameSync, rmSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pg from 'pg';
import type { NodeConfig } from '../config/node.js';
import { parseHostPort } from '../lib/net.js';
import type { Logger } from '../lib/log.js';
import { ensurePostgresDir, ensurePostgresFile, makeDirs, readNoFollow, writeFileForPostgres } from '../lib/ownership.js';
import { pidAlive, run, sleep, type RunResult } from '../lib/proc.js';
import { INCLUDE_LINE, MANAGED_CONF, managedParameters, memberConninfo, pgpassLine, renderConf, renderHba, sslEnabled, type ConfInput } from './conf.js';
import { syncTlsFiles } from './tls-files.js';
import { readLogTail } from './log-problems.js';
import { parseLsn } from './lsn.js';
import { AT_MOST_ONE, asideName, copiesToRemove, listAside, type AsideKind } from './aside.js';

export class PostgresError extends Error {
  constructor(
    readonly code: 'PG_INITDB_FAILED' | 'PG_START_FAILED' | 'PG_STOP_FAILED' | 'PG_CLONE_FAILED' | 'PG_REWIND_FAILED' | 'PG_PROMOTE_FAILED' | 'PG_COMMAND_FAILED',
    message: string,
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'PostgresError';
  }
}

export interface ControlData {
  readonly sysid: string;
  readonly state: string;
  readonly timeline: number;
  readonly checkpointLsn: number | null;
}

export interface ReplicationRow {
  readonly applicationName: string;
  readonly state: string;
  readonly syncState: string;
  readonly clientAddr: string | null;
  readonly replayLag: number | null;
}

export interface PgStatus {
  readonly inRecovery: boolean;
  readonly timeline: number | null;
  readonly walPosition: number | null;
  readonly receivedLsn: number | null;
  readonly replayedLsn: number | null;
  /**
   * The WAL receiver is connected *and* has heard from its sender within wal_receiver_timeout. A stalled
   * connection (TCP retransmitting into a healed partition) still says "streaming" in pg_stat_wal_receiver.
   */
  readonly streaming: boolean;
  /** Milliseconds since the WAL receiver last received a message from its sender; null without a receiver. */
  readonly receiverSilentMs: number | null;
  readonly upstreamHost: string | null;
  readonly upstreamPort: number | null;
  readonly replication: readonly ReplicationRow[];
  readonly postmasterStart: string | null;
  readonly serverVersion: number;
  readonly pendingRestart: boolean;
  readonly replayPaused: boolean;
  readonly replayTimestamp: string | null;
}

/**
 * A receiver silent for longer than wal_receiver_timeout should have given up and reconnected; if it still says
 * "streaming" its connection is stuck and its LSNs are stale. (0 disables the timeout, as in PostgreSQL.)
 */
export function receiverStalled(silentMs: number | null, timeoutMs: number): boolean {
  return silentMs !== null && timeoutMs > 0 && silentMs > timeoutMs;
}

/** How long to wait for init to reap a killed postmaster before treating its lock files as stale. */
const ZOMBIE_WAIT_MS = 15_000;

const tail = (r: RunResult) => (r.stderr || r.stdout).trim().split('\n').slice(-5).join('\n');

export class PostgresInstance {
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logFile: string;
  readonly host: string;
  readonly port: number;
  private client: pg.Client | null = null;
  private readonly tlsWarned = new Set<string>();

  constructor(
    readonly cfg: NodeConfig,
    private readonly log: Logger,
  ) {
    this.dataDir = cfg.postgresql.data_dir;
    this.socketDir = cfg.postgresql.socket_dir;
    this.logFile = join(dirname(cfg.postgresql.data_dir), 'postgresql.log');
    const hp = parseHostPort(cfg.postgresql.listen);
    this.host = hp.host;
    this.port = hp.port;
  }

  bin(name: string): string {
    return join(this.cfg.postgresql.bin_dir, name);
  }

  /** 'ready' when the directory holds an initialized cluster (PG_VERSION and global/pg_control). */
  dataDirState(): 'empty' | 'ready' {
    return existsSync(join(this.dataDir, 'PG_VERSION')) && existsSync(join(this.dataDir, 'global', 'pg_control')) ? 'ready' : 'empty';
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
    const lines = [pgpassLine('*', '*', a.replication.username, a.replication.password, 'replication'), pgpassLine('*', '*', a.replication.username, a.replication.password), pgpassLine('*', '*', a.superuser.username, a.superuser.password)];
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

  /** initdb with data checksums; the superuser gets its password, local and host auth are scram-sha-256. */
  async initdb(): Promise<void> {
    this.prepareDirs();
    ensurePostgresDir(this.dataDir, 0o700, 'data');
    const su = this.cfg.postgresql.authentication.superuser;
    const pwfile = join(dirname(this.dataDir), `.pwfile-${process.pid}`);
    writeFileForPostgres(pwfile, su.password + '\n', 0o600);
    try {
      const extra = this.cfg.bootstrap.initdb.map((o) => (o.startsWith('-') ? o : `--${o}`));
      const args = ['-D', this.dataDir, '--data-checksums', '-U', su.username, `--pwfile=${pwfile}`, '--auth-local=scram-sha-256', '--auth-host=scram-sha-256', ...extra];
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
    if (!text.includes(INCLUDE_LINE)) writeFileForPostgres(conf, `${text}\n# pgkeel manages the settings in ${MANAGED_CONF}\n${INCLUDE_LINE}\n`, 0o600);
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
    const r = await run(this.bin('pg_ctl'), ['start', '-D', this.dataDir, '-l', this.logFile, '-w', '-t', String(Math.ceil(timeoutMs / 1000)), '-s'], { timeoutMs: timeoutMs + 5000 });
    if (r.code !== 0) {
      const logTail = this.logTail();
      throw new PostgresError('PG_START_FAILED', `PostgreSQL did not start in ${this.dataDir} (see ${this.logFile})`, `${tail(r)}\n${logTail}`.trim());
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
    this.log.warn(`the old postmaster (pid ${pid}) is an unreaped zombie; removing its stale lock files`, { dataDir: this.dataDir });
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
    const r = await run(this.bin('pg_ctl'), ['stop', '-D', this.dataDir, '-m', mode, '-w', '-t', String(Math.max(1, Math.ceil(timeoutMs / 1000))), '-s'], { timeoutMs: timeoutMs + 5000 });
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
    const r = await run(this.bin('pg_ctl'), ['promote', '-D', this.dataDir, '-w', '-t', String(Math.ceil(timeoutMs / 1000)), '-s'], { timeoutMs: timeoutMs + 5000 });
    if (r.code !== 0) throw new PostgresError('PG_PROMOTE_FAILED', 'pg_ctl promote failed', `${tail(r)}\n${this.logTail()}`.trim());
  }

  private async connection(timeoutMs: number): Promise<pg.Client> {
    if (this.client) return this.client;
    const su = this.cfg.postgresql.authentication.superuser;
    const c = new pg.Client({
      host: this.socketDir,
      port: this.port,
      user: su.username,
      password: su.password,
      database: 'postgres',
      application_name: 'pgkeel',
      connectionTimeoutMillis: timeoutMs,
      statement_timeout: timeoutMs,
      query_timeout: timeoutMs,
    });
    c.on('error', () => {
      if (this.client === c) this.client = null;
    });
    try {
      await c.connect();
    } catch (err) {
      await c.end().catch(() => {});
      throw err;
    }
    this.client = c;
    return c;
  }

  async disconnect(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (c) await c.end().catch(() => {});
  }

  /** Runs one statement as the superuser over the unix socket; a failure drops the connection for the next call. */
  async query<R extends Record<string, unknown>>(sql: string, params: unknown[] = [], timeoutMs = 5000): Promise<R[]> {
    const c = await this.connection(timeoutMs);
    try {
      const r = await c.query(sql, params);
      return r.rows as R[];
    } catch (err) {
      if (!(err as { code?: string }).code) await this.disconnect();
      throw err;
    }
  }

  /** The state the HA loop needs, in two round trips. */
  async status(timeoutMs = 5000): Promise<PgStatus> {
    const rows = await this.query<Record<string, string | boolean | number | null>>(
      `SELECT pg_is_in_recovery() AS rec,
              CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS wal,
              CASE WHEN pg_is_in_recovery() THEN NULL ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS wal_tli,
              pg_last_wal_receive_lsn()::text AS recv, pg_last_wal_replay_lsn()::text AS replay,
              CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END AS paused,
              pg_last_xact_replay_timestamp()::text AS replay_ts,
              (SELECT timeline_id FROM pg_control_checkpoint()) AS ckpt_tli,
              pg_postmaster_start_time()::text AS started,
              current_setting('server_version_num')::int AS version,
              (SELECT count(*) FROM pg_settings WHERE pending_restart) > 0 AS pending,
              w.status AS wr_status, w.received_tli AS wr_tli, w.sender_host AS wr_host, w.sender_port AS wr_port,
              (extract(epoch FROM clock_timestamp() - w.last_msg_receipt_time) * 1000)::bigint AS wr_silent_ms,
              (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_receiver_timeout') AS wr_timeout_ms
         FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver w ON true`,
      [],
      timeoutMs,
    );
    const r = rows[0] ?? {};
    const inRecovery = r['rec'] === true;
    const received = parseLsn(r['recv'] as string | null);
    const replayed = parseLsn(r['replay'] as string | null);
    let replication: ReplicationRow[] = [];
    if (!inRecovery) {
      const rep = await this.query<Record<string, string | null>>(
        `SELECT application_name, state, sync_state, client_addr::text AS client_addr,
                pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint::text AS lag FROM pg_stat_replication`,
        [],
        timeoutMs,
      );
      replication = rep.map((x) => ({
        applicationName: x['application_name'] ?? '',
        state: x['state'] ?? '',
        syncState: x['sync_state'] ?? '',
        clientAddr: x['client_addr'] ?? null,
        replayLag: x['lag'] === null || x['lag'] === undefined ? null : Number(x['lag']),
      }));
    }
    const silentMs = r['wr_silent_ms'] === null || r['wr_silent_ms'] === undefined ? null : Number(r['wr_silent_ms']);
    let tli = inRecovery ? ((r['wr_tli'] as number | null) ?? (r['ckpt_tli'] as number | null)) : (r['wal_tli'] as number | null);
    // Without a WAL receiver the only SQL-visible timeline is the last restartpoint's, stale after a timeline switch;
    // a false "diverged" verdict would rewind a healthy replica. IDENTIFY_SYSTEM reports the replay timeline.
    if (inRecovery && r['wr_status'] !== 'streaming') tli = (await this.replayTimeline(timeoutMs).catch(() => null)) ?? tli;
    return {
      inRecovery,
      timeline: tli ?? null,
      walPosition: inRecovery ? Math.max(received ?? 0, replayed ?? 0) || null : parseLsn(r['wal'] as string | null),
      receivedLsn: received,
      replayedLsn: replayed,
      streaming: r['wr_status'] === 'streaming' && !receiverStalled(silentMs, Number(r['wr_timeout_ms'] ?? 0)),
      receiverSilentMs: silentMs,
      upstreamHost: (r['wr_host'] as string | null) ?? null,
      upstreamPort: (r['wr_port'] as number | null) ?? null,
      replication,
      postmasterStart: (r['started'] as string | null) ?? null,
      serverVersion: Number(r['version'] ?? 0),
      pendingRestart: r['pending'] === true,
      replayPaused: r['paused'] === true,
      replayTimestamp: (r['replay_ts'] as string | null) ?? null,
    };
  }

  /** The timeline a standby is replaying (IDENTIFY_SYSTEM over a replication=database connection). */
  async replayTimeline(timeoutMs = 5000): Promise<number | null> {
    const su = this.cfg.postgresql.authentication.superuser;
    const c = new pg.Client({ host: this.socketDir, port: this.port, user: su.username, password: su.password, database: 'postgres', replication: 'database', connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs } as pg.ClientConfig);
    c.on('error', () => {});
    try {
      await c.connect();
      const r = await c.query('IDENTIFY_SYSTEM');
      const tl = Number((r.rows[0] as Record<string, unknown> | undefined)?.['timeline']);
      return Number.isInteger(tl) && tl > 0 ? tl : null;
    } finally {
      await c.end().catch(() => {});
    }
  }

  /** Creates or updates the replication role (run on the primary after bootstrap and on every promotion). */
  async ensureReplicationRole(): Promise<void> {
    const rep = this.cfg.postgresql.authentication.replication;
    const exists = await this.query(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [rep.username]);
    const ident = `"${rep.username.replace(/"/g, '""')}"`;
    const pw = `'${rep.password.replace(/'/g, "''")}'`;
    await this.query(exists.length ? `ALTER ROLE ${ident} WITH REPLICATION LOGIN PASSWORD ${pw}` : `CREATE ROLE ${ident} WITH REPLICATION LOGIN PASSWORD ${pw}`);
  }

  /** Physical replication slots on this (primary) instance. */
  async slots(): Promise<Map<string, number | null>> {
    const rows = await this.query<{ slot_name: string; restart_lsn: string | null }>(`SELECT slot_name, restart_lsn::text FROM pg_replication_slots WHERE slot_type = 'physical'`);
    return new Map(rows.map((r) => [r.slot_name, parseLsn(r.restart_lsn)]));
  }

  /** Inactive physical slots PostgreSQL invalidated at max_slot_wal_keep_size (wal_status 'lost'). */
  async lostSlots(): Promise<Set<string>> {
    const rows = await this.query<{ slot_name: string }>(`SELECT slot_name FROM pg_replication_slots WHERE slot_type = 'physical' AND wal_status = 'lost' AND NOT active`);
    return new Set(rows.map((r) => r.slot_name));
  }

  async createSlot(name: string): Promise<void> {
    await this.query(`SELECT pg_create_physical_replication_slot($1, true) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`, [name]);
  }

  async dropSlot(name: string): Promise<void> {
    await this.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`, [name]);
  }

  /** Clones the leader into the (empty) data directory with pg_basebackup; a failed clone is moved aside, not deleted. */
  async clone(from: { host: string; port: number }, timeoutMs: number): Promise<void> {
    this.prepareDirs();
    if (existsSync(this.dataDir) && readdirSync(this.dataDir).length > 0) this.moveAside('before-clone');
    ensurePostgresDir(this.dataDir, 0o700, 'data');
    const src = memberConninfo(this.cfg, 'replication', from, this.tlsFiles().files, [['connect_timeout', 5]]);
    const r = await run(
      this.bin('pg_basebackup'),
      ['-D', this.dataDir, '-d', src, '-X', 'stream', '-c', 'fast', '--no-password', '--progress'],
      { env: { PGPASSFILE: this.cfg.postgresql.pgpass, PGAPPNAME: `pgkeel_clone_${this.cfg.name}`, PGCONNECT_TIMEOUT: '5' }, timeoutMs },
    );
    if (r.code !== 0) {
      const aside = this.moveAside('failed-clone');
      throw new PostgresError('PG_CLONE_FAILED', `pg_basebackup from ${from.host}:${from.port} failed${aside ? `; the partial copy was moved to ${aside}` : ''}`, tail(r));
    }
    this.ensureInclude();
  }

  /** pg_rewind against the new leader (PostgreSQL must be stopped cleanly first). */
  async rewind(from: { host: string; port: number }, timeoutMs: number): Promise<void> {
    const src = memberConninfo(this.cfg, 'superuser', from, this.tlsFiles().files, [['dbname', 'postgres'], ['connect_timeout', 5]]);
    const r = await run(this.bin('pg_rewind'), ['-D', this.dataDir, `--source-server=${src}`, '--progress'], {
      env: { PGPASSFILE: this.cfg.postgresql.pgpass },
      timeoutMs,
    });
    if (r.code !== 0) throw new PostgresError('PG_REWIND_FAILED', `pg_rewind from ${from.host}:${from.port} failed`, tail(r));
  }

  /**
   * Renames the data directory to "<data_dir>.<why>-<time>" and returns the new path (null if there was nothing,
   * or when keep_moved_aside is 0 and the directory was deleted instead). Older copies of the same kind beyond the
   * retention (postgresql.keep_moved_aside; one for failed attempts) are removed first, oldest first.
   */
  moveAside(why: AsideKind): string | null {
    if (!existsSync(this.dataDir)) return null;
    const keep = AT_MOST_ONE.has(why) ? Math.min(1, this.cfg.postgresql.keep_moved_aside) : this.cfg.postgresql.keep_moved_aside;
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

  /** The size of every database on another member (to size a clone), or null when it cannot be asked. */
  async remoteDatabaseBytes(from: { host: string; port: number }, timeoutMs = 5000): Promise<number | null> {
    const su = this.cfg.postgresql.authentication.superuser;
    const c = new pg.Client({ host: from.host, port: from.port, user: su.username, password: su.password, database: 'postgres', connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
    c.on('error', () => {});
    try {
      await c.connect();
      const r = await c.query('SELECT sum(pg_database_size(oid))::bigint::text AS bytes FROM pg_database');
      const n = Number((r.rows[0] as { bytes?: string } | undefined)?.bytes);
      return Number.isFinite(n) ? n : null;
    } catch {
      return null;
    } finally {
      await c.end().catch(() => {});
    }
  }
}
