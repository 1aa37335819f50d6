/** Rendering postgresql.pgkeel.conf and pg_hba.conf: quoting, precedence, and refusal of what would add lines. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { configFromObject } from '../config/load.js';
import { ConfRefusedError, managedParameters, renderConf, renderHba } from './conf.js';

const cfg = (pg: Record<string, unknown> = {}) =>
  configFromObject(
    {
      scope: 's',
      name: 'n1',
      postgresql: {
        data_dir: '/d',
        authentication: { superuser: { password: 's' }, replication: { password: 'r' } },
        ...pg,
      },
    },
    't',
    {},
    '/',
  );

describe('renderConf', () => {
  it("quotes strings as PostgreSQL reads them back: ' doubled, \\ doubled", () => {
    const text = renderConf({ a: "it's", b: 'C:\\dir', c: 5, d: true });
    assert.ok(text.includes("a = 'it''s'\n"));
    assert.ok(text.includes("b = 'C:\\\\dir'\n"));
    assert.ok(text.includes('c = 5\nd = on\n'));
  });

  it('refuses a name that is not a GUC identifier, and values with a newline, CR or NUL (PG_CONF_REFUSED)', () => {
    const cases: Array<Record<string, string | number>> = [
      { 'x = 1\nfsync': 'off' },
      { 'a b': 1 },
      { work_mem: "8MB'\nfsync = off" },
      { a: 'x\ry' },
      { a: 'x\u0000' },
      { a: Number.NaN },
    ];
    for (const params of cases) {
      assert.throws(
        () => renderConf(params),
        (e: unknown) =>
          e instanceof ConfRefusedError &&
          e.code === 'PG_CONF_REFUSED' &&
          e.message.startsWith('refusing to write postgresql.pgkeel.conf'),
        JSON.stringify(params),
      );
    }
  });

  it('pgkeel-managed settings win over any spelling of their name from the DCS or the node file', () => {
    const p = managedParameters({
      cfg: cfg({ parameters: { Wal_Level: 'minimal' } }),
      dcsParameters: { PORT: 1, Work_Mem: '8MB' },
      upstream: null,
      synchronousStandbyNames: '',
    });
    assert.equal(p['port'], 5432);
    assert.equal(p['wal_level'], 'replica');
    assert.equal(p['work_mem'], '8MB');
    assert.ok(!Object.keys(p).some((k) => k !== k.toLowerCase()));
  });

  it('wal_level may be raised to logical (a mesh needs it), from the DCS or the node file, never lowered', () => {
    const base = { upstream: null, synchronousStandbyNames: '' };
    const fromDcs = managedParameters({ cfg: cfg(), dcsParameters: { WAL_LEVEL: 'Logical' }, ...base });
    assert.equal(fromDcs['wal_level'], 'logical');
    const fromFile = managedParameters({
      cfg: cfg({ parameters: { wal_level: 'logical' } }),
      dcsParameters: {},
      ...base,
    });
    assert.equal(fromFile['wal_level'], 'logical');
    const lowered = managedParameters({
      cfg: cfg({ parameters: { wal_level: 'minimal' } }),
      dcsParameters: {},
      ...base,
    });
    assert.equal(lowered['wal_level'], 'replica');
  });
});

describe('logging defaults (pgBadger, docs/observe.md)', () => {
  it('log what pgBadger reports on, with its prefix; the user may override each, DCS and node file alike', () => {
    const base = { upstream: null, synchronousStandbyNames: '' };
    const p = managedParameters({ cfg: cfg(), dcsParameters: {}, ...base });
    assert.equal(p['log_line_prefix'], '%m [%p] %q%u@%d ');
    assert.equal(p['log_timezone'], 'UTC');
    assert.equal(p['log_min_duration_statement'], '1s');
    assert.equal(p['log_checkpoints'], 'on');
    assert.equal(p['log_lock_waits'], 'on');
    assert.equal(p['log_temp_files'], 0);
    assert.equal(p['log_autovacuum_min_duration'], '10s');
    assert.equal(p['log_connections'], 'off');
    const user = managedParameters({
      cfg: cfg({ parameters: { log_min_duration_statement: 250 } }),
      dcsParameters: { log_connections: 'on' },
      ...base,
    });
    assert.equal(user['log_min_duration_statement'], 250);
    assert.equal(user['log_connections'], 'on');
  });
});

describe('listen_addresses (postgresql.listen, Patroni form)', () => {
  const base = { upstream: null, synchronousStandbyNames: '', dcsParameters: {} };
  it('one host, several hosts (e.g. the node and its VIP), the wildcard; the port after the last host', () => {
    for (const [listen, addresses] of [
      ['10.0.0.11:5433', '10.0.0.11'],
      ['10.0.0.11,10.0.0.100:5433', '10.0.0.11,10.0.0.100'],
      ['[::1],10.0.0.11:5433', '::1,10.0.0.11'],
      ['0.0.0.0:5433', '*'],
      ['*:5433', '*'],
    ] as const) {
      const p = managedParameters({ cfg: cfg({ listen }), ...base });
      assert.equal(p['listen_addresses'], addresses, listen);
      assert.equal(p['port'], 5433, listen);
    }
  });
});

describe('renderHba', () => {
  it('refuses a line with a control character even when it got past validation', () => {
    const c = cfg();
    c.postgresql.pg_hba = ['host all all 0.0.0.0/0 scram-sha-256\nhost all all 0.0.0.0/0 trust'];
    assert.throws(
      () => renderHba(c),
      (e: unknown) => e instanceof ConfRefusedError && /postgresql\.pg_hba\[0\]/.test(e.message),
    );
  });

  it("writes valid lines after pgkeel's own", () => {
    const text = renderHba(cfg({ pg_hba: ['hostssl all all 10.0.0.0/8\tscram-sha-256'] }));
    assert.ok(text.endsWith('hostssl all all 10.0.0.0/8\tscram-sha-256\n'));
  });
});
