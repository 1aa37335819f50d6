/**
 * Top statements from pg_stat_statements (opt-in): the rows behind GET /statements and postgres_exporter's
 * `stat_statements` collector series (pg_stat_statements_calls_total, _seconds_total, _rows_total,
 * _block_read_seconds_total, _block_write_seconds_total, labelled user, datname, queryid). The row is read as
 * to_jsonb(s), so the column renames of newer pg_stat_statements versions (blk_read_time → shared_blk_read_time in
 * 1.11) need no second query. Pure, except for the SQL text it exports.
 */
import type { Family } from './exposition.js';
import { num, type Row } from './collectors.js';
import { reason } from './errors.js';

/** GET /statements (the dashboard reads it: src/observe/dashboard/state.ts). */
export interface StatementsReport {
  enabled: boolean;
  error?: string;
  statements: Statement[];
}

export interface Statement {
  queryid: string;
  datname: string;
  query: string;
  calls: number;
  total_exec_time_ms: number;
  mean_exec_time_ms: number;
  rows: number;
}

/** What the probe in the metrics round says about the extension on this server. */
export interface PgssProbe {
  /** The view exists in the database the agent reads (`postgres`). */
  readonly installed: boolean;
  /** pg_stat_statements is in shared_preload_libraries (without it the view errors). */
  readonly preloaded: boolean;
  readonly inRecovery: boolean;
}

export const PGSS_PROBE_SQL = `json_build_object('installed', to_regclass('pg_stat_statements') IS NOT NULL,
  'preloaded', current_setting('shared_preload_libraries') ~ '(^|[\\s,])"?pg_stat_statements"?($|[\\s,])',
  'inRecovery', pg_is_in_recovery())`;

/** Leads every metrics statement, so pg_stat_statements' list can leave the agent's own metrics reads out. */
export const MARK = '/* pgkeel-metrics */ ';

/** $1: how many statements (top by total execution time); query text cut to 2000 characters. */
export const STATEMENTS_SQL = `${MARK}SELECT pg_get_userbyid(s.userid) AS "user", coalesce(d.datname, '') AS datname,
       s.queryid::text AS queryid, left(s.query, 2000) AS query, to_jsonb(s) - 'query' AS stats
  FROM pg_stat_statements(true) s LEFT JOIN pg_database d ON d.oid = s.dbid
 WHERE s.queryid IS NOT NULL AND s.query NOT LIKE '/* pgkeel-metrics */%'
 ORDER BY s.total_exec_time DESC LIMIT $1`;

export const CREATE_EXTENSION_SQL = 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements';

export const HOW_TO_ENABLE =
  'add pg_stat_statements to postgresql.parameters.shared_preload_libraries in the node config (a restart), then set metrics.stat_statements: true; the agent runs CREATE EXTENSION pg_stat_statements on the primary';

/** Why statements cannot be read (`CODE: message`), or undefined when they can. */
export function pgssProblem(enabled: boolean, probe: PgssProbe | undefined): string | undefined {
  if (!enabled) return reason('PG_METRICS_STATEMENTS_OFF', `metrics.stat_statements is off: ${HOW_TO_ENABLE}`);
  if (!probe) return undefined;
  if (!probe.preloaded)
    return reason('PG_METRICS_NO_PRELOAD', `pg_stat_statements is not in shared_preload_libraries: ${HOW_TO_ENABLE}`);
  if (!probe.installed)
    return reason(
      'PG_METRICS_NO_EXTENSION',
      probe.inRecovery
        ? 'the pg_stat_statements extension is not created yet: the primary creates it and it replicates here'
        : 'the pg_stat_statements extension is missing in database postgres: CREATE EXTENSION pg_stat_statements',
    );
  return undefined;
}

export interface StatementRow {
  readonly user: string;
  readonly datname: string;
  readonly queryid: string;
  readonly query: string;
  readonly calls: number;
  readonly totalMs: number;
  readonly meanMs: number;
  readonly rows: number;
  readonly blkReadMs: number;
  readonly blkWriteMs: number;
}

export function parseStatementRows(rows: readonly Row[]): StatementRow[] {
  return rows.map((r) => {
    const s = (r['stats'] ?? {}) as Row;
    const n = (...keys: string[]) => keys.map((k) => num(s[k])).find((v) => v !== null) ?? 0;
    return {
      user: String(r['user'] ?? 'unknown'),
      datname: String(r['datname'] ?? 'unknown'),
      queryid: String(r['queryid'] ?? 'unknown'),
      query: String(r['query'] ?? ''),
      calls: n('calls'),
      totalMs: n('total_exec_time', 'total_time'),
      meanMs: n('mean_exec_time', 'mean_time'),
      rows: n('rows'),
      blkReadMs: n('blk_read_time', 'shared_blk_read_time'),
      blkWriteMs: n('blk_write_time', 'shared_blk_write_time'),
    };
  });
}

export function statementsReport(rows: readonly StatementRow[]): Statement[] {
  return rows.map((r) => ({
    queryid: r.queryid,
    datname: r.datname,
    query: r.query,
    calls: r.calls,
    total_exec_time_ms: r.totalMs,
    mean_exec_time_ms: r.meanMs,
    rows: r.rows,
  }));
}

/** postgres_exporter's stat_statements families (without the opt-in query text mapping, as its default). */
export function statementFamilies(rows: readonly StatementRow[]): Family[] {
  const seen = new Set<string>();
  const unique = rows.filter((r) => {
    const key = `${r.user}|${r.datname}|${r.queryid}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const fam = (name: string, help: string, value: (r: StatementRow) => number): Family => ({
    name: `pg_stat_statements_${name}`,
    help,
    type: 'counter',
    samples: unique.map((r) => ({ labels: { user: r.user, datname: r.datname, queryid: r.queryid }, value: value(r) })),
  });
  return [
    fam('calls_total', 'Number of times executed', (r) => r.calls),
    fam('seconds_total', 'Total time spent in the statement, in seconds', (r) => r.totalMs / 1000),
    fam('rows_total', 'Total number of rows retrieved or affected by the statement', (r) => r.rows),
    fam(
      'block_read_seconds_total',
      'Total time the statement spent reading blocks, in seconds',
      (r) => r.blkReadMs / 1000,
    ),
    fam(
      'block_write_seconds_total',
      'Total time the statement spent writing blocks, in seconds',
      (r) => r.blkWriteMs / 1000,
    ),
  ];
}
