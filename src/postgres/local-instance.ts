/**
 * The LocalInstance port: everything the HA agent (src/ha/*) asks of the PostgreSQL it manages on its own node —
 * files in the data directory, pg_ctl, initdb/pg_basebackup/pg_rewind, and the SQL it runs. No SQL and no pg client
 * live under src/ha; they are behind these methods.
 *
 * Two implementations pass one contract suite (`local-instance.contract.ts`): `PostgresInstance` (the real one,
 * run against PostgreSQL 15 in test/integration/local-instance.test.ts) and `FakeInstance` (in process, for unit
 * tests of the executor).
 *
 * Contract, for every implementation:
 * - The data directory is 'empty' until `initdb` or a successful `clone` makes it 'ready' (PG_VERSION and
 *   global/pg_control exist); `moveAside` makes it 'empty' again. `controlData()` is null while it is 'empty'.
 * - `writeConfig` needs a 'ready' data directory. It writes pgkeel's managed settings, pg_hba.conf and, for a
 *   replica, standby.signal (removed for a primary); it returns `changed: true` exactly when what PostgreSQL reads
 *   on reload differs from before (a second identical call returns false). standby.signal alone is not a change.
 * - `start` returns once PostgreSQL accepts connections, and does nothing when it runs already; a directory with
 *   standby.signal starts in recovery. `stop` does nothing when PostgreSQL is down. After a `fast` stop the control
 *   data says 'shut down' ('shut down in recovery' for a standby); after `immediate` it does not.
 * - SQL-backed methods (`status`, `checkpoint`, `latestTimelineSwitch`, `transactionsInFlight`,
 *   `ensureReplicationRole`, the slot methods) reject while PostgreSQL is down; they never hang past their timeout.
 * - `promote` ends recovery on a standby: the instance leaves recovery on timeline + 1 and `latestTimelineSwitch()`
 *   names the timeline it left; on a primary it rejects with PG_PROMOTE_FAILED. On timeline 1 (no switch yet)
 *   `latestTimelineSwitch()` resolves null.
 * - `createSlot` and `dropSlot` are idempotent; a created physical slot reserves WAL at once (a restart LSN).
 * - Failures of the programs reject with a `PostgresError` whose code names them (PG_INITDB_FAILED,
 *   PG_START_FAILED, PG_STOP_FAILED, PG_CLONE_FAILED, PG_REWIND_FAILED, PG_PROMOTE_FAILED, PG_COMMAND_FAILED). A failed
 *   clone leaves the data directory 'empty' (the partial copy is moved aside, never deleted); a failed rewind
 *   leaves it as it was.
 * - `remoteDatabaseBytes` never rejects: null when the other member cannot be asked.
 * - `restoreFrom` (bootstrap from a backup) needs an 'empty' data directory: a 'ready' one is refused with
 *   PG_RESTORE_FAILED and left alone. It restores a backup of `src.repo` with its archived WAL, recovers to the target
 *   and promotes (timeline + 1), archiving off throughout (nothing is written to `src.repo`); it writes the managed
 *   configuration as a primary, gives the configured superuser its configured password, and leaves PostgreSQL
 *   stopped ('shut down', no recovery settings left) with the backup's system identifier. Any other failure rejects
 *   with PG_RESTORE_FAILED, PostgreSQL stopped and the partial data directory left for the caller to move aside.
 * - `cloneFromBackup` (a replica from the newest backup) fills an 'empty' data directory from the newest usable
 *   backup of `src.repo` as a standby (standby.signal; restore_command reads the archive, archive_mode untouched) and
 *   leaves PostgreSQL stopped, as `clone` does; it fails like `clone` (PG_CLONE_FAILED, the data directory 'empty').
 */
import type { RecoveryTarget } from '../backup/recovery.js';
import type { AsideKind } from './aside.js';
import type { ConfInput } from './conf.js';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export type DataDirState = 'empty' | 'ready';

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

/** The last line of the current timeline's history file: the switch that started it. */
export interface TimelineSwitch {
  /** The timeline that was left. */
  readonly timeline: number;
  /** Where it was left (0 when the file's LSN cannot be read). */
  readonly lsn: number;
  readonly reason: string;
}

/** A backup to bootstrap from (bootstrap.restore): another cluster's repository, a backup (default: chosen), a target. */
export interface RestoreSource {
  readonly repo: string;
  readonly keyFile?: string;
  readonly backupId?: string;
  readonly target: RecoveryTarget;
}

export interface LocalInstance {
  /** PostgreSQL's log file; the loop reads its tail (bounded) to explain a broken stream. */
  readonly logFile: string;

  // Files
  dataDirState(): DataDirState;
  isRunning(): boolean;
  hasStandbySignal(): boolean;
  removeStandbySignal(): void;
  controlData(): Promise<ControlData | null>;
  /** The libpq password file pg_basebackup, pg_rewind and the WAL receiver use. */
  writePgpass(): void;
  writeConfig(inp: ConfInput, role: 'primary' | 'replica'): { changed: boolean };
  /**
   * Moves the data directory to "<data_dir>.<why>-<time>" and returns that path (null when there was nothing, or
   * when postgresql.keep_moved_aside is 0 and it was deleted instead).
   */
  moveAside(why: AsideKind): string | null;

  // Lifecycle
  initdb(): Promise<void>;
  start(timeoutMs: number): Promise<void>;
  stop(mode: 'fast' | 'immediate', timeoutMs: number): Promise<void>;
  reload(): Promise<void>;
  promote(timeoutMs: number): Promise<void>;
  /** pg_basebackup from another member into this (emptied) data directory; PostgreSQL is left stopped. */
  clone(from: HostPort, timeoutMs: number): Promise<void>;
  /** A replica from the newest backup of a repository (see the contract); PostgreSQL is left stopped. */
  cloneFromBackup(src: Pick<RestoreSource, 'repo' | 'keyFile'>, timeoutMs: number): Promise<void>;
  /** Fills the empty data directory from a backup and recovers it to a promoted, stopped primary (see the contract). */
  restoreFrom(src: RestoreSource, conf: ConfInput, timeoutMs: number): Promise<void>;
  /** pg_rewind from another member; PostgreSQL must be stopped. */
  rewind(from: HostPort, timeoutMs: number): Promise<void>;
  /** Closes the agent's SQL connection (before a stop, at shutdown). */
  disconnect(): Promise<void>;

  // SQL
  /** The state the HA loop needs each cycle. */
  status(timeoutMs?: number): Promise<PgStatus>;
  checkpoint(timeoutMs: number): Promise<void>;
  /**
   * Closes the current WAL segment (pg_switch_wal) so it is archived now (a backup's last segment); with a name,
   * first writes a restore point of that name, so the segment is never empty.
   */
  switchWal(timeoutMs: number, restorePoint?: string): Promise<void>;
  /** The switch that started the current timeline (after a promotion); null on a timeline without history. */
  latestTimelineSwitch(): Promise<TimelineSwitch | null>;
  /** Client transactions in flight (not idle, not the agent's own session), for the drain before a planned stop. */
  transactionsInFlight(timeoutMs: number): Promise<number>;
  /** Creates or updates the replication role (on the primary, after bootstrap and every promotion). */
  ensureReplicationRole(): Promise<void>;
  /** Physical replication slots and their restart LSNs. */
  slots(): Promise<Map<string, number | null>>;
  /** Inactive physical slots PostgreSQL invalidated at max_slot_wal_keep_size. */
  lostSlots(): Promise<Set<string>>;
  createSlot(name: string): Promise<void>;
  dropSlot(name: string): Promise<void>;
  /** The size of every database on another member (to size a clone); null when it cannot be asked. */
  remoteDatabaseBytes(from: HostPort, timeoutMs?: number): Promise<number | null>;
}

export type PostgresErrorCode =
  | 'PG_INITDB_FAILED'
  | 'PG_START_FAILED'
  | 'PG_STOP_FAILED'
  | 'PG_CLONE_FAILED'
  | 'PG_RESTORE_FAILED'
  | 'PG_REWIND_FAILED'
  | 'PG_PROMOTE_FAILED'
  | 'PG_COMMAND_FAILED';

export class PostgresError extends Error {
  constructor(
    readonly code: PostgresErrorCode,
    message: string,
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'PostgresError';
  }
}

/**
 * A receiver silent for longer than wal_receiver_timeout should have given up and reconnected; if it still says
 * "streaming" its connection is stuck and its LSNs are stale. (0 disables the timeout, as in PostgreSQL.)
 */
export function receiverStalled(silentMs: number | null, timeoutMs: number): boolean {
  return silentMs !== null && timeoutMs > 0 && silentMs > timeoutMs;
}
