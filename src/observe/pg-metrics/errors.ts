/**
 * The PostgreSQL metrics' error catalogue: the reasons GET /statements gives (`error`, prefixed with the code) and
 * the agent logs (`code` field). docs/errors.md lists them (config/errors-doc.ts).
 */
export const pgMetricsErrorCatalogue = {
  PG_METRICS_UNREACHABLE: {
    where: 'agent /metrics',
    summary:
      'The metrics session could not connect to or query the local PostgreSQL (stopped, refused, connection lost); /metrics says `pg_up 0` with the Patroni-named series, /statements says so, the agent logs it once per change, and the next cache period tries again with a new session.',
  },
  PG_METRICS_TIMEOUT: {
    where: 'agent /metrics',
    summary:
      'PostgreSQL did not answer the metrics round within metrics.timeout_ms (hung or overloaded): the scrape answers `pg_up 0` at once; the round ends on its own timeouts and its session is discarded.',
  },
  PG_METRICS_STATEMENTS_OFF: {
    where: 'agent /statements',
    summary: 'GET /statements while metrics.stat_statements is off (or metrics.postgres is off): `enabled: false`.',
  },
  PG_METRICS_NO_PRELOAD: {
    where: 'agent /statements',
    summary:
      'metrics.stat_statements is on but pg_stat_statements is not in shared_preload_libraries: add it to postgresql.parameters and restart the member (docs/metrics.md).',
  },
  PG_METRICS_NO_EXTENSION: {
    where: 'agent /statements',
    summary:
      'The library is loaded but the pg_stat_statements extension is missing in database postgres: the primary creates it (once) and it replicates; a replica reports this until then.',
  },
  PG_METRICS_STATEMENTS_FAILED: {
    where: 'agent /statements',
    summary:
      'Reading pg_stat_statements (or creating the extension) failed with an SQL error, given in the message; the other metrics are not affected.',
  },
} as const;

export type PgMetricsErrorCode = keyof typeof pgMetricsErrorCatalogue;

/** The text of a reason: `CODE: message`. */
export const reason = (code: PgMetricsErrorCode, message: string): string => `${code}: ${message}`;
