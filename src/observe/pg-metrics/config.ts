/** The node config's `metrics` section (docs/metrics.md): PostgreSQL metrics under postgres_exporter's names. */
import type { Schema } from '../../config/schema.js';

export interface MetricsConfig {
  postgres: boolean;
  cache_seconds: number;
  timeout_ms: number;
  stat_statements: boolean;
  stat_statements_limit: number;
}

export const metricsSchema: Schema = {
  kind: 'object',
  doc: "PostgreSQL metrics on the agent's /metrics, named as postgres_exporter names them (docs/metrics.md).",
  fields: {
    postgres: {
      kind: 'bool',
      doc: "Export pg_up and the pg_* series of postgres_exporter's default collectors on /metrics (the Patroni-named series are always there).",
      default: true,
    },
    cache_seconds: {
      kind: 'int',
      doc: 'How long one round of metrics queries is reused: however many scrapers ask, PostgreSQL is queried at most once per period.',
      default: 5,
      min: 1,
      max: 300,
      unit: 'seconds',
    },
    timeout_ms: {
      kind: 'int',
      doc: 'A scrape waits at most this long for PostgreSQL (then answers pg_up 0); also the connect timeout and statement_timeout of the metrics session.',
      default: 500,
      min: 50,
      max: 10000,
      unit: 'milliseconds',
    },
    stat_statements: {
      kind: 'bool',
      doc: "Top statements from pg_stat_statements on /metrics (postgres_exporter's stat_statements collector) and GET /statements. Needs pg_stat_statements in postgresql.parameters.shared_preload_libraries; the agent creates the extension on the primary.",
      default: false,
    },
    stat_statements_limit: {
      kind: 'int',
      doc: 'How many statements (the top by total execution time) are exported and listed by GET /statements.',
      default: 20,
      min: 1,
      max: 1000,
    },
  },
};
