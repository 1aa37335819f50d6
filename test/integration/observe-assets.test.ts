/**
 * issue 12, one real `pgkeel up` cluster for: (5) every metric name the Grafana dashboard and the alert rules in
 * examples/ use exists on a live agent's or proxy's /metrics; (1) a real Prometheus (Debian's package) scrapes the
 * leader's agent and the proxy every second and answers the series back through its HTTP API, both targets "up"
 * (so the exposition parses); (6) a slow statement lands in the PostgreSQL log with the default logging settings and
 * `pgkeel report` turns it into pgBadger's HTML, and says how to install pgBadger when it is missing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { freePort } from '../../src/lib/net.js';
import {
  dashboardExpressions,
  exposedNames,
  metricNames,
  readJson,
  ruleExpressions,
} from '../../src/observe/assets/promql-names.js';
import { cli, healthyStatus, leaderOf, repoRoot, startCluster, type TestCluster } from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';

/** Series Prometheus makes itself rather than scraping (`up` per target). */
const SYNTHETIC = new Set(['up']);

async function text(url: string): Promise<string> {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
  assert.equal(r.status, 200, `${url} answered ${r.status}`);
  return r.text();
}

function usedNames(): Map<string, string[]> {
  const used = new Map<string, string[]>();
  const add = (where: string, expr: string) => {
    for (const n of metricNames(expr)) if (!SYNTHETIC.has(n)) used.set(n, [...(used.get(n) ?? []), where]);
  };
  for (const e of dashboardExpressions(readJson(join(repoRoot, 'examples', 'grafana-dashboard.json'))))
    add(`dashboard panel "${e.panel}"`, e.expr);
  const rules = parse(readFileSync(join(repoRoot, 'examples', 'alerts.yml'), 'utf8'));
  for (const r of ruleExpressions(rules)) add(`alert ${r.rule}`, r.expr);
  return used;
}

describe('observe assets against a live cluster: dashboard names, a real Prometheus, pgBadger report', () => {
  let c: TestCluster;
  let leaderApi = '';
  let proxyMetrics = '';
  let proxyRw = 0;
  let leaderPort = 0;

  before(async () => {
    c = await startCluster({ name: 'observe-assets' });
    const up = await c.up();
    assert.equal(up.code, 0, up.stderr);
    const s = await healthyStatus(c);
    const leader = leaderOf(s);
    assert.ok(leader && s.proxy);
    leaderApi = new URL(leader.api_url).origin;
    leaderPort = leader.port;
    proxyRw = Number(s.proxy.rw.split(':').at(-1));
    proxyMetrics = `http://127.0.0.1:${c.portBase + 4}/metrics`; // metrics_listen: P+4 (src/local/layout.ts)
    // A pool exists once a client used it: the proxy's pool series appear then.
    await c.query(proxyRw, 'SELECT 1');
  });

  after(async () => {
    await c?.[Symbol.asyncDispose]();
  });

  it('every metric the dashboard and the alerts read exists on the leader agent /metrics or the proxy /metrics', async () => {
    const live = new Set([
      ...exposedNames(await text(`${leaderApi}/metrics`)),
      ...exposedNames(await text(proxyMetrics)),
    ]);
    const used = usedNames();
    const missing = [...used.keys()].filter((n) => !live.has(n));
    const describeMissing = (names: string[]) => names.map((n) => `${n} (${used.get(n)?.join(', ')})`).join('\n  ');
    const pgkeel = missing.filter((n) => !n.startsWith('pg_'));
    assert.deepEqual(pgkeel, [], `missing on the live /metrics:\n  ${describeMissing(pgkeel)}`);
    // postgres_exporter's names (src/observe/pg-metrics/).
    const pgNames = missing.filter((n) => n.startsWith('pg_'));
    assert.deepEqual(pgNames, [], `postgres_exporter names missing on the agent:\n  ${describeMissing(pgNames)}`);
  });

  it('a real Prometheus scrapes the leader agent and the proxy: both targets up, the series queryable', async () => {
    await using tmp = await tempDir('prometheus');
    const port = await freePort();
    const agentTarget = new URL(leaderApi).host;
    const proxyTarget = new URL(proxyMetrics).host;
    writeFileSync(
      join(tmp.path, 'prometheus.yml'),
      [
        'global: {scrape_interval: 1s, scrape_timeout: 1s}',
        'scrape_configs:',
        `  - {job_name: pgkeel-agents, static_configs: [{targets: ['${agentTarget}']}]}`,
        `  - {job_name: pgkeel-proxy, static_configs: [{targets: ['${proxyTarget}']}]}`,
        '',
      ].join('\n'),
    );
    let prom: ChildProcess | undefined;
    let log = '';
    try {
      prom = spawn(
        'prometheus',
        [
          `--config.file=${join(tmp.path, 'prometheus.yml')}`,
          `--storage.tsdb.path=${join(tmp.path, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--log.level=warn',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      prom.stdout?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
      prom.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
      const api = `http://127.0.0.1:${port}/api/v1`;
      const targets = await c
        .waitFor(
          'both Prometheus targets up',
          async () => {
            const body = (await (await fetch(`${api}/targets`)).json()) as {
              data: { activeTargets: Array<{ scrapePool: string; health: string; lastError: string }> };
            };
            const t = body.data.activeTargets;
            return t.length === 2 && t.every((x) => x.health === 'up') ? t : undefined;
          },
          30_000,
        )
        .catch((e: Error) => {
          throw new Error(`${e.message}\nprometheus log:\n${log}`);
        });
      assert.deepEqual(targets.map((t) => t.scrapePool).sort(), ['pgkeel-agents', 'pgkeel-proxy']);
      await c.query(proxyRw, 'SELECT 1'); // keep the pool's series fresh
      const query = async (q: string) => {
        const body = (await (await fetch(`${api}/query?query=${encodeURIComponent(q)}`)).json()) as {
          status: string;
          data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
        };
        return body.status === 'success' ? body.data.result : [];
      };
      const series = async (name: string) =>
        c
          .waitFor(`Prometheus has ${name}`, async () => ((await query(name)).length > 0 ? true : undefined), 15_000)
          .then(
            () => true,
            () => false,
          );
      const primary = await query('patroni_primary');
      assert.ok(await series('patroni_primary'));
      assert.ok(
        (await query('patroni_primary == 1')).some((r) => r.metric['job'] === 'pgkeel-agents'),
        `the leader reports patroni_primary 1: ${JSON.stringify(primary)}`,
      );
      assert.ok(await series('pgkeel_proxy_pool_client_active_connections'), 'the proxy pool series');
      assert.ok(await series('pgkeel_backup_schedule_interval_seconds'), 'the backup schedule series');
      const pgMissing: string[] = [];
      for (const n of ['pg_up', 'pg_stat_database_xact_commit']) if (!(await series(n))) pgMissing.push(n);
      assert.deepEqual(pgMissing, [], 'postgres_exporter names scraped by Prometheus');
    } finally {
      if (prom?.pid && prom.exitCode === null) {
        prom.kill('SIGKILL');
        await new Promise((r) => prom?.once('exit', r));
      }
    }
  });

  it('pgkeel report: a slow statement in the leader log is in pgBadger report; without pgbadger, the install hint', async () => {
    await using tmp = await tempDir('report');
    await c.query(leaderPort, 'SELECT pg_sleep(1.3) AS pgkeel_slow_report_marker');
    const out = join(tmp.path, 'report.html');
    const logs = ['node1', 'node2', 'node3'].map((n) => join(c.dir, n, 'postgresql.log'));
    await c.waitFor(
      'the slow statement in the log',
      async () => logs.some((f) => readFileSync(f, 'utf8').includes('pgkeel_slow_report_marker')),
      10_000,
    );
    const r = await cli(['report', '--dir', c.dir, '--since', '1h', '--out', out], 120_000);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, new RegExp(`report: ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    for (const n of ['node1', 'node2', 'node3']) assert.match(r.stdout, new RegExp(`read ${n}: `));
    assert.ok(existsSync(out));
    const html = readFileSync(out, 'utf8');
    assert.ok(html.includes('pgkeel_slow_report_marker'), 'the slow statement is in the report');

    // -c node.yml: that node's log only, and it says so.
    const one = await cli(
      ['report', '-c', join(c.dir, 'node1', 'node.yml'), '--since', '1h', '--out', join(tmp.path, 'one.html')],
      120_000,
    );
    assert.equal(one.code, 0, `${one.stdout}\n${one.stderr}`);
    assert.match(one.stdout, /this node's log only \(node1\)/);
    assert.match(one.stdout, /read node1: /);
    assert.doesNotMatch(one.stdout, /read node2: /);

    const none = await cli(['report', '--dir', c.dir, '--out', join(tmp.path, 'x.html')], 30_000, {
      ...process.env,
      PATH: '/nonexistent-bin',
    });
    assert.equal(none.code, 1, none.stderr);
    assert.match(none.stderr, /REPORT_PGBADGER_MISSING/);
    assert.match(none.stderr, /apt-get install pgbadger/);
  });
});
