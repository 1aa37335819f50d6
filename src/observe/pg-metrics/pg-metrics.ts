/**
 * PostgreSQL metrics for the agent's /metrics and GET /statements: its own superuser session over the unix socket
 * (never the HA loop's), one round of one statement (two with pg_stat_statements) per cache period however many
 * scrapers ask (SingleFlight), and a hard bound on how long a scrape waits for it: a stopped, hung or slow
 * PostgreSQL gives `pg_up 0` within `metrics.timeout_ms` while the round finishes or times out on its own.
 *
 * Invariants: a round never rejects (its failure is a RoundResult with up=false); a session that failed without an
 * SQLSTATE (connection lost, client-side timeout) is destroyed, not reused; at most one round runs at a time.
 */
import pg from 'pg';
import type { NodeConfig } from '../../config/node.js';
import type { Logger } from '../../lib/log.js';
import { parseListen } from '../../lib/net.js';
import { SingleFlight, within } from './cache.js';
import { COLLECTORS } from './collectors.js';
import { reason } from './errors.js';
import type { Labels } from './exposition.js';
import {
  type CollectorOutcome,
  combinedSql,
  outcome,
  parseCombined,
  renderRound,
  type RoundResult,
  singleSql,
} from './round.js';
import {
  CREATE_EXTENSION_SQL,
  parseStatementRows,
  pgssProblem,
  type PgssProbe,
  STATEMENTS_SQL,
  type StatementRow,
  type StatementsReport,
  statementsReport,
} from './statements.js';

export type MetricsSettings = NodeConfig['metrics'];

/** One SQL session: rows of a statement; `close` drops it at once (no goodbye to a server that may be hung). */
export interface SqlSession {
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  close(): void;
}
export type Connect = (timeoutMs: number) => Promise<SqlSession>;

const sqlState = (err: unknown): string | undefined => {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
};
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** The node's PostgreSQL as the superuser over its unix socket, with connect, statement and client-side timeouts. */
export function socketConnect(cfg: NodeConfig): Connect {
  const su = cfg.postgresql.authentication.superuser;
  const { port } = parseListen(cfg.postgresql.listen);
  return async (timeoutMs) => {
    const c = new pg.Client({
      host: cfg.postgresql.socket_dir,
      port,
      user: su.username,
      password: su.password,
      database: 'postgres',
      application_name: 'pgkeel-metrics',
      connectionTimeoutMillis: timeoutMs,
      statement_timeout: timeoutMs,
      query_timeout: timeoutMs,
      lock_timeout: timeoutMs,
    });
    c.on('error', () => {});
    const close = () => {
      c.connection.stream.destroy();
      c.end().catch(() => {});
    };
    try {
      await c.connect();
    } catch (err) {
      close();
      throw err;
    }
    return { query: async (sql, params) => (await c.query(sql, params)).rows, close };
  };
}

export class PgMetrics {
  private readonly cache: SingleFlight<RoundResult>;
  private session: SqlSession | null = null;
  private rounds = 0;
  private queries = 0;
  private createTried = false;
  private wasUp: boolean | null = null;
  /** A scrape timed out since the last good round (logged once). */
  private timeoutLogged = false;

  constructor(
    private readonly s: MetricsSettings,
    private readonly connect: Connect,
    private readonly labels: Labels,
    private readonly now: () => number,
    private readonly log?: Logger,
  ) {
    this.cache = new SingleFlight(() => this.round(), s.cache_seconds * 1000, now);
  }

  /** The pg_* exposition ('' when metrics.postgres is off), within metrics.timeout_ms. */
  async exposition(): Promise<string> {
    if (!this.s.postgres) return '';
    const r = await this.latest();
    return renderRound(r, { rounds: this.rounds, queries: this.queries }, this.labels);
  }

  /** GET /statements: the top statements of the cached round. */
  async statements(): Promise<StatementsReport> {
    const off = pgssProblem(this.s.postgres && this.s.stat_statements, undefined);
    if (off || !this.s.postgres)
      return {
        enabled: false,
        error: this.s.postgres ? off : reason('PG_METRICS_STATEMENTS_OFF', 'metrics.postgres is off'),
        statements: [],
      };
    const r = await this.latest();
    if (!r) return { enabled: true, error: this.timeoutReason(), statements: [] };
    if (!r.up) return { enabled: true, error: reason('PG_METRICS_UNREACHABLE', r.error ?? 'unknown'), statements: [] };
    const missing = pgssProblem(true, r.probe);
    if (missing) return { enabled: false, error: missing, statements: [] };
    if (r.statementsError) return { enabled: true, error: r.statementsError, statements: [] };
    return { enabled: true, statements: statementsReport(r.statements ?? []) };
  }

  /** Counters for tests and the benchmark: rounds run and statements sent. */
  counters(): { rounds: number; queries: number } {
    return { rounds: this.rounds, queries: this.queries };
  }

  close(): void {
    this.session?.close();
    this.session = null;
  }

  /** The cached round, or undefined when it has not finished within metrics.timeout_ms. */
  private latest(): Promise<RoundResult | undefined> {
    return within<RoundResult | undefined>(this.cache.get(), this.s.timeout_ms, () => {
      if (!this.timeoutLogged) this.log?.warn(this.timeoutReason(), { code: 'PG_METRICS_TIMEOUT' });
      this.timeoutLogged = true;
      return undefined;
    });
  }

  private timeoutReason(): string {
    return reason('PG_METRICS_TIMEOUT', `PostgreSQL did not answer within ${this.s.timeout_ms} ms (pg_up 0)`);
  }

  private async query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]> {
    this.session ??= await this.connect(this.s.timeout_ms);
    this.queries++;
    return this.session.query(sql, params);
  }

  private async round(): Promise<RoundResult> {
    const start = this.now();
    this.rounds++;
    const seconds = () => (this.now() - start) / 1000;
    let result: RoundResult;
    try {
      const { collectors, probe } = await this.collect();
      const st = await this.readStatements(probe);
      result = { up: true, seconds: seconds(), collectors, ...st };
    } catch (err) {
      this.close();
      result = { up: false, error: message(err), seconds: seconds(), collectors: [] };
    }
    if (result.up !== this.wasUp) {
      if (result.up) this.log?.info('PostgreSQL metrics: connected');
      else
        this.log?.warn('PostgreSQL metrics: PostgreSQL does not answer (pg_up 0)', {
          code: 'PG_METRICS_UNREACHABLE',
          error: result.error,
        });
      this.wasUp = result.up;
    }
    if (result.up) this.timeoutLogged = false;
    return result;
  }

  /** Every collector in one statement; after an SQL error, each alone so one broken collector spares the others. */
  private async collect(): Promise<{ collectors: CollectorOutcome[]; probe?: PgssProbe }> {
    try {
      const rows = await this.query(combinedSql(COLLECTORS, this.s.stat_statements));
      return parseCombined((rows[0]?.['m'] ?? {}) as Record<string, unknown>);
    } catch (err) {
      if (!sqlState(err)) throw err;
      this.log?.debug('PostgreSQL metrics: the combined statement failed; running collectors one by one', {
        error: message(err),
      });
    }
    const out: CollectorOutcome[] = [];
    for (const c of COLLECTORS) {
      const t = this.now();
      try {
        const rows = await this.query(singleSql(c));
        out.push(outcome(c, rows[0]?.['m'], (this.now() - t) / 1000));
      } catch (err) {
        if (!sqlState(err)) throw err;
        out.push({ name: c.name, ok: false, seconds: (this.now() - t) / 1000, families: [], error: message(err) });
      }
    }
    return { collectors: out };
  }

  private async readStatements(
    probe: PgssProbe | undefined,
  ): Promise<{ probe?: PgssProbe; statements?: StatementRow[]; statementsError?: string }> {
    if (!this.s.stat_statements) return {};
    if (!probe)
      return { statementsError: reason('PG_METRICS_STATEMENTS_FAILED', 'not probed: a collector failed this round') };
    let seen = probe;
    if (probe.preloaded && !probe.installed && !probe.inRecovery && !this.createTried) {
      this.createTried = true;
      try {
        await this.query(CREATE_EXTENSION_SQL);
        seen = { ...probe, installed: true };
        this.log?.info('PostgreSQL metrics: created the pg_stat_statements extension (metrics.stat_statements)');
      } catch (err) {
        if (!sqlState(err)) throw err;
        return {
          probe: seen,
          statementsError: reason(
            'PG_METRICS_STATEMENTS_FAILED',
            `CREATE EXTENSION pg_stat_statements: ${message(err)}`,
          ),
        };
      }
    }
    if (pgssProblem(true, seen)) return { probe: seen };
    try {
      const rows = await this.query(STATEMENTS_SQL, [this.s.stat_statements_limit]);
      return { probe: seen, statements: parseStatementRows(rows) };
    } catch (err) {
      if (!sqlState(err)) throw err;
      return { probe: seen, statementsError: reason('PG_METRICS_STATEMENTS_FAILED', message(err)) };
    }
  }
}
