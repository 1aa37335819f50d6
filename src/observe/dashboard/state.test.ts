import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clusterKeys, parseCluster } from '../../dcs/layout.js';
import { type Fetched, MAX_EVENTS, type RawInputs, buildState, mergeEvents } from './state.js';
import { parseProxyRecord } from './gather.js';

const keys = clusterKeys('demo');
const kv = (key: string, value: unknown) => ({
  key,
  value: typeof value === 'string' ? value : JSON.stringify(value),
  createRevision: 1,
  modRevision: 1,
  lease: '0',
});
const member = (name: string, over: Record<string, unknown> = {}) =>
  kv(keys.member(name), {
    conn_url: `postgres://127.0.0.1:5${name.slice(-1)}/postgres`,
    api_url: `http://127.0.0.1:8${name.slice(-1)}/patroni`,
    state: 'running',
    role: 'replica',
    timeline: 2,
    xlog_location: 1000,
    replay_lsn: 1000,
    replication_state: 'streaming',
    ...over,
  });
const cluster = (extra: ReturnType<typeof kv>[] = []) =>
  parseCluster(keys, {
    revision: 5,
    kvs: [
      kv(keys.leader, 'node1'),
      kv(keys.config, { maximum_lag_on_failover: 500 }),
      kv(keys.sync, { leader: 'node1', sync_standby: 'node2' }),
      member('node1', { role: 'master', replay_lsn: undefined, replication_state: undefined, xlog_location: 5000 }),
      member('node2', { xlog_location: 4900, replay_lsn: 4900 }),
      member('node3', { xlog_location: 3000, replay_lsn: 3000, pending_restart: true, tags: { nofailover: true } }),
      ...extra,
    ],
  });

const ok = (body: unknown): Fetched => ({ ok: true, body });
const notFound: Fetched = { ok: false, code: 404, error: 'HTTP 404' };
const ev = (at: number, member: string, kind: string, reason = `${kind} on ${member}`) => ({
  time: new Date(at).toISOString(),
  at,
  member,
  timeline: 2,
  kind,
  reason,
});

function raw(over: Partial<RawInputs> = {}): RawInputs {
  return {
    now: Date.UTC(2026, 0, 1, 3, 0, 0),
    scope: 'demo',
    servedBy: 'node2',
    cluster: cluster(),
    clusterError: null,
    patroni: new Map([
      ['node1', ok({ state: 'running', server_version: 150004, pgkeel: { summary: 'no action: I am the leader' } })],
      ['node2', ok({ state: 'running' })],
      ['node3', { ok: false, error: 'connect ECONNREFUSED' }],
    ]),
    events: new Map(),
    statements: null,
    proxies: { list: [], error: null },
    proxyStats: new Map(),
    backup: undefined,
    lagHistory: {},
    lagWindowMs: 3_600_000,
    authConfigured: false,
    ...over,
  };
}

describe('mergeEvents', () => {
  it('merges every member in time order, keeps a repeated event once and only the newest MAX_EVENTS', () => {
    const m = mergeEvents(
      new Map<string, Fetched>([
        ['node1', ok([ev(30, 'node1', 'demote'), ev(10, 'node1', 'start')])],
        ['node2', ok([ev(20, 'node2', 'promote'), ev(30, 'node1', 'demote'), { junk: true }])],
        ['node3', notFound],
      ]),
    );
    assert.equal(m.available, true);
    assert.deepEqual(
      m.items.map((e) => [e.at, e.member, e.kind]),
      [
        [10, 'node1', 'start'],
        [20, 'node2', 'promote'],
        [30, 'node1', 'demote'],
      ],
    );
    const many = Array.from({ length: MAX_EVENTS + 5 }, (_, i) => ev(i, 'node1', 'restart'));
    const capped = mergeEvents(new Map([['node1', ok(many)]]));
    assert.equal(capped.items.length, MAX_EVENTS);
    assert.equal(capped.items[0]?.at, 5);
  });

  it('keeps one entry for a happening several members recorded (as ctl events does)', () => {
    const seen = (observer: string, reason: string) => ({
      ...ev(40, 'node1', 'leader_lost'),
      from: 'node1',
      reason,
      details: { observer },
    });
    const m = mergeEvents(
      new Map<string, Fetched>([
        ['node2', ok([seen('node2', 'the leader key of node1 is gone; taking leadership')])],
        ['node3', ok([{ ...seen('node3', 'the leader key of node1 is gone; waiting'), at: 41 }])],
      ]),
    );
    assert.deepEqual(
      m.items.map((e) => [e.at, e.kind, e.reason]),
      [[40, 'leader_lost', 'the leader key of node1 is gone; taking leadership']],
    );
  });

  it('is unavailable while no member serves /events (404), and names members that failed otherwise', () => {
    assert.deepEqual(mergeEvents(new Map([['node1', notFound]])), { available: false, items: [], errors: [] });
    const m = mergeEvents(new Map<string, Fetched>([['node1', { ok: false, error: 'timeout' }]]));
    assert.deepEqual(m.errors, ['node1: timeout']);
  });
});

describe('buildState', () => {
  it('shows the whole cluster: roles from the DCS, lag, tags, sync standbys, the limit, reachability', () => {
    const s = buildState(raw());
    assert.equal(s.leader, 'node1');
    assert.equal(s.max_lag_bytes, 500);
    assert.deepEqual(s.sync_standbys, ['node2']);
    assert.deepEqual(
      s.members.map((m) => [m.name, m.role, m.state, m.lag_bytes, m.level, m.reachable]),
      [
        ['node1', 'leader', 'running', 0, 'ok', true],
        ['node2', 'sync_standby', 'streaming', 100, 'ok', true],
        ['node3', 'replica', 'streaming', 2000, 'amber', false],
      ],
    );
    assert.equal(s.members[0]?.summary, 'no action: I am the leader');
    assert.equal(s.members[0]?.server_version, 150004);
    assert.deepEqual(s.members[2]?.tags, { nofailover: true });
    assert.equal(s.health.level, 'amber');
    assert.equal(s.health.verdict, 'degraded');
    assert.equal(
      s.health.reason,
      'node3 lags 2000 bytes, over maximum_lag_on_failover (500 bytes); pending restart on node3',
      "the verdict `pgkeel status` prints: the unreachable API is the dashboard's own finding",
    );
    assert.deepEqual(
      s.health.problems.map((p) => p.text),
      [
        'node3 lags 2000 bytes, over maximum_lag_on_failover (500 bytes)',
        'pending restart on node3',
        "node3's REST API does not answer",
      ],
    );
    assert.equal(s.switchover.allowed, false);
    assert.equal(s.backup, null);
    assert.equal(s.generated_at, '2026-01-01T03:00:00.000Z');
  });

  it('offers the switchover only when REST authentication is configured', () => {
    assert.equal(buildState(raw({ authConfigured: true })).switchover.allowed, true);
  });

  it('red without a leader; the last view stays visible with the DCS error when the DCS does not answer', () => {
    const noLeader = parseCluster(keys, { revision: 1, kvs: [member('node2'), member('node3')] });
    const s = buildState(raw({ cluster: noLeader, clusterError: 'deadline exceeded' }));
    assert.equal(s.health.level, 'red');
    assert.equal(s.health.verdict, 'critical');
    assert.equal(s.health.reason, 'the DCS does not answer (deadline exceeded): showing the last view it gave');
    assert.equal(s.health.problems[0]?.text, s.health.reason);
    assert.ok(s.health.problems.some((p) => p.text === 'no leader: nobody holds the leader key, writes fail'));
    assert.equal(s.members.length, 2);
  });

  it('statements: absent endpoint, disabled extension, and the list as the leader gives it', () => {
    assert.equal(buildState(raw({ statements: notFound })).statements.available, false);
    const off = buildState(
      raw({ statements: ok({ enabled: false, error: 'add pg_stat_statements', statements: [] }) }),
    );
    assert.deepEqual(off.statements, {
      available: true,
      enabled: false,
      error: 'add pg_stat_statements',
      statements: [],
    });
    const q = {
      queryid: '7',
      datname: 'app',
      query: 'SELECT 1',
      calls: 3,
      total_exec_time_ms: 1.5,
      mean_exec_time_ms: 0.5,
      rows: 3,
    };
    assert.deepEqual(buildState(raw({ statements: ok({ enabled: true, statements: [q] }) })).statements.statements, [
      q,
    ]);
  });

  it('proxies: each registered proxy with its pools, or the reason its stats are missing', () => {
    const rec = parseProxyRecord(
      JSON.stringify({ id: '127.0.0.1_6432', listen: '127.0.0.1:6432', stats_url: 'http://127.0.0.1:9187/stats' }),
    );
    assert.ok(rec);
    assert.equal(parseProxyRecord('{"listen":"x"}'), null);
    assert.equal(parseProxyRecord('not json'), null);
    const pool = {
      database: 'app',
      user: 'u',
      cl_active: 2,
      cl_waiting: 1,
      sv_active: 1,
      sv_idle: 3,
      tps: 9.5,
      p99_wait_ms: 4,
    };
    const s = buildState(
      raw({
        proxies: { list: [rec, { id: 'b', listen: 'h:1' }], error: null },
        proxyStats: new Map([
          [
            rec.id,
            ok({ pools: [{ ...pool, extra: 1 }], totals: { cl_active: 2, cl_waiting: 1, sv_active: 1, tps: 9.5 } }),
          ],
        ]),
      }),
    );
    assert.deepEqual(s.proxies.items[0]?.pools, [pool]);
    assert.equal(s.proxies.items[0]?.totals?.tps, 9.5);
    assert.equal(s.proxies.items[1]?.error, 'no stats_url registered');
  });

  it('backups: last backup age, recoverable window, archive lag; archiving that fails turns the banner amber', () => {
    const now = Date.UTC(2026, 0, 1, 3, 0, 0);
    const s = buildState(
      raw({
        backup: {
          repo: '/repo',
          running: null,
          lastVerify: null,
          lastBackup: null,
          archiver: {
            pushed: 10,
            failures: 2,
            backlog: 4,
            lastArchived: { name: 'A', time: now - 120_000 },
            lastFailed: { name: 'B', time: now - 60_000, message: 'disk full' },
          },
          report: {
            repo: '/repo',
            backups: [{ id: 'F1', type: 'full', status: 'ok', stop_time: new Date(now - 3_600_000).toISOString() }],
            wal: { first: null, last: null, count: 0, last_archived_time: null },
            recoverable_from: '2026-01-01T02:00:00.000Z',
            recoverable_to: '2026-01-01T02:58:00.000Z',
          } as never,
        },
      }),
    );
    assert.deepEqual(s.backup?.last_backup, {
      id: 'F1',
      type: 'full',
      stop_time: '2026-01-01T02:00:00.000Z',
      age_s: 3600,
    });
    assert.equal(s.backup?.archive?.backlog, 4);
    assert.equal(s.backup?.archive?.last_archived_age_s, 120);
    assert.equal(s.backup?.recoverable_to, '2026-01-01T02:58:00.000Z');
    assert.ok(s.health.problems.some((p) => p.text === 'WAL archiving fails: B: disk full'));
  });
});
