import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AdminSnapshot } from '../admin/admin-merge.js';
import { mergeAdmin } from '../admin/admin-merge.js';
import type { ConnInfo } from '../admin/admin.js';
import { proxyConfigFromObject } from '../config.js';
import { WaitHistogram } from '../pool/wait-histogram.js';
import { zeroStats } from '../pool/stats.js';
import { encodePid, MAX_WORKERS, workerConfig, workerOfPid, workerShare } from './workers-config.js';

describe('workers: dividing limits', () => {
  it('shares add up to the total and differ by at most one', () => {
    for (const total of [1, 2, 3, 7, 20, 100, 101]) {
      for (const n of [1, 2, 3, 4, 8]) {
        const shares = Array.from({ length: n }, (_, i) => workerShare(total, i, n));
        assert.equal(
          shares.reduce((a, b) => a + b, 0),
          total,
          `total ${total} on ${n}`,
        );
        assert.ok(Math.max(...shares) - Math.min(...shares) <= 1);
      }
    }
  });

  it('never gives a pool less than its minimum', () => {
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => workerShare(2, i, 4, 1)),
      [1, 1, 1, 1],
    );
  });

  it('divides pool sizes, max_client_conn and overrides, and keeps min_pool_size within the pool', () => {
    const c = proxyConfigFromObject(
      {
        listen: '127.0.0.1:0',
        primary: 'h:1',
        auth_type: 'trust',
        workers: 2,
        default_pool_size: 5,
        min_pool_size: 5,
        max_client_conn: 101,
        databases: { app: { pool_size: 3 } },
        users: { bob: { pool_mode: 'session' } },
      },
      't',
    );
    const w0 = workerConfig(c, 0, 2);
    const w1 = workerConfig(c, 1, 2);
    assert.deepEqual([w0.default_pool_size, w1.default_pool_size], [3, 2]);
    assert.deepEqual([w0.min_pool_size, w1.min_pool_size], [3, 2]);
    assert.deepEqual([w0.max_client_conn, w1.max_client_conn], [51, 50]);
    assert.deepEqual([w0.databases['app']?.pool_size, w1.databases['app']?.pool_size], [2, 1]);
    assert.equal(w1.users['bob']?.pool_mode, 'session');
    assert.equal(c.default_pool_size, 5, 'the total config is not changed');
    assert.equal(workerConfig(c, 0, 1), c);
  });
});

describe('workers: cancel keys', () => {
  it('carry the worker index and stay positive 32-bit integers', () => {
    for (const seq of [1, 2, 1000, 0x3ffffff, 0x3ffffff + 5]) {
      for (const w of [0, 1, MAX_WORKERS - 1]) {
        const pid = encodePid(seq, w);
        assert.equal(workerOfPid(pid), w);
        assert.ok(pid > 0 && pid <= 0x7fffffff, `pid ${pid}`);
      }
    }
    assert.notEqual(encodePid(1, 0), encodePid(2, 0));
  });
});

const conn = (ptr: string, user: string): ConnInfo => ({
  type: 'C',
  user,
  database: 'db',
  state: 'idle',
  addr: '127.0.0.1',
  port: 1,
  localAddr: '127.0.0.1',
  localPort: 2,
  connectTime: 0,
  requestTime: 0,
  waitUs: 0,
  closeNeeded: false,
  ptr,
  link: '',
  remotePid: 1,
  applicationName: '',
  preparedStatements: 0,
  id: 1,
});

function snap(over: Partial<AdminSnapshot>): AdminSnapshot {
  return {
    version: 'v',
    pools: [],
    clients: [],
    servers: [],
    databases: [],
    lists: [],
    config: [['k', 'v', '', 'yes']],
    stats: [],
    poolStats: [],
    topology: { reason: 'r', rows: [] },
    state: { paused: false, shuttingDown: false },
    ...over,
  };
}

describe('workers: merging admin snapshots', () => {
  const pool = (clActive: number, maxWaitUs: number) => ({
    database: 'db',
    user: 'u',
    clActive,
    clWaiting: 1,
    svActive: 1,
    svIdle: 2,
    svUsed: 0,
    svLogin: 0,
    maxWaitUs,
    mode: 'transaction',
  });
  const stats = (xact: number, xactTimeAvg: number) => {
    const totals = { ...zeroStats(), xact_count: xact * 10 };
    const averages = { ...zeroStats(), xact_count: xact, xact_time: xactTimeAvg };
    return { database: 'db', totals, averages };
  };

  it('sums pools, takes the longest wait, concatenates connections with worker-tagged ptrs', () => {
    const d = mergeAdmin([
      snap({
        pools: [pool(2, 10)],
        clients: [conn('0x1', 'a')],
        stats: [stats(1, 100)],
        lists: [
          ['pools', 1],
          ['used_clients', 2],
        ],
      }),
      snap({
        pools: [pool(3, 50)],
        clients: [conn('0x1', 'b')],
        stats: [stats(3, 300)],
        lists: [
          ['pools', 1],
          ['used_clients', 3],
        ],
      }),
    ]);
    const [p] = d.pools();
    assert.equal(p?.clActive, 5);
    assert.equal(p?.svIdle, 4);
    assert.equal(p?.maxWaitUs, 50);
    assert.deepEqual(
      d.clients().map((c) => c.ptr),
      ['w0:0x1', 'w1:0x1'],
    );
    const [s] = d.stats();
    assert.equal(s?.totals.xact_count, 40);
    assert.equal(s?.averages.xact_count, 4);
    assert.equal(s?.averages.xact_time, 250, 'time averages are weighted by their counts');
    assert.deepEqual(d.lists(), [
      ['pools', 1],
      ['used_clients', 5],
    ]);
  });

  it('sums the per-pool averages and wait histograms', () => {
    const h = new WaitHistogram();
    h.record(0);
    h.record(5000);
    const ps = (xact: number) => ({
      database: 'db',
      user: 'u',
      averages: { ...zeroStats(), xact_count: xact },
      waits: h.snapshot(),
      recentWaits: h.snapshot(),
    });
    const [p] = mergeAdmin([snap({ poolStats: [ps(2)] }), snap({ poolStats: [ps(5)] })]).poolStats();
    assert.equal(p?.averages.xact_count, 7);
    assert.equal(p?.waits.count, 4);
    assert.equal(p?.recentWaits.counts[0], 2);
    assert.equal(p?.waits.sumUs, 10_000);
  });

  it('is paused only when every worker is paused', () => {
    const paused = { paused: true, shuttingDown: false };
    assert.equal(mergeAdmin([snap({ state: paused }), snap({})]).state().paused, false);
    assert.equal(mergeAdmin([snap({ state: paused }), snap({ state: paused })]).state().paused, true);
  });
});
