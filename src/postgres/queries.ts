/**
 * The SQL side of the local instance: the agent's one superuser connection over the unix socket, and every
 * statement the HA loop runs (status, timeline history, the drain count, the replication role, slots). A failed
 * statement without a SQLSTATE (a broken connection) drops the connection; the next call opens a new one.
 */
import pg from 'pg';
import type { NodeConfig } from '../config/node.js';
import { parseLsn } from './lsn.js';
import {
  receiverStalled,
  type HostPort,
  type PgStatus,
  type ReplicationRow,
  type TimelineSwitch,
} from './local-instance.js';

export class InstanceSql {
  private client: pg.Client | null = null;

  constructor(
    private readonly cfg: NodeConfig,
    private readonly socketDir: string,
    private readonly port: number,
  ) {}

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
    let tli = inRecovery
      ? ((r['wr_tli'] as number | null) ?? (r['ckpt_tli'] as number | null))
      : (r['wal_tli'] as number | null);
    // Without a WAL receiver the only SQL-visible timeline is the last restartpoint's, stale after a timeline switch;
    // a false "diverged" verdict would rewind a healthy replica. IDENTIFY_SYSTEM reports the replay timeline.
    if (inRecovery && r['wr_status'] !== 'streaming')
      tli = (await this.replayTimeline(timeoutMs).catch(() => null)) ?? tli;
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
    const c = new pg.Client({
      host: this.socketDir,
      port: this.port,
      user: su.username,
      password: su.password,
      database: 'postgres',
      replication: 'database',
      connectionTimeoutMillis: timeoutMs,
      query_timeout: timeoutMs,
    } as pg.ClientConfig);
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
    await this.query(
      exists.length
        ? `ALTER ROLE ${ident} WITH REPLICATION LOGIN PASSWORD ${pw}`
        : `CREATE ROLE ${ident} WITH REPLICATION LOGIN PASSWORD ${pw}`,
    );
  }

  /** Physical replication slots on this (primary) instance. */
  async slots(): Promise<Map<string, number | null>> {
    const rows = await this.query<{ slot_name: string; restart_lsn: string | null }>(
      `SELECT slot_name, restart_lsn::text FROM pg_replication_slots WHERE slot_type = 'physical'`,
    );
    return new Map(rows.map((r) => [r.slot_name, parseLsn(r.restart_lsn)]));
  }

  /** Inactive physical slots PostgreSQL invalidated at max_slot_wal_keep_size (wal_status 'lost'). */
  async lostSlots(): Promise<Set<string>> {
    const rows = await this.query<{ slot_name: string }>(
      `SELECT slot_name FROM pg_replication_slots WHERE slot_type = 'physical' AND wal_status = 'lost' AND NOT active`,
    );
    return new Set(rows.map((r) => r.slot_name));
  }

  async createSlot(name: string): Promise<void> {
    await this.query(
      `SELECT pg_create_physical_replication_slot($1, true) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`,
      [name],
    );
  }

  async dropSlot(name: string): Promise<void> {
    await this.query(
      `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`,
      [name],
    );
  }

  async checkpoint(timeoutMs: number): Promise<void> {
    await this.query('CHECKPOINT', [], timeoutMs);
  }

  async switchWal(timeoutMs: number, restorePoint?: string): Promise<void> {
    if (restorePoint) await this.query('SELECT pg_create_restore_point($1)', [restorePoint], timeoutMs);
    await this.query('SELECT pg_switch_wal()', [], timeoutMs);
  }

  /**
   * The current timeline from the WAL file name (a primary), then the last line of its history file. Rejects when the
   * timeline cannot be read; null when the history file is missing or has no switch line.
   */
  async latestTimelineSwitch(): Promise<TimelineSwitch | null> {
    const rows = await this.query<{ tli: number }>(
      `SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS tli`,
    );
    const tli = rows[0]?.tli ?? 0;
    const file = `pg_wal/${tli.toString(16).toUpperCase().padStart(8, '0')}.history`;
    const text = (await this.query<{ t: string }>(`SELECT pg_read_file($1) AS t`, [file]).catch(() => []))[0]?.t ?? '';
    const last = text
      .trim()
      .split('\n')
      .filter((l) => /^\d+\t/.test(l))
      .pop();
    if (!last) return null;
    const [prevTli, lsnText, reason] = last.split('\t');
    return { timeline: Number(prevTli), lsn: parseLsn(lsnText ?? '') ?? 0, reason: reason ?? '' };
  }

  async transactionsInFlight(timeoutMs: number): Promise<number> {
    const rows = await this.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND xact_start IS NOT NULL AND state <> 'idle'`,
      [],
      timeoutMs,
    );
    return rows[0]?.n ?? 0;
  }

  /** The size of every database on another member (to size a clone), or null when it cannot be asked. */
  async remoteDatabaseBytes(from: HostPort, timeoutMs = 5000): Promise<number | null> {
    const su = this.cfg.postgresql.authentication.superuser;
    const c = new pg.Client({
      host: from.host,
      port: from.port,
      user: su.username,
      password: su.password,
      database: 'postgres',
      connectionTimeoutMillis: timeoutMs,
      query_timeout: timeoutMs,
    });
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
