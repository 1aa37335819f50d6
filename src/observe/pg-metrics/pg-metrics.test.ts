import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MetricsConfig } from './config.js';
import { COLLECTORS } from './collectors.js';
import { type Connect, PgMetrics, type SqlSession } from './pg-metrics.js';

const SETTINGS: MetricsConfig = {
  postgres: true,
  cache_seconds: 5,
  timeout_ms: 200,
  stat_statements: false,
  stat_statements_limit: 10,
};

/** A combined-statement answer: every collector empty, the probe as given. */
function combined(probe?: Record<string, boolean>): Record<string, unknown>[] {
  const m: Record<string, unknown> = { _t0: 0 };
  COLLECTORS.forEach((c, i) => {
    m[c.name] = c.name === 'replication' ? { lag_seconds: 0, is_replica: 1, last_replay_seconds: 2 } : null;
    m[`_t${i + 1}`] = 0;
  });
  if (probe) m['_pgss'] = probe;
  return [{ m }];
}

class FakePg {
  sessions = 0;
  closed = 0;
  sent: string[] = [];
  answer: (sql: string) => Promise<Record<string, unknown>[]> = async () => combined();
  connect: Connect = async () => {
    this.sessions++;
    const s: SqlSession = {
      query: (sql) => {
        this.sent.push(sql);
        return this.answer(sql);
      },
      close: () => {
        this.closed++;
      },
    };
    return s;
  };
}

const sqlError = (code: string) => Object.assign(new Error(`sql ${code}`), { code });

test('20 concurrent scrapes cause one round of one statement per cache period', async () => {
  const pg = new FakePg();
  let t = 0;
  const m = new PgMetrics(SETTINGS, pg.connect, { scope: 's', name: 'n' }, () => t);
  const texts = await Promise.all(Array.from({ length: 20 }, () => m.exposition()));
  assert.equal(pg.sent.length, 1);
  assert.deepEqual(m.counters(), { rounds: 1, queries: 1 });
  assert.ok(texts.every((x) => x.includes('pg_up{scope="s",name="n"} 1')));
  assert.ok(texts[0]?.includes('pg_replication_is_replica{scope="s",name="n"} 1'));
  assert.ok(texts[0]?.includes('pgkeel_pg_metrics_queries_total{scope="s",name="n"} 1'));
  t = 5000;
  await Promise.all([m.exposition(), m.exposition()]);
  assert.deepEqual(m.counters(), { rounds: 2, queries: 2 });
  assert.equal(pg.sessions, 1, 'the session is kept between rounds');
});

test('an SQL error in the combined statement runs the collectors one by one; the broken one alone fails', async () => {
  const pg = new FakePg();
  pg.answer = async (sql) => {
    if (sql.includes('json_build_object(\n')) throw sqlError('42501');
    if (sql.includes('pg_ls_waldir')) throw sqlError('42501');
    return [{ m: null }];
  };
  const m = new PgMetrics(SETTINGS, pg.connect, {}, () => 0);
  const text = await m.exposition();
  assert.ok(text.includes('pg_up 1'));
  assert.ok(text.includes('pg_scrape_collector_success{collector="wal"} 0'));
  assert.ok(text.includes('pg_scrape_collector_success{collector="locks"} 1'));
  assert.equal(m.counters().queries, 1 + COLLECTORS.length);
});

test('a lost connection gives pg_up 0 and drops the session; the next round connects again', async () => {
  const pg = new FakePg();
  let t = 0;
  pg.answer = async () => {
    throw new Error('Connection terminated unexpectedly');
  };
  const m = new PgMetrics(SETTINGS, pg.connect, {}, () => t);
  assert.match(await m.exposition(), /^pg_up 0$/m);
  assert.equal(pg.closed, 1);
  pg.answer = async () => combined();
  t = 5000;
  assert.match(await m.exposition(), /^pg_up 1$/m);
  assert.equal(pg.sessions, 2);
});

test('a hung PostgreSQL: the scrape answers pg_up 0 within timeout_ms, and the hung round is not doubled', async () => {
  const pg = new FakePg();
  pg.answer = () => new Promise(() => {});
  let t = 0;
  const m = new PgMetrics({ ...SETTINGS, timeout_ms: 50, stat_statements: true }, pg.connect, {}, () => t);
  const started = performance.now();
  const text = await m.exposition();
  assert.ok(performance.now() - started < 1000);
  assert.match(text, /^pg_up 0$/m);
  assert.doesNotMatch(text, /pg_stat_database/);
  t = 60_000;
  await m.exposition();
  assert.equal(m.counters().rounds, 1);
  assert.match((await m.statements()).error ?? '', /^PG_METRICS_TIMEOUT: PostgreSQL did not answer within 50 ms/);
});

test('metrics.postgres off: no pg_* text and no connection', async () => {
  const pg = new FakePg();
  const m = new PgMetrics({ ...SETTINGS, postgres: false }, pg.connect, {}, () => 0);
  assert.equal(await m.exposition(), '');
  assert.equal((await m.statements()).enabled, false);
  assert.equal(pg.sessions, 0);
});

test('/statements: off, not preloaded, and read with the extension', async () => {
  const off = new PgMetrics(SETTINGS, new FakePg().connect, {}, () => 0);
  const r0 = await off.statements();
  assert.equal(r0.enabled, false);
  assert.match(r0.error ?? '', /^PG_METRICS_STATEMENTS_OFF: metrics\.stat_statements is off/);

  const pg = new FakePg();
  pg.answer = async () => combined({ installed: false, preloaded: false, inRecovery: false });
  const noLib = new PgMetrics({ ...SETTINGS, stat_statements: true }, pg.connect, {}, () => 0);
  const r1 = await noLib.statements();
  assert.equal(r1.enabled, false);
  assert.match(r1.error ?? '', /^PG_METRICS_NO_PRELOAD: .*shared_preload_libraries/);

  const pg2 = new FakePg();
  pg2.answer = async (sql) => {
    if (sql.includes('SELECT json_build_object'))
      return combined({ installed: false, preloaded: true, inRecovery: false });
    if (sql.startsWith('CREATE EXTENSION')) return [];
    return [
      {
        user: 'app',
        datname: 'shop',
        queryid: '-42',
        query: 'SELECT $1',
        stats: { calls: 4, total_exec_time: 10, mean_exec_time: 2.5, rows: 4, blk_read_time: 1, blk_write_time: 0 },
      },
    ];
  };
  const on = new PgMetrics({ ...SETTINGS, stat_statements: true }, pg2.connect, {}, () => 0);
  assert.deepEqual(await on.statements(), {
    enabled: true,
    statements: [
      {
        queryid: '-42',
        datname: 'shop',
        query: 'SELECT $1',
        calls: 4,
        total_exec_time_ms: 10,
        mean_exec_time_ms: 2.5,
        rows: 4,
      },
    ],
  });
  assert.ok(pg2.sent.some((s) => s.startsWith('CREATE EXTENSION IF NOT EXISTS pg_stat_statements')));
  const text = await on.exposition();
  assert.ok(text.includes('pg_stat_statements_calls_total{user="app",datname="shop",queryid="-42"} 4'));
  assert.ok(text.includes('pg_stat_statements_seconds_total{user="app",datname="shop",queryid="-42"} 0.01'));
});
