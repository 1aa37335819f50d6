/**
 * The columns, states, lock modes and settings postgres_exporter reports, with its HELP texts verbatim (they are
 * part of what a dashboard user sees in Grafana's metric browser). Data only; collectors.ts maps rows with them.
 */
import type { MetricType } from './exposition.js';

export type Column = readonly [column: string, type: MetricType, help: string, name?: string];

export const STAT_DATABASE_COLS: readonly Column[] = [
  [
    'numbackends',
    'gauge',
    'Number of backends currently connected to this database. This is the only column in this view that returns a value reflecting current state; all other columns return the accumulated values since the last reset.',
  ],
  ['xact_commit', 'counter', 'Number of transactions in this database that have been committed'],
  ['xact_rollback', 'counter', 'Number of transactions in this database that have been rolled back'],
  ['blks_read', 'counter', 'Number of disk blocks read in this database'],
  [
    'blks_hit',
    'counter',
    "Number of times disk blocks were found already in the buffer cache, so that a read was not necessary (this only includes hits in the PostgreSQL buffer cache, not the operating system's file system cache)",
  ],
  ['tup_returned', 'counter', 'Number of rows returned by queries in this database'],
  ['tup_fetched', 'counter', 'Number of rows fetched by queries in this database'],
  ['tup_inserted', 'counter', 'Number of rows inserted by queries in this database'],
  ['tup_updated', 'counter', 'Number of rows updated by queries in this database'],
  ['tup_deleted', 'counter', 'Number of rows deleted by queries in this database'],
  [
    'conflicts',
    'counter',
    'Number of queries canceled due to conflicts with recovery in this database. (Conflicts occur only on standby servers; see pg_stat_database_conflicts for details.)',
  ],
  [
    'temp_files',
    'counter',
    'Number of temporary files created by queries in this database. All temporary files are counted, regardless of why the temporary file was created (e.g., sorting or hashing), and regardless of the log_temp_files setting.',
  ],
  [
    'temp_bytes',
    'counter',
    'Total amount of data written to temporary files by queries in this database. All temporary files are counted, regardless of why the temporary file was created, and regardless of the log_temp_files setting.',
  ],
  ['deadlocks', 'counter', 'Number of deadlocks detected in this database'],
  ['blk_read_time', 'counter', 'Time spent reading data file blocks by backends in this database, in milliseconds'],
  ['blk_write_time', 'counter', 'Time spent writing data file blocks by backends in this database, in milliseconds'],
  ['stats_reset', 'counter', 'Time at which these statistics were last reset'],
  [
    'active_time',
    'counter',
    'Time spent executing SQL statements in this database, in seconds',
    'active_time_seconds_total',
  ],
] as const;

export const CONFLICT_COLS = [
  ['confl_tablespace', 'dropped tablespaces'],
  ['confl_lock', 'lock timeouts'],
  ['confl_snapshot', 'old snapshots'],
  ['confl_bufferpin', 'pinned buffers'],
  ['confl_deadlock', 'deadlocks'],
] as const;

/** pg_stat_activity states postgres_exporter always reports (0 when no backend is in them). */
export const ACTIVITY_STATES = [
  'active',
  'idle',
  'idle in transaction',
  'idle in transaction (aborted)',
  'fastpath function call',
  'disabled',
];
export const LOCK_MODES = [
  'accesssharelock',
  'rowsharelock',
  'rowexclusivelock',
  'shareupdateexclusivelock',
  'sharelock',
  'sharerowexclusivelock',
  'exclusivelock',
  'accessexclusivelock',
  'sireadlock',
];

export const BGWRITER_COLS = [
  ['checkpoints_timed', 'Number of scheduled checkpoints that have been performed'],
  ['checkpoints_req', 'Number of requested checkpoints that have been performed'],
  [
    'checkpoint_write_time',
    'Total amount of time that has been spent in the portion of checkpoint processing where files are written to disk, in milliseconds',
  ],
  [
    'checkpoint_sync_time',
    'Total amount of time that has been spent in the portion of checkpoint processing where files are synchronized to disk, in milliseconds',
  ],
  ['buffers_checkpoint', 'Number of buffers written during checkpoints'],
  ['buffers_clean', 'Number of buffers written by the background writer'],
  [
    'maxwritten_clean',
    'Number of times the background writer stopped a cleaning scan because it had written too many buffers',
  ],
  ['buffers_backend', 'Number of buffers written directly by a backend'],
  [
    'buffers_backend_fsync',
    'Number of times a backend had to execute its own fsync call (normally the background writer handles those even when the backend does its own write)',
  ],
  ['buffers_alloc', 'Number of buffers allocated'],
  ['stats_reset', 'Time at which these statistics were last reset'],
] as const;

/** A few settings of the `settings` collector (pg_settings_<name>) that HA dashboards read; unitless integers. */
export const SETTINGS = [
  'max_connections',
  'superuser_reserved_connections',
  'max_wal_senders',
  'max_replication_slots',
  'max_locks_per_transaction',
  'max_prepared_transactions',
];
