/**
 * examples/: the Prometheus config and alert rules pass promtool (check and the rules' unit tests in
 * alerts.promtest.yml); the Grafana dashboard is well formed and its expressions name metrics. That the names exist
 * on a live agent and proxy is test/integration/observe-assets.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { dashboardExpressions, metricNames, readJson, ruleExpressions } from './promql-names.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const file = (p: string) => `${root}${p}`;

function promtool(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((res) => {
    execFile('promtool', args, { cwd: root, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err
        ? typeof (err as { code?: unknown }).code === 'number'
          ? (err as { code: number }).code
          : 127
        : 0;
      res({ code, output: `${stdout}${stderr}` });
    });
  });
}

describe('metricNames', () => {
  it('keeps metric names; drops functions, aggregations, keywords, labels, strings, ranges and variables', () => {
    assert.deepEqual(
      metricNames(
        'sum by (instance, mode) (rate(pg_locks_count{instance=~"$instance", mode!="x"}[$__rate_interval])) > on (scope) group_left(name) max without (job) (patroni_primary offset 10m) and bool time() - up',
      ),
      ['patroni_primary', 'pg_locks_count', 'up'],
    );
    assert.deepEqual(metricNames('histogram_quantile(0.99, a_bucket) / 1e3 + count(b) * 2'), ['a_bucket', 'b']);
  });
});

describe('examples/', () => {
  it('promtool check rules examples/alerts.yml', async () => {
    const r = await promtool(['check', 'rules', 'examples/alerts.yml']);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /SUCCESS: \d+ rules found/);
  });

  it('promtool check config examples/prometheus.yml', async () => {
    const r = await promtool(['check', 'config', 'examples/prometheus.yml']);
    assert.equal(r.code, 0, r.output);
  });

  it('promtool test rules: no leader, replica not streaming, failover, backup too old fire as written', async () => {
    const r = await promtool(['test', 'rules', 'src/observe/assets/alerts.promtest.yml']);
    assert.equal(r.code, 0, r.output);
  });

  it('every alert has a severity and a summary and description for the on-call', () => {
    const rules = (
      parse(readFileSync(file('examples/alerts.yml'), 'utf8')) as {
        groups: Array<{
          rules: Array<{ alert: string; labels?: { severity?: string }; annotations?: Record<string, string> }>;
        }>;
      }
    ).groups.flatMap((g) => g.rules);
    assert.ok(rules.length >= 7);
    for (const r of rules) {
      assert.ok(['critical', 'warning'].includes(r.labels?.severity ?? ''), `${r.alert}: severity`);
      assert.ok((r.annotations?.['summary'] ?? '').length > 10, `${r.alert}: summary`);
      assert.ok((r.annotations?.['description'] ?? '').length > 60, `${r.alert}: description`);
    }
    const names = new Set(rules.map((r) => r.alert));
    for (const a of [
      'PgkeelNoLeader',
      'PgkeelReplicaNotStreaming',
      'PgkeelReplicationLagOverLimit',
      'PgkeelFailoverHappened',
      'PgkeelProxyClientsWaiting',
      'PgkeelBackupTooOld',
      'PgkeelWalArchiveFailing',
    ])
      assert.ok(names.has(a), a);
  });

  it('the Grafana dashboard: schema 39, a Prometheus datasource and scope variables, every panel queries metrics', () => {
    const d = readJson(file('examples/grafana-dashboard.json')) as {
      schemaVersion: number;
      templating: { list: Array<{ name: string; type: string; query: unknown }> };
      panels: Array<{ type: string; title: string; targets?: unknown[] }>;
    };
    assert.equal(d.schemaVersion, 39);
    const vars = new Map(d.templating.list.map((v) => [v.name, v]));
    assert.equal(vars.get('datasource')?.type, 'datasource');
    assert.equal(vars.get('datasource')?.query, 'prometheus');
    assert.equal(vars.get('scope')?.type, 'query');
    for (const p of d.panels.filter((x) => x.type !== 'row'))
      assert.ok((p.targets ?? []).length > 0, `${p.title} has a query`);
    const names = new Set(dashboardExpressions(d).flatMap((e) => metricNames(e.expr)));
    for (const n of [
      'patroni_primary',
      'patroni_replica',
      'patroni_postgres_timeline',
      'pgkeel_replication_lag_bytes',
      'pg_replication_lag_seconds',
      'pg_stat_database_xact_commit',
      'pg_stat_activity_count',
      'pg_locks_count',
      'pg_wal_size_bytes',
      'pg_stat_archiver_failed_count',
      'pgkeel_backup_last_success_timestamp_seconds',
      'pgkeel_proxy_pool_client_waiting_connections',
    ])
      assert.ok(names.has(n), `the dashboard shows ${n}`);
    assert.ok(ruleExpressions(parse(readFileSync(file('examples/alerts.yml'), 'utf8'))).length >= 7);
  });
});
