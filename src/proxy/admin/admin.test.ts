import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type Frame,
  Framer,
  parseCommandComplete,
  parseDataRow,
  parseNoticeFields,
  parseRowDescription,
  BackendCode,
  TypeOid,
} from '../../protocol/index.js';
import { type AdminActions, type AdminData, executeAdmin, formatTime } from './admin.js';
import { zeroStats } from '../pool/stats.js';

function messages(bufs: Buffer[]): Frame[] {
  const f = new Framer();
  f.push(Buffer.concat(bufs));
  const out: Frame[] = [];
  for (let x = f.next(); x; x = f.next()) out.push(x);
  return out;
}

function table(bufs: Buffer[]) {
  const m = messages(bufs);
  assert.equal(m[0]?.type, BackendCode.RowDescription);
  const cols = parseRowDescription((m[0] as Frame).payload);
  const rows = m.slice(1, -1).map((f) => parseDataRow(f.payload).map((v) => (v === null ? null : v.toString())));
  const tag = parseCommandComplete((m[m.length - 1] as Frame).payload);
  return { names: cols.map((c) => c.name), types: cols.map((c) => c.typeOid), rows, tag };
}

const data: AdminData = {
  version: 'pgkeel 0.1.0',
  pools: () => [
    {
      database: 'app',
      user: 'u',
      clActive: 3,
      clWaiting: 2,
      svActive: 1,
      svIdle: 4,
      svUsed: 0,
      svLogin: 1,
      maxWaitUs: 2_500_000,
      mode: 'transaction',
    },
  ],
  clients: () => [],
  servers: () => [],
  databases: () => [],
  lists: () => [
    ['databases', 1],
    ['users', 1],
  ],
  config: () => [['max_client_conn', '100', '100', 'yes']],
  stats: () => [{ database: 'app', totals: { ...zeroStats(), xact_count: 7, received: 100 }, averages: zeroStats() }],
  poolStats: () => [],
  topology: () => ({ reason: 'static', rows: [] }),
  state: () => ({ paused: false, shuttingDown: false }),
};

function actions(log: string[]): AdminActions {
  return {
    pause: (db) => void log.push(`pause ${db ?? '*'}`),
    resume: (db) => void log.push(`resume ${db ?? '*'}`),
    reconnect: (db) => void log.push(`reconnect ${db ?? '*'}`),
    kill: (db) => void log.push(`kill ${db}`),
    reload: () => void log.push('reload'),
    shutdown: () => void log.push('shutdown'),
  };
}

describe('admin console', () => {
  it('SHOW POOLS has pgBouncer 1.25 columns, types and values', () => {
    const t = table(executeAdmin('show pools;', data, actions([]), false));
    assert.deepEqual(t.names, [
      'database',
      'user',
      'cl_active',
      'cl_waiting',
      'cl_active_cancel_req',
      'cl_waiting_cancel_req',
      'sv_active',
      'sv_active_cancel',
      'sv_being_canceled',
      'sv_idle',
      'sv_used',
      'sv_tested',
      'sv_login',
      'maxwait',
      'maxwait_us',
      'pool_mode',
      'load_balance_hosts',
    ]);
    assert.equal(t.types[2], TypeOid.int4);
    assert.equal(t.types[0], TypeOid.text);
    assert.deepEqual(t.rows[0], [
      'app',
      'u',
      '3',
      '2',
      '0',
      '0',
      '1',
      '0',
      '0',
      '4',
      '0',
      '0',
      '1',
      '2',
      '500000',
      'transaction',
      '',
    ]);
    assert.equal(t.tag, 'SHOW');
  });

  it('SHOW STATS has 25 columns in source order, numeric', () => {
    const t = table(executeAdmin('SHOW STATS', data, actions([]), false));
    assert.equal(t.names.length, 25);
    assert.deepEqual(t.names.slice(0, 5), [
      'database',
      'total_server_assignment_count',
      'total_xact_count',
      'total_query_count',
      'total_received',
    ]);
    assert.equal(t.names[16], 'avg_recv');
    assert.ok(t.types.slice(1).every((x) => x === TypeOid.numeric));
    assert.equal(t.rows[0]?.[2], '7');
  });

  it('SHOW STATS_TOTALS, CLIENTS, SERVERS, DATABASES, LISTS, CONFIG, VERSION render', () => {
    assert.deepEqual(table(executeAdmin('SHOW STATS_TOTALS', data, actions([]), false)).names.slice(0, 5), [
      'database',
      'server_assignment_count',
      'xact_count',
      'query_count',
      'bytes_received',
    ]);
    assert.equal(table(executeAdmin('SHOW CLIENTS', data, actions([]), false)).names.length, 21);
    assert.equal(table(executeAdmin('SHOW SERVERS', data, actions([]), false)).names[3], 'replication');
    assert.equal(table(executeAdmin('SHOW DATABASES', data, actions([]), false)).names.length, 17);
    assert.deepEqual(table(executeAdmin('SHOW LISTS', data, actions([]), false)).rows, [
      ['databases', '1'],
      ['users', '1'],
    ]);
    assert.deepEqual(table(executeAdmin('SHOW CONFIG', data, actions([]), false)).names, [
      'key',
      'value',
      'default',
      'changeable',
    ]);
    assert.deepEqual(table(executeAdmin('SHOW VERSION', data, actions([]), false)).rows, [['pgkeel 0.1.0']]);
  });

  it('runs commands, refuses unknown ones with an ERROR, and SHOW-only users', () => {
    const log: string[] = [];
    const ok = messages(executeAdmin('PAUSE app', data, actions(log), false));
    assert.equal(parseCommandComplete((ok[0] as Frame).payload), 'PAUSE');
    executeAdmin('resume', data, actions(log), false);
    executeAdmin('KILL app', data, actions(log), false);
    assert.deepEqual(log, ['pause app', 'resume *', 'kill app']);
    const bad = messages(executeAdmin('SELECT 1', data, actions(log), false));
    const n = parseNoticeFields((bad[0] as Frame).payload);
    assert.equal(n.severity, 'ERROR');
    assert.equal(n.sqlstate, '42601');
    const denied = parseNoticeFields(
      (messages(executeAdmin('SHUTDOWN', data, actions(log), true))[0] as Frame).payload,
    );
    assert.equal(denied.sqlstate, '42501');
    assert.ok(!log.includes('shutdown'));
  });

  it('formats timestamps as pgBouncer does', () => {
    assert.equal(formatTime(Date.UTC(2026, 0, 2, 3, 4, 5)), '2026-01-02 03:04:05 UTC');
  });
});
