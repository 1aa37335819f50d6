import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COLLECTORS } from './collectors.js';
import { combinedSql, parseCombined, renderRound } from './round.js';

const byName = (name: string) => {
  const c = COLLECTORS.find((x) => x.name === name);
  if (!c) throw new Error(`no collector ${name}`);
  return c;
};
const lines = (text: string) => text.split('\n').filter((l) => l && !l.startsWith('#'));

test('the combined statement has every collector once, between clock marks, and the probe only when asked', () => {
  const sql = combinedSql();
  for (const [i, c] of COLLECTORS.entries()) {
    assert.equal(sql.split(`'${c.name}', (`).length, 2, c.name);
    assert.ok(sql.includes(`'_t${i + 1}'`));
  }
  assert.ok(!sql.includes('_pgss'));
  assert.ok(sql.startsWith('/* pgkeel-metrics */ SELECT'), 'marked, so /statements leaves it out');
  assert.ok(combinedSql(COLLECTORS, true).includes("'_pgss'"));
});

test('collector durations come from the marks around each collector', () => {
  const m: Record<string, unknown> = { _t0: 10 };
  COLLECTORS.forEach((c, i) => {
    m[c.name] = null;
    m[`_t${i + 1}`] = 10 + (i + 1) * 0.5;
  });
  const { collectors, probe } = parseCombined(m);
  assert.equal(probe, undefined);
  assert.deepEqual(
    collectors.map((c) => c.seconds),
    COLLECTORS.map(() => 0.5),
  );
  assert.ok(collectors.every((c) => c.ok));
});

test('stat_activity: count and max_tx_duration by datname and state', () => {
  const fams = byName('stat_activity').families([
    { datname: 'postgres', state: 'active', count: 2, max_tx_duration: 1.5 },
    { datname: 'postgres', state: 'idle in transaction (aborted)', count: 0, max_tx_duration: 0 },
  ]);
  assert.deepEqual(
    fams.map((f) => [f.name, f.type, f.samples.map((s) => [s.labels, s.value])]),
    [
      [
        'pg_stat_activity_count',
        'gauge',
        [
          [{ datname: 'postgres', state: 'active' }, 2],
          [{ datname: 'postgres', state: 'idle in transaction (aborted)' }, 0],
        ],
      ],
      [
        'pg_stat_activity_max_tx_duration',
        'gauge',
        [
          [{ datname: 'postgres', state: 'active' }, 1.5],
          [{ datname: 'postgres', state: 'idle in transaction (aborted)' }, 0],
        ],
      ],
    ],
  );
});

test('stat_database: counters by datid and datname, active_time in seconds, conflicts without the shared row', () => {
  const fams = byName('stat_database').families([
    { datid: '0', datname: '', xact_commit: 1, numbackends: 0, active_time: null },
    { datid: '5', datname: 'postgres', xact_commit: 42, numbackends: 3, active_time: 1500, confl_lock: 1 },
  ]);
  const f = (n: string) => fams.find((x) => x.name === n);
  assert.equal(f('pg_stat_database_xact_commit')?.type, 'counter');
  assert.equal(f('pg_stat_database_numbackends')?.type, 'gauge');
  assert.deepEqual(f('pg_stat_database_xact_commit')?.samples[1], {
    labels: { datid: '5', datname: 'postgres' },
    value: 42,
  });
  assert.deepEqual(
    f('pg_stat_database_active_time_seconds_total')?.samples.map((s) => s.value),
    [null, 1.5],
  );
  assert.deepEqual(
    f('pg_stat_database_conflicts_confl_lock')?.samples.map((s) => s.labels['datname']),
    ['postgres'],
  );
});

test('stat_replication: one series per standby with the exporter labels', () => {
  const [current, diff] = byName('stat_replication').families([
    {
      pid: '77',
      application_name: 'node2',
      client_addr: '127.0.0.1',
      state: 'streaming',
      slot_name: 'node2',
      pg_current_wal_lsn_bytes: 50_000_000,
      pg_wal_lsn_diff: 128,
    },
  ]);
  assert.equal(current?.name, 'pg_stat_replication_pg_current_wal_lsn_bytes');
  assert.equal(diff?.name, 'pg_stat_replication_pg_wal_lsn_diff');
  assert.deepEqual(diff?.samples, [
    {
      labels: {
        application_name: 'node2',
        client_addr: '127.0.0.1',
        state: 'streaming',
        slot_name: 'node2',
        pid: '77',
      },
      value: 128,
    },
  ]);
});

test('replication_slots: both label sets, wal_status as a labelled 1, no safe_wal_size sample when NULL', () => {
  const fams = byName('replication_slots').families([
    {
      slot_name: 'node2',
      slot_type: 'physical',
      database: '',
      active: true,
      wal_status: 'reserved',
      safe_wal_size: null,
      current_wal_lsn: 100,
      confirmed_flush_lsn: 0,
      pg_wal_lsn_diff: 0,
    },
  ]);
  const f = (n: string) => fams.find((x) => x.name === n);
  assert.deepEqual(f('pg_replication_slots_active')?.samples, [
    { labels: { slot_name: 'node2', database: '' }, value: 1 },
  ]);
  assert.deepEqual(f('pg_replication_slot_slot_is_active')?.samples, [
    { labels: { slot_name: 'node2', slot_type: 'physical' }, value: 1 },
  ]);
  assert.deepEqual(f('pg_replication_slot_safe_wal_size_bytes')?.samples, []);
  assert.deepEqual(f('pg_replication_slot_wal_status')?.samples, [
    { labels: { slot_name: 'node2', slot_type: 'physical', wal_status: 'reserved' }, value: 1 },
  ]);
});

test('replication: no last_replay sample on a server that never replayed', () => {
  const fams = byName('replication').families({ lag_seconds: 0, is_replica: 0, last_replay_seconds: null });
  assert.deepEqual(
    fams.map((f) => [f.name, f.samples.length]),
    [
      ['pg_replication_lag_seconds', 1],
      ['pg_replication_is_replica', 1],
      ['pg_replication_last_replay_seconds', 0],
    ],
  );
});

test('postmaster: pg_static short_version as the exporter formats it', () => {
  const fams = byName('postmaster').families({
    start_time_seconds: 1700000000.5,
    short_version: '15.18 (Debian 15.18-0+deb12u1)',
    version: 'PostgreSQL 15.18',
  });
  assert.deepEqual(fams[1]?.samples, [{ labels: { short_version: '15.18.0', version: 'PostgreSQL 15.18' }, value: 1 }]);
});

test('a round that did not finish (or failed) renders pg_up 0 and no collector series', () => {
  const text = renderRound(undefined, { rounds: 3, queries: 4 }, { scope: 's', name: 'n' });
  assert.deepEqual(lines(text), [
    'pg_up{scope="s",name="n"} 0',
    'pg_exporter_last_scrape_duration_seconds{scope="s",name="n"} 0',
    'pg_exporter_last_scrape_error{scope="s",name="n"} 1',
    'pg_exporter_scrapes_total{scope="s",name="n"} 3',
    'pgkeel_pg_metrics_queries_total{scope="s",name="n"} 4',
  ]);
  assert.ok(text.includes('# TYPE pg_scrape_collector_success gauge'));
});

test('a good round: pg_up 1, its families, and per-collector success', () => {
  const text = renderRound(
    {
      up: true,
      seconds: 0.01,
      collectors: [
        { name: 'wal', ok: true, seconds: 0.002, families: byName('wal').families({ segments: 3, size: 48 }) },
        { name: 'locks', ok: false, seconds: 0.001, families: [], error: 'boom' },
      ],
    },
    { rounds: 1, queries: 1 },
    {},
  );
  const l = lines(text);
  assert.ok(l.includes('pg_up 1'));
  assert.ok(l.includes('pg_wal_segments 3'));
  assert.ok(l.includes('pg_wal_size_bytes 48'));
  assert.ok(l.includes('pg_scrape_collector_success{collector="wal"} 1'));
  assert.ok(l.includes('pg_scrape_collector_success{collector="locks"} 0'));
  assert.ok(l.includes('pg_exporter_last_scrape_error 1'));
});
