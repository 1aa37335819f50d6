/**
 * One metrics round as data: the single statement that runs every collector (with clock_timestamp() marks between
 * them, so each collector's own duration is known from one round trip), what a round produced, and its rendering
 * to exposition text with the exporter's own series (pg_up, pg_scrape_collector_*, pg_exporter_*). Pure.
 */
import { type Collector, COLLECTORS } from './collectors.js';
import { type Family, type Labels, renderFamilies } from './exposition.js';
import { MARK, PGSS_PROBE_SQL, type PgssProbe, type StatementRow, statementFamilies } from './statements.js';

export interface CollectorOutcome {
  readonly name: string;
  readonly ok: boolean;
  readonly seconds: number;
  readonly families: readonly Family[];
  readonly error?: string;
}

export interface RoundResult {
  /** PostgreSQL answered (a connection and at least one statement). */
  readonly up: boolean;
  readonly error?: string;
  readonly seconds: number;
  readonly collectors: readonly CollectorOutcome[];
  readonly probe?: PgssProbe;
  /** Top statements when opted in and readable; otherwise why not (`statementsError`). */
  readonly statements?: readonly StatementRow[];
  readonly statementsError?: string;
}

const mark = (i: number) => `'_t${i}', extract(epoch FROM clock_timestamp())::float8`;

/** The one statement of a round: `SELECT json_build_object(...) AS m` with one key per collector. */
export function combinedSql(collectors: readonly Collector[] = COLLECTORS, probe = false): string {
  const parts = [mark(0), ...collectors.flatMap((c, i) => [`'${c.name}', ${c.sql}`, mark(i + 1)])];
  if (probe) parts.push(`'_pgss', ${PGSS_PROBE_SQL}`);
  return `${MARK}SELECT json_build_object(\n${parts.join(',\n')}) AS m`;
}

/** One collector alone (the fallback when the combined statement failed with an SQL error). */
export function singleSql(c: Collector): string {
  return `${MARK}SELECT ${c.sql} AS m`;
}

export function outcome(c: Collector, data: unknown, seconds: number): CollectorOutcome {
  try {
    return { name: c.name, ok: true, seconds, families: c.families(data) };
  } catch (err) {
    return { name: c.name, ok: false, seconds, families: [], error: (err as Error).message };
  }
}

/** Splits the combined statement's json into each collector's outcome, timed by the marks around it. */
export function parseCombined(
  m: Record<string, unknown>,
  collectors: readonly Collector[] = COLLECTORS,
): { collectors: CollectorOutcome[]; probe?: PgssProbe } {
  const t = (i: number) => Number(m[`_t${i}`] ?? 0);
  const out = collectors.map((c, i) => outcome(c, m[c.name], Math.max(0, t(i + 1) - t(i))));
  const probe = m['_pgss'] as PgssProbe | undefined;
  return probe ? { collectors: out, probe } : { collectors: out };
}

function gauge(name: string, help: string, value: number, labels: Labels = {}): Family {
  return { name, help, type: 'gauge', samples: [{ labels, value }] };
}

export interface Counters {
  /** Rounds run against PostgreSQL since the agent started (pg_exporter_scrapes_total). */
  readonly rounds: number;
  /** SQL statements sent by those rounds (pgkeel_pg_metrics_queries_total). */
  readonly queries: number;
}

/** The exposition of a round (or of none yet / a round that did not finish in time: `r` undefined → pg_up 0). */
export function renderRound(r: RoundResult | undefined, counters: Counters, constant: Labels): string {
  const fams: Family[] = [
    gauge(
      'pg_up',
      'Whether the last scrape of metrics from PostgreSQL was able to connect to the server (1 for yes, 0 for no).',
      r?.up ? 1 : 0,
    ),
  ];
  const cs = r?.up ? r.collectors : [];
  for (const c of cs) fams.push(...c.families);
  if (r?.statements) fams.push(...statementFamilies(r.statements));
  fams.push(
    {
      name: 'pg_scrape_collector_duration_seconds',
      help: 'postgres_exporter: Duration of a collector scrape.',
      type: 'gauge',
      samples: cs.map((c) => ({ labels: { collector: c.name }, value: c.seconds })),
    },
    {
      name: 'pg_scrape_collector_success',
      help: 'postgres_exporter: Whether a collector succeeded.',
      type: 'gauge',
      samples: cs.map((c) => ({ labels: { collector: c.name }, value: c.ok ? 1 : 0 })),
    },
    gauge(
      'pg_exporter_last_scrape_duration_seconds',
      'Duration of the last scrape of metrics from PostgreSQL.',
      r?.seconds ?? 0,
    ),
    gauge(
      'pg_exporter_last_scrape_error',
      'Whether the last scrape of metrics from PostgreSQL resulted in an error (1 for error, 0 for success).',
      r?.up && r.collectors.every((c) => c.ok) ? 0 : 1,
    ),
    {
      name: 'pg_exporter_scrapes_total',
      help: 'Total number of times PostgreSQL was scraped for metrics.',
      type: 'counter',
      samples: [{ labels: {}, value: counters.rounds }],
    },
    {
      name: 'pgkeel_pg_metrics_queries_total',
      help: 'SQL statements the agent sent to PostgreSQL for metrics (one or two per round; cached between rounds).',
      type: 'counter',
      samples: [{ labels: {}, value: counters.queries }],
    },
  );
  return renderFamilies(fams, constant);
}
