/**
 * postgres_exporter's collectors, re-done as one SQL expression each (it yields a json value) and a pure mapping of
 * that value to metric families with the exporter's names, HELP texts, types and labels (read from
 * prometheus-community/postgres_exporter `collector/*.go` and its built-in queries, and checked against Debian's
 * prometheus-postgres-exporter 0.11 on PostgreSQL 15). All collectors run as one statement (round.ts), so one scrape
 * is one round trip. docs/metrics.md lists every series.
 */
import type { Family, Sample } from './exposition.js';
import {
  ACTIVITY_STATES,
  BGWRITER_COLS,
  type Column,
  CONFLICT_COLS,
  LOCK_MODES,
  SETTINGS,
  STAT_DATABASE_COLS,
} from './exporter-tables.js';

export type Row = Readonly<Record<string, unknown>>;

export interface Collector {
  /** postgres_exporter's collector name: the `collector` label of pg_scrape_collector_*. */
  readonly name: string;
  /** A scalar sub-select yielding json (a row object or an array of rows). */
  readonly sql: string;
  families(data: unknown): Family[];
}

export function num(v: unknown): number | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isNaN(n) ? null : n;
}

const str = (v: unknown): string => (v === null || v === undefined ? '' : String(v));
const rowsOf = (data: unknown): Row[] => (Array.isArray(data) ? (data as Row[]) : data ? [data as Row] : []);
const agg = (select: string) => `(SELECT coalesce(json_agg(t), '[]'::json) FROM (${select}) t)`;
const one = (select: string) => `(SELECT row_to_json(t) FROM (${select}) t)`;

/** One family per column: `prefix + column` (or the mapped name), labelled by `labels` columns of each row. */
function columns(
  prefix: string,
  rows: Row[],
  labels: readonly string[],
  cols: readonly Column[],
  scale: Readonly<Record<string, number>> = {},
): Family[] {
  return cols.map(([col, type, help, name]) => ({
    name: prefix + (name ?? col),
    help,
    type,
    samples: rows.map((r): Sample => {
      const v = num(r[col]);
      return {
        labels: Object.fromEntries(labels.map((l) => [l, str(r[l])])),
        value: v === null || scale[col] === undefined ? v : v * (scale[col] as number),
      };
    }),
  }));
}

/** The server's WAL position as postgres_exporter takes it: received on a standby, written on a primary. */
const CURRENT_LSN = 'CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END';
const values = (xs: readonly string[]) => xs.map((x) => `('${x}')`).join(', ');

export const COLLECTORS: readonly Collector[] = [
  {
    name: 'stat_database',
    sql: agg(
      `SELECT d.datid::text AS datid, coalesce(d.datname, '') AS datname, d.numbackends, d.xact_commit, d.xact_rollback,
              d.blks_read, d.blks_hit, d.tup_returned, d.tup_fetched, d.tup_inserted, d.tup_updated, d.tup_deleted,
              d.conflicts, d.temp_files, d.temp_bytes, d.deadlocks, d.blk_read_time, d.blk_write_time,
              extract(epoch FROM d.stats_reset) AS stats_reset, d.active_time,
              c.confl_tablespace, c.confl_lock, c.confl_snapshot, c.confl_bufferpin, c.confl_deadlock
         FROM pg_stat_database d LEFT JOIN pg_stat_database_conflicts c ON c.datid = d.datid`,
    ),
    families(data) {
      const rows = rowsOf(data);
      const conflicts = rows.filter((r) => r['datname'] !== '');
      return [
        ...columns('pg_stat_database_', rows, ['datid', 'datname'], STAT_DATABASE_COLS, { active_time: 0.001 }),
        ...columns(
          'pg_stat_database_conflicts_',
          conflicts,
          ['datid', 'datname'],
          CONFLICT_COLS.map(
            ([c, why]) =>
              [c, 'counter', `Number of queries in this database that have been canceled due to ${why}`] as const,
          ),
        ),
      ];
    },
  },
  {
    name: 'stat_activity',
    sql: agg(
      `SELECT d.datname, s.state, coalesce(a.count, 0) AS count, coalesce(a.max_tx_duration, 0) AS max_tx_duration
         FROM pg_database d CROSS JOIN (VALUES ${values(ACTIVITY_STATES)}) AS s(state)
         LEFT JOIN (SELECT datname, state, count(*) AS count,
                           max(extract(epoch FROM now() - xact_start))::float8 AS max_tx_duration
                      FROM pg_stat_activity WHERE pid <> pg_backend_pid() GROUP BY datname, state) a
           ON a.datname = d.datname AND a.state = s.state
        ORDER BY 1, 2`,
    ),
    families: (data) =>
      columns(
        'pg_stat_activity_',
        rowsOf(data),
        ['datname', 'state'],
        [
          ['count', 'gauge', 'number of connections in this state'],
          ['max_tx_duration', 'gauge', 'max duration in seconds any active transaction has been running'],
        ],
      ),
  },
  {
    name: 'replication',
    sql: one(
      `SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0
                   WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                   ELSE greatest(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp())) END AS lag_seconds,
              CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END AS is_replica,
              greatest(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp())) AS last_replay_seconds`,
    ),
    families: (data) => {
      const rows = rowsOf(data);
      const fams = columns(
        'pg_replication_',
        rows,
        [],
        [
          ['lag_seconds', 'gauge', 'Replication lag behind master in seconds'],
          ['is_replica', 'gauge', 'Indicates if the server is a replica'],
          ['last_replay_seconds', 'gauge', 'Age of last replay in seconds'],
        ],
      );
      // The exporter reports the replay age only when PostgreSQL has one (never replayed: no sample).
      return fams.map((f) =>
        f.name.endsWith('last_replay_seconds') ? { ...f, samples: f.samples.filter((s) => s.value !== null) } : f,
      );
    },
  },
  {
    name: 'stat_replication',
    sql: agg(
      `SELECT r.pid::text AS pid, coalesce(r.application_name, '') AS application_name,
              coalesce(host(r.client_addr), '') AS client_addr, coalesce(r.state, '') AS state,
              coalesce(s.slot_name::text, '') AS slot_name,
              pg_wal_lsn_diff(${CURRENT_LSN}, '0/0')::float8 AS pg_current_wal_lsn_bytes,
              pg_wal_lsn_diff(${CURRENT_LSN}, r.replay_lsn)::float8 AS pg_wal_lsn_diff
         FROM pg_stat_replication r LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid`,
    ),
    families: (data) =>
      columns(
        'pg_stat_replication_',
        rowsOf(data),
        ['application_name', 'client_addr', 'state', 'slot_name', 'pid'],
        [
          ['pg_current_wal_lsn_bytes', 'gauge', 'WAL position in bytes'],
          ['pg_wal_lsn_diff', 'gauge', 'Lag in bytes between master and slave'],
        ],
      ),
  },
  {
    name: 'replication_slots',
    sql: agg(
      `SELECT slot_name::text AS slot_name, coalesce(slot_type, 'unknown') AS slot_type,
              coalesce(database::text, '') AS database, active, wal_status, safe_wal_size,
              pg_wal_lsn_diff(${CURRENT_LSN}, '0/0')::float8 AS current_wal_lsn,
              pg_wal_lsn_diff(coalesce(confirmed_flush_lsn, '0/0'), '0/0')::float8 AS confirmed_flush_lsn,
              pg_wal_lsn_diff(${CURRENT_LSN}, restart_lsn)::float8 AS pg_wal_lsn_diff
         FROM pg_replication_slots`,
    ),
    families(data) {
      const rows = rowsOf(data);
      const byName = columns(
        'pg_replication_slots_',
        rows,
        ['slot_name', 'database'],
        [
          ['active', 'gauge', 'Flag indicating if the slot is active'],
          ['pg_wal_lsn_diff', 'gauge', 'Replication lag in bytes'],
        ],
      );
      const slot = columns(
        'pg_replication_slot_',
        rows,
        ['slot_name', 'slot_type'],
        [
          ['current_wal_lsn', 'gauge', 'current wal lsn value', 'slot_current_wal_lsn'],
          [
            'confirmed_flush_lsn',
            'gauge',
            'last lsn confirmed flushed to the replication slot',
            'slot_confirmed_flush_lsn',
          ],
          ['active', 'gauge', 'whether the replication slot is active or not', 'slot_is_active'],
          [
            'safe_wal_size',
            'gauge',
            'number of bytes that can be written to WAL such that this slot is not in danger of getting in state lost',
            'safe_wal_size_bytes',
          ],
        ],
      ).map((f) => ({ ...f, samples: f.samples.filter((s) => s.value !== null) }));
      const status: Family = {
        name: 'pg_replication_slot_wal_status',
        help: 'availability of WAL files claimed by this slot',
        type: 'gauge',
        samples: rows
          .filter((r) => r['wal_status'] !== null && r['wal_status'] !== undefined)
          .map((r) => ({
            labels: {
              slot_name: str(r['slot_name']),
              slot_type: str(r['slot_type']),
              wal_status: str(r['wal_status']),
            },
            value: 1,
          })),
      };
      return [...byName, ...slot, status];
    },
  },
  {
    name: 'stat_archiver',
    sql: one(
      `SELECT archived_count, failed_count, extract(epoch FROM now() - last_archived_time) AS last_archive_age
         FROM pg_stat_archiver`,
    ),
    families: (data) =>
      columns(
        'pg_stat_archiver_',
        rowsOf(data),
        [],
        [
          ['archived_count', 'counter', 'Number of WAL files that have been successfully archived'],
          ['failed_count', 'counter', 'Number of failed attempts for archiving WAL files'],
          ['last_archive_age', 'gauge', 'Time in seconds since last WAL segment was successfully archived'],
        ],
      ),
  },
  {
    name: 'stat_bgwriter',
    sql: one(
      `SELECT ${BGWRITER_COLS.filter(([c]) => c !== 'stats_reset')
        .map(([c]) => c)
        .join(', ')}, extract(epoch FROM stats_reset) AS stats_reset FROM pg_stat_bgwriter`,
    ),
    families: (data) =>
      columns(
        'pg_stat_bgwriter_',
        rowsOf(data),
        [],
        BGWRITER_COLS.map(([c, help]) => [c, 'counter', help, `${c}_total`] as const),
      ),
  },
  {
    name: 'database',
    sql: agg(
      `SELECT datname, pg_database_size(oid) AS size_bytes, datconnlimit AS connection_limit
         FROM pg_database WHERE datallowconn OR datname = 'template0' ORDER BY datname`,
    ),
    families: (data) =>
      columns(
        'pg_database_',
        rowsOf(data),
        ['datname'],
        [
          ['size_bytes', 'gauge', 'Disk space used by the database'],
          ['connection_limit', 'gauge', 'Connection limit set for the database'],
        ],
      ),
  },
  {
    name: 'locks',
    sql: agg(
      `SELECT d.datname, m.mode, coalesce(l.count, 0) AS count
         FROM (VALUES ${values(LOCK_MODES)}) AS m(mode) CROSS JOIN pg_database d
         LEFT JOIN (SELECT database, lower(mode) AS mode, count(*) AS count FROM pg_locks
                     WHERE database IS NOT NULL GROUP BY database, lower(mode)) l
           ON l.mode = m.mode AND l.database = d.oid
        ORDER BY 1, 2`,
    ),
    families: (data) =>
      columns('pg_locks_', rowsOf(data), ['datname', 'mode'], [['count', 'gauge', 'Number of locks']]),
  },
  {
    name: 'wal',
    sql: one(
      `SELECT count(*) AS segments, coalesce(sum(size), 0) AS size FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'`,
    ),
    families: (data) =>
      columns(
        'pg_wal_',
        rowsOf(data),
        [],
        [
          ['segments', 'gauge', 'Number of WAL segments'],
          ['size', 'gauge', 'Total size of WAL segments', 'size_bytes'],
        ],
      ),
  },
  {
    name: 'postmaster',
    sql: one(
      `SELECT extract(epoch FROM pg_postmaster_start_time()) AS start_time_seconds,
              current_setting('server_version') AS short_version, version() AS version`,
    ),
    families(data) {
      const r = rowsOf(data)[0];
      const short = /^(\d+)(?:\.(\d+))?/.exec(str(r?.['short_version']));
      return [
        ...columns(
          'pg_postmaster_',
          rowsOf(data),
          [],
          [['start_time_seconds', 'gauge', 'Time at which postmaster started']],
        ),
        {
          name: 'pg_static',
          help: 'Version string as reported by postgres',
          type: 'untyped',
          samples: r
            ? [
                {
                  labels: { short_version: short ? `${short[1]}.${short[2] ?? 0}.0` : '', version: str(r['version']) },
                  value: 1,
                },
              ]
            : [],
        },
      ];
    },
  },
  {
    name: 'settings',
    sql: agg(
      `SELECT name, setting::float8 AS setting FROM pg_settings
        WHERE name IN (${SETTINGS.map((s) => `'${s}'`).join(', ')}) ORDER BY name`,
    ),
    families: (data) =>
      rowsOf(data).map((r) => ({
        name: `pg_settings_${str(r['name'])}`,
        help: `Server Parameter: ${str(r['name'])}`,
        type: 'gauge',
        samples: [{ labels: {}, value: num(r['setting']) }],
      })),
  },
];
