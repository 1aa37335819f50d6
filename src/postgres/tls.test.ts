import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromObject } from '../config/load.js';
import { ConfigError } from '../config/schema.js';
import { managedParameters, memberConninfo, primaryConninfo, renderHba, sslEnabled } from './conf.js';
import { isOn, rootTrustedPath, sslModeOf, tlsFilePlan } from './tls.js';

type Auth = Record<string, unknown>;
const node = (opts: { parameters?: Record<string, unknown>; su?: Auth; rep?: Auth; pg_hba?: string[] } = {}) =>
  configFromObject(
    {
      scope: 'demo',
      name: 'n1',
      postgresql: {
        data_dir: '/var/lib/pgkeel/n1/data',
        parameters: opts.parameters ?? {},
        ...(opts.pg_hba ? { pg_hba: opts.pg_hba } : {}),
        authentication: { superuser: { password: 's', ...opts.su }, replication: { password: 'r', ...opts.rep } },
      },
    },
    'test.yml',
    {},
    '/etc/pgkeel',
  );

const tcpLines = (hba: string) => hba.split('\n').filter((l) => /^host/.test(l));

describe('pg_hba with and without ssl', () => {
  it("without ssl: pgkeel's TCP lines are plain host lines, as before", () => {
    const hba = renderHba(node());
    assert.deepEqual(
      tcpLines(hba).map((l) => l.split(/\s+/)[0]),
      ['host', 'host', 'host', 'host'],
    );
  });

  it('with ssl on: every TCP line pgkeel writes is hostssl; the local socket lines stay; user lines are kept as written', () => {
    const hba = renderHba(node(), true);
    assert.deepEqual(
      tcpLines(hba).map((l) => l.split(/\s+/)[0]),
      ['hostssl', 'hostssl', 'hostssl', 'hostssl'],
    );
    assert.match(hba, /^hostssl replication\s+replicator\s+all\s+scram-sha-256$/m);
    assert.match(hba, /^local\s+all\s+postgres\s+scram-sha-256$/m);
    assert.match(hba, /^local\s+replication\s+replicator\s+scram-sha-256$/m);
    const own = renderHba(node({ pg_hba: ['host all app 10.0.0.0/8 scram-sha-256'] }), true);
    assert.match(own, /^host all app 10\.0\.0\.0\/8 scram-sha-256$/m);
  });

  it("ssl counts as on from the local parameters or the DCS, in any of PostgreSQL's boolean spellings; local wins", () => {
    assert.equal(sslEnabled(node(), {}), false);
    assert.equal(sslEnabled(node({ parameters: { ssl: 'on' } }), {}), true);
    assert.equal(sslEnabled(node(), { ssl: true }), true);
    assert.equal(sslEnabled(node({ parameters: { ssl: 'off' } }), { ssl: 'on' }), false);
    for (const v of ['on', 'ON', 'true', 'yes', '1', 'tr', true, 1]) assert.equal(isOn(v), true, String(v));
    for (const v of ['off', 'false', 'no', '0', '', 'o', false, 0, undefined]) assert.equal(isOn(v), false, String(v));
  });
});

describe('conninfo to other members', () => {
  const up = { host: '10.0.0.2', port: 5432, slot: 'n1' };

  it('without TLS settings: sslmode=prefer, as before', () => {
    assert.match(
      primaryConninfo(node(), up),
      /^host=10\.0\.0\.2 port=5432 user=replicator passfile=\/var\/lib\/pgkeel\/n1\/pgpass application_name=n1 .* sslmode=prefer$/,
    );
  });

  it('a root certificate makes replication and pg_rewind default to verify-full; client cert and key go along', () => {
    const cfg = node({
      rep: { sslrootcert: 'tls/ca.crt', sslcert: 'tls/n1.crt', sslkey: 'tls/n1.key' },
      su: { sslrootcert: '/etc/ssl/ca.pem' },
    });
    const ci = primaryConninfo(cfg, up);
    assert.match(
      ci,
      / sslmode=verify-full sslrootcert=\/etc\/pgkeel\/tls\/ca\.crt sslcert=\/etc\/pgkeel\/tls\/n1\.crt sslkey=\/etc\/pgkeel\/tls\/n1\.key$/,
    );
    const rewind = memberConninfo(cfg, 'superuser', up, {}, [['dbname', 'postgres']]);
    assert.equal(
      rewind,
      'host=10.0.0.2 port=5432 user=postgres dbname=postgres sslmode=verify-full sslrootcert=/etc/ssl/ca.pem',
    );
  });

  it('an explicit sslmode wins; the postgres-owned copies replace the configured paths', () => {
    const cfg = node({ rep: { sslmode: 'require', sslkey: '/k', sslcert: '/c' } });
    assert.equal(sslModeOf(cfg.postgresql.authentication.replication), 'require');
    const ci = memberConninfo(cfg, 'replication', up, { 'replication.sslkey': '/d-ssl/replication.sslkey' });
    assert.equal(
      ci,
      'host=10.0.0.2 port=5432 user=replicator sslmode=require sslcert=/c sslkey=/d-ssl/replication.sslkey',
    );
  });

  it('quotes values with spaces or quotes', () => {
    const cfg = node({ rep: { sslrootcert: "/etc/my ca's.crt" } });
    assert.match(primaryConninfo(cfg, up), /sslrootcert='\/etc\/my ca\\'s\.crt'$/);
  });
});

describe('TLS settings in the node config', () => {
  const problems = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.problems.map((p) => `${p.path}: ${p.message}`).join('\n');
    }
    return '';
  };

  it('refuses verify-full without a root certificate, a key without a certificate, and an unknown sslmode, naming the key', () => {
    assert.match(
      problems(() => node({ rep: { sslmode: 'verify-full' } })),
      /postgresql\.authentication\.replication\.sslrootcert: is required with sslmode verify-full/,
    );
    assert.match(
      problems(() => node({ su: { sslkey: '/k' } })),
      /postgresql\.authentication\.superuser\.sslcert: is required with sslkey/,
    );
    assert.match(
      problems(() => node({ rep: { sslmode: 'verify_full' } })),
      /replication\.sslmode: expected one of disable, allow, prefer, require, verify-ca, verify-full, got "verify_full" \(did you mean "verify-full"\?\)/,
    );
  });

  it('plans a copy for each file named locally (server files relative to the data directory), into <data_dir>-ssl', () => {
    const cfg = node({
      parameters: { ssl: 'on', ssl_cert_file: 'server.crt', ssl_key_file: '/etc/ssl/private/s.key' },
      rep: { sslrootcert: 'ca.crt' },
    });
    assert.deepEqual(tlsFilePlan(cfg), [
      {
        setting: 'ssl_cert_file',
        source: '/var/lib/pgkeel/n1/data/server.crt',
        copy: '/var/lib/pgkeel/n1/data-ssl/ssl_cert_file',
      },
      { setting: 'ssl_key_file', source: '/etc/ssl/private/s.key', copy: '/var/lib/pgkeel/n1/data-ssl/ssl_key_file' },
      {
        setting: 'replication.sslrootcert',
        source: '/etc/pgkeel/ca.crt',
        copy: '/var/lib/pgkeel/n1/data-ssl/replication.sslrootcert',
      },
    ]);
  });

  it('uses the copies in postgresql.pgkeel.conf for local files only; a file named in the DCS is passed through untouched', () => {
    const cfg = node({ parameters: { ssl: 'on', ssl_key_file: '/etc/ssl/private/s.key' } });
    const p = managedParameters({
      cfg,
      dcsParameters: { ssl_cert_file: '/from/dcs.crt' },
      upstream: null,
      synchronousStandbyNames: '',
      tlsFiles: { ssl_key_file: '/x/data-ssl/ssl_key_file' },
    });
    assert.equal(p['ssl_key_file'], '/x/data-ssl/ssl_key_file');
    assert.equal(p['ssl_cert_file'], '/from/dcs.crt');
    assert.deepEqual(
      tlsFilePlan(cfg).map((f) => f.setting),
      ['ssl_key_file'],
      'nothing from the DCS is copied by root',
    );
  });
});

describe('rootTrustedPath: root reads a file for postgres only through directories postgres cannot change', () => {
  const who = { uid: 65534, gids: [65534] };
  const withTree = (fn: (d: string) => void) => {
    const d = mkdtempSync(join(tmpdir(), 'pgkeel-tls-'));
    try {
      fn(d);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  };

  it('follows root-owned symlinks in root-owned directories to the real file', () => {
    withTree((d) => {
      mkdirSync(join(d, 'real'));
      writeFileSync(join(d, 'real', 'k.key'), 'key');
      symlinkSync(join(d, 'real'), join(d, 'live'));
      assert.equal(rootTrustedPath(join(d, 'live', 'k.key'), who), join(d, 'real', 'k.key'));
    });
  });

  it('refuses a path through a directory the other user owns or may write (it could plant a symlink to /etc/shadow)', () => {
    withTree((d) => {
      mkdirSync(join(d, 'theirs'));
      chownSync(join(d, 'theirs'), who.uid, who.gids[0] as number);
      symlinkSync('/etc/shadow', join(d, 'theirs', 'server.key'));
      assert.equal(rootTrustedPath(join(d, 'theirs', 'server.key'), who), null);
      mkdirSync(join(d, 'shared'));
      chmodSync(join(d, 'shared'), 0o777);
      writeFileSync(join(d, 'shared', 'x.key'), 'key');
      assert.equal(rootTrustedPath(join(d, 'shared', 'x.key'), who), null, 'world-writable, not sticky');
      chmodSync(join(d, 'shared'), 0o1777);
      assert.equal(
        rootTrustedPath(join(d, 'shared', 'x.key'), who),
        join(d, 'shared', 'x.key'),
        "sticky: a file of root's cannot be swapped",
      );
      chownSync(join(d, 'shared', 'x.key'), who.uid, who.gids[0] as number);
      assert.equal(rootTrustedPath(join(d, 'shared', 'x.key'), who), null, "sticky, but the entry is the other user's");
    });
  });

  it('throws for a missing file', () => {
    assert.throws(() => rootTrustedPath('/nonexistent/pgkeel/x.key', who), /ENOENT/);
  });
});
