import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AdminData, PoolInfo } from './admin/admin.js';
import { renderMetrics } from './metrics.js';
import { zeroStats } from './pool/stats.js';
import { WAIT_BUCKETS, WaitHistogram } from './pool/wait-histogram.js';
import { statsJson } from './stats-json.js';

const pool = (database: string, over: Partial<PoolInfo> = {}): PoolInfo => ({
  database,
  user: 'app',
  clActive: 4,
  clWaiting: 2,
  svActive: 3,
  svIdle: 1,
  svUsed: 0,
  svLogin: 0,
  maxWaitUs: 1_500_000,
  mode: 'transaction',
  ...over,
});

function data(): AdminData {
  const recent = new WaitHistogram();
  for (let i = 0; i < 99; i++) recent.record(0);
  recent.record(40_000);
  const all = new WaitHistogram();
  all.record(0);
  all.record(100);
  all.record(200e6);
  return {
    version: 'pgkeel 0.1.0',
    pools: () => [pool('db'), pool('db@ro', { clActive: 1, clWaiting: 0, svActive: 1, maxWaitUs: 0 })],
    clients: () => [],
    servers: () => [],
    databases: () => [],
    lists: () => [],
    config: () => [],
    stats: () => [],
    poolStats: () => [
      {
        database: 'db',
        user: 'app',
        averages: { ...zeroStats(), xact_count: 12, query_count: 30, wait_time: 2500 },
        waits: all.snapshot(),
        recentWaits: recent.snapshot(),
      },
    ],
    topology: () => ({ reason: 'static', rows: [] }),
    state: () => ({ paused: false, shuttingDown: false }),
  };
}

describe('GET /stats JSON', () => {
  const j = statsJson(data(), new Date('2026-12-03T08:00:00Z'));

  it('has the contract shape', () => {
    assert.equal(j.time, '2026-12-03T08:00:00.000Z');
    assert.equal(j.pools.length, 2);
    for (const p of j.pools) {
      assert.deepEqual(Object.keys(p), [
        'database',
        'user',
        'cl_active',
        'cl_waiting',
        'sv_active',
        'sv_idle',
        'sv_used',
        'maxwait_ms',
        'tps',
        'qps',
        'avg_wait_ms',
        'p99_wait_ms',
      ]);
      for (const [k, v] of Object.entries(p)) if (k !== 'database' && k !== 'user') assert.equal(typeof v, 'number', k);
    }
    assert.deepEqual(Object.keys(j.totals), ['cl_active', 'cl_waiting', 'sv_active', 'tps']);
  });

  it('takes tps, qps, avg wait from the period averages and p99 from the recent waits', () => {
    const p = j.pools[0];
    assert.equal(p?.database, 'db');
    assert.equal(p?.tps, 12);
    assert.equal(p?.qps, 30);
    assert.equal(p?.avg_wait_ms, 2.5);
    assert.equal(p?.maxwait_ms, 1500);
    assert.ok((p?.p99_wait_ms ?? 0) > 0 && (p?.p99_wait_ms ?? 0) <= 0.016, `p99 ${p?.p99_wait_ms}`);
  });

  it('gives zeros for a pool with no stats period yet, and sums totals', () => {
    const ro = j.pools[1];
    assert.equal(ro?.tps, 0);
    assert.equal(ro?.p99_wait_ms, 0);
    assert.deepEqual(j.totals, { cl_active: 5, cl_waiting: 2, sv_active: 4, tps: 12 });
  });
});

describe('/metrics: pgkeel_proxy_pool_wait_seconds', () => {
  const text = renderMetrics(data());
  const lines = text.split('\n').filter((l) => l.startsWith('pgkeel_proxy_pool_wait_seconds'));

  it('is a histogram with cumulative buckets, +Inf equal to _count, and _sum in seconds', () => {
    assert.match(text, /# TYPE pgkeel_proxy_pool_wait_seconds histogram/);
    const buckets = lines.filter((l) => l.includes('_bucket{'));
    assert.equal(buckets.length, WAIT_BUCKETS);
    const values = buckets.map((l) => Number(l.split(' ')[1]));
    for (let i = 1; i < values.length; i++) assert.ok((values[i] as number) >= (values[i - 1] as number));
    assert.equal(buckets[0], 'pgkeel_proxy_pool_wait_seconds_bucket{database="db",user="app",le="0.000016"} 1');
    assert.match(buckets[buckets.length - 1] as string, /le="\+Inf"} 3$/);
    assert.equal(values[values.length - 2], 2, 'the 200 s wait is only in +Inf');
    assert.ok(lines.includes('pgkeel_proxy_pool_wait_seconds_count{database="db",user="app"} 3'));
    assert.ok(lines.includes('pgkeel_proxy_pool_wait_seconds_sum{database="db",user="app"} 200.0001'));
  });
});
