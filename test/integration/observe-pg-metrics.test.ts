/**
 * PostgreSQL metrics on a real 3-node cluster (`pgkeel up`): every agent's /metrics carries postgres_exporter's
 * series (pg_up, is_replica per role, stat_database, one pg_stat_replication series per standby on the leader) in a
 * form promtool parses; 20 concurrent scrapers cause one query round per cache period (the agent's own counter);
 * with a member's metrics backend and postmaster hung (SIGSTOP) and with its PostgreSQL stopped, /metrics answers
 * within 1 s with pg_up 0 and the Patroni-named series. One cluster for the file; stopped processes get SIGCONT in
 * `finally`. Beside it, one standalone PostgreSQL with pg_stat_statements preloaded for the opt-in statements.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cli, healthyStatus, leaderOf, startCluster, type TestCluster } from '../helpers/cluster.js';
import { postmasterPid } from '../helpers/scenario.js';
import { startPostgres } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';
import type { NodeConfig } from '../../src/config/node.js';
import { PgMetrics, socketConnect } from '../../src/observe/pg-metrics/pg-metrics.js';
import { run } from '../../src/lib/proc.js';
import type { StatusJson } from '../../src/local/status.js';
import { sleep } from '../helpers/wait.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text → samples (enough for our own output: no timestamps, labels without escaped quotes needed). */
function parse(text: string): Sample[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(l);
      assert.ok(m, `an exposition line: ${l}`);
      const labels: Record<string, string> = {};
      for (const x of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
        labels[x[1] as string] = x[2] as string;
      return { name: m[1] as string, labels, value: Number(m[3]) };
    });
}

const find = (s: Sample[], name: string, labels: Record<string, string> = {}) =>
  s.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));

const one = (s: Sample[], name: string, labels: Record<string, string> = {}) => {
  const xs = find(s, name, labels);
  assert.equal(xs.length, 1, `one ${name}${JSON.stringify(labels)}: ${JSON.stringify(xs)}`);
  return (xs[0] as Sample).value;
};

let c: TestCluster;
let status: StatusJson;

const base = (name: string) => {
  const m = status.members.find((x) => x.name === name);
  assert.ok(m);
  return m.api_url.replace(/\/patroni$/, '');
};

async function scrape(name: string): Promise<{ ms: number; text: string }> {
  const t = performance.now();
  const res = await fetch(`${base(name)}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  assert.equal(res.status, 200);
  return { ms: performance.now() - t, text };
}

/** Scrapes `name` until `cond` holds on a scrape; every scrape on the way must answer within 1 s. */
async function scrapeUntil(name: string, what: string, cond: (s: Sample[]) => boolean, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { ms, text } = await scrape(name);
    assert.ok(ms < 1000, `/metrics on ${name} answered in ${Math.round(ms)} ms`);
    const s = parse(text);
    if (cond(s)) return s;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} on ${name}`);
    await sleep(300);
  }
}

describe('PostgreSQL metrics under postgres_exporter names', { timeout: 240_000 }, () => {
  before(async () => {
    c = await startCluster({ name: 'pg-metrics' });
    const up = await c.up();
    assert.equal(up.code, 0, up.stderr);
    status = await healthyStatus(c);
  });
  after(async () => {
    await c?.[Symbol.asyncDispose]();
  });

  it('leader and replicas: pg_up, stat_database, their role; on the leader one series per standby', async () => {
    const leader = leaderOf(status)?.name as string;
    const replicas = status.members.filter((m) => m.name !== leader).map((m) => m.name);
    await c.query(status.members.find((m) => m.name === leader)?.port as number, 'SELECT 1');
    for (const m of status.members) {
      const s = await scrapeUntil(m.name, 'the metrics', (x) => find(x, 'pg_stat_database_xact_commit').length > 0);
      assert.equal(one(s, 'pg_up', { name: m.name, scope: status.scope }), 1);
      assert.equal(one(s, 'pg_replication_is_replica'), m.name === leader ? 0 : 1);
      assert.ok(one(s, 'pg_stat_database_xact_commit', { datname: 'postgres' }) > 0);
      assert.ok(one(s, 'pg_database_size_bytes', { datname: 'postgres' }) > 0);
      assert.equal(find(s, 'pg_stat_activity_count', { datname: 'postgres' }).length, 6);
      assert.equal(find(s, 'pg_locks_count', { datname: 'postgres' }).length, 9);
      assert.ok(one(s, 'pg_wal_segments') >= 1);
      assert.equal(one(s, 'patroni_postgres_running'), 1, 'the Patroni-named series are there too');
      assert.deepEqual(
        find(s, 'pg_scrape_collector_success').filter((x) => x.value !== 1),
        [],
        'every collector succeeded',
      );
    }
    const s = parse((await scrape(leader)).text);
    const diffs = find(s, 'pg_stat_replication_pg_wal_lsn_diff');
    assert.deepEqual(diffs.map((d) => d.labels['application_name']).sort(), replicas.sort());
    assert.ok(diffs.every((d) => d.labels['state'] === 'streaming' && d.labels['client_addr'] !== undefined));
    assert.equal(find(s, 'pg_replication_slot_slot_is_active').length, replicas.length);
    if (existsSync('/usr/bin/promtool')) {
      // promtool's lint notes on the exporter's own names (counters without _total, *_count gauges) are expected;
      // anything else (a parse error) is not.
      let out = '';
      try {
        out = execFileSync('promtool', ['check', 'metrics'], {
          input: (await scrape(leader)).text,
          encoding: 'utf8',
          stdio: ['pipe', 'pipe', 'pipe'],
        });
      } catch (err) {
        out = `${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}`;
      }
      const unexpected = out
        .split('\n')
        .filter((l) => l && !/should have "_total" suffix|should not have "_count" suffix/.test(l));
      assert.deepEqual(unexpected, []);
    }
    const st = (await (await fetch(`${base(leader)}/statements`)).json()) as { enabled: boolean; error?: string };
    assert.equal(st.enabled, false);
    assert.match(st.error ?? '', /metrics\.stat_statements is off/);
  });

  it('20 concurrent scrapers cause one query round per cache period', async () => {
    const name = status.members[0]?.name as string;
    const rounds = (s: Sample[]) => one(s, 'pg_exporter_scrapes_total');
    const queries = (s: Sample[]) => one(s, 'pgkeel_pg_metrics_queries_total');
    const first = parse((await scrape(name)).text);
    const started = Date.now();
    let last = first;
    for (let wave = 0; wave < 12; wave++) {
      const texts = await Promise.all(Array.from({ length: 20 }, () => scrape(name)));
      const seen = texts.map((t) => parse(t.text));
      const within = new Set(seen.map(rounds));
      assert.ok(within.size <= 2, `one wave of 20 scrapes saw rounds ${[...within]}`);
      last = seen.reduce((a, b) => (rounds(b) > rounds(a) ? b : a));
      await sleep(500);
    }
    const periods = Math.ceil((Date.now() - started) / 5000);
    const ran = rounds(last) - rounds(first);
    assert.ok(ran >= 1 && ran <= periods + 1, `${ran} rounds in ${Date.now() - started} ms for 241 scrapes`);
    assert.equal(queries(last) - queries(first), ran, 'one statement per round');
  });

  it('a hung metrics backend and a stopped PostgreSQL give pg_up 0 within 1 s; the Patroni series stay', async () => {
    const leader = leaderOf(status)?.name as string;
    const victim = status.members.find((m) => m.name !== leader);
    assert.ok(victim);
    const rows = await c.query(
      victim.port,
      "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgkeel-metrics'",
    );
    const pid = Number(rows[0]?.['pid']);
    assert.ok(pid > 0, 'the agent has its own metrics session');
    const postmaster = postmasterPid(c, victim.name);
    assert.ok(postmaster);
    // Its backend hangs mid-query, and the postmaster too, so the new session after the timeout cannot connect.
    process.kill(pid, 'SIGSTOP');
    process.kill(postmaster, 'SIGSTOP');
    try {
      const s = await scrapeUntil(victim.name, 'pg_up 0 with a hung backend', (x) => one(x, 'pg_up') === 0);
      assert.equal(one(s, 'patroni_postgres_running'), 1);
      assert.equal(find(s, 'pg_stat_database_xact_commit').length, 0);
      const rounds = one(s, 'pg_exporter_scrapes_total');
      // Two more cache periods: each new round hangs on connecting; every scrape still answers pg_up 0 in time.
      await scrapeUntil(
        victim.name,
        'two more rounds against the hung postmaster',
        (x) => {
          assert.equal(one(x, 'pg_up'), 0);
          return one(x, 'pg_exporter_scrapes_total') >= rounds + 2;
        },
        20_000,
      );
    } finally {
      process.kill(postmaster, 'SIGCONT');
      process.kill(pid, 'SIGCONT');
    }
    await scrapeUntil(victim.name, 'pg_up 1 again', (x) => one(x, 'pg_up') === 1);

    const pause = await cli(['ctl', 'pause', '--wait', '--dir', c.dir], 60_000);
    assert.equal(pause.code, 0, pause.stderr);
    try {
      const stop = await run('/usr/lib/postgresql/15/bin/pg_ctl', ['stop', '-D', victim.data_dir, '-m', 'fast', '-w'], {
        timeoutMs: 30_000,
      });
      assert.equal(stop.code, 0, stop.stderr);
      const s = await scrapeUntil(victim.name, 'pg_up 0 with PostgreSQL stopped', (x) => one(x, 'pg_up') === 0);
      assert.equal(one(s, 'pg_exporter_last_scrape_error'), 1);
      assert.ok(find(s, 'patroni_postgres_running').length === 1);
    } finally {
      await cli(['ctl', 'resume', '--wait', '--dir', c.dir], 60_000);
    }
    await scrapeUntil(victim.name, 'pg_up 1 after the restart', (x) => one(x, 'pg_up') === 1, 60_000);
  });
});

describe('pg_stat_statements (opt-in) on a standalone PostgreSQL', { timeout: 120_000 }, () => {
  it('creates the extension, lists the top statements without its own, and exports them as the exporter does', async () => {
    await using dir = await tempDir('pgss');
    await using pgsrv = await startPostgres(dir.path, { conf: { shared_preload_libraries: "'pg_stat_statements'" } });
    const cfg = {
      postgresql: {
        listen: `127.0.0.1:${pgsrv.port}`,
        socket_dir: join(dir.path, 'pgrun'),
        authentication: { superuser: { username: 'postgres', password: '' } },
      },
    } as unknown as NodeConfig;
    const settings = {
      postgres: true,
      cache_seconds: 1,
      timeout_ms: 2000,
      stat_statements: true,
      stat_statements_limit: 5,
    };
    const m = new PgMetrics(settings, socketConnect(cfg), { scope: 'solo', name: 'pg' }, Date.now);
    try {
      await pgsrv.sql('CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 20000) g');
      for (let i = 0; i < 5; i++) await pgsrv.sql('SELECT count(*) FROM t WHERE id % $1 = 0', [i + 2]);
      let report = await m.statements();
      for (let i = 0; i < 20 && !report.statements.some((x) => x.query.includes('FROM t WHERE')); i++) {
        await sleep(1100);
        report = await m.statements();
      }
      assert.equal(report.enabled, true, JSON.stringify(report));
      const mine = report.statements.find((x) => x.query.includes('FROM t WHERE'));
      assert.ok(mine, JSON.stringify(report));
      assert.equal(mine.calls, 5);
      assert.equal(mine.datname, 'postgres');
      assert.ok(mine.total_exec_time_ms > 0 && mine.mean_exec_time_ms > 0);
      assert.ok(report.statements.length <= 5);
      assert.ok(
        report.statements.every((x) => !x.query.includes('pgkeel-metrics')),
        'its own reads are left out',
      );
      const ext = await pgsrv.sql("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'");
      assert.equal(ext.length, 1, 'the agent created the extension');
      const s = parse(await m.exposition());
      assert.equal(one(s, 'pg_stat_statements_calls_total', { queryid: mine.queryid, user: 'postgres' }), 5);
      assert.ok(one(s, 'pg_stat_statements_seconds_total', { queryid: mine.queryid }) > 0);
    } finally {
      m.close();
    }
  });
});
