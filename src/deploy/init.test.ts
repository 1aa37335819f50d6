import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { checkConfigFile } from '../cli/config-check.js';
import { initOptionsFromFlags } from '../cli/init-cmd.js';
import { loadConfig } from '../config/load.js';
import { configProblems } from '../config/problems-fixture.js';
import { initNodeConfig, secretFile, type InitDeps, type InitOptions } from './init.js';

const dir = mkdtempSync(join(tmpdir(), 'pgkeel-init-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
const deps: InitDeps = { newSecret: () => `secret-${++counter}`, hostAddress: () => '10.0.0.21' };
const base: InitOptions = { scope: 'prod', name: 'node1', etcd: { hosts: ['10.0.0.11:2379', '10.0.0.12:2379'] } };

/** Writes init's output to a file and runs `pgkeel config check` on it, as an operator would. */
function checked(text: string, name: string): string {
  const file = join(dir, name);
  writeFileSync(file, text, { mode: 0o600 });
  return checkConfigFile(file, false);
}

describe('pgkeel init', () => {
  it('prints a config `config check` accepts: Debian paths, REST authentication, generated passwords', () => {
    const res = initNodeConfig(base, deps);
    assert.match(res.text, /^# pgkeel node config written by `pgkeel init`/);
    assert.equal(
      checked(res.text, 'plain.yml'),
      `${join(dir, 'plain.yml')}: valid node config (scope prod, member node1)`,
    );
    const c = loadConfig(join(dir, 'plain.yml'), {});
    assert.deepEqual(c.etcd3.hosts, ['10.0.0.11:2379', '10.0.0.12:2379']);
    assert.equal(c.restapi.listen, '10.0.0.21:8008');
    assert.equal(c.postgresql.connect_address, '10.0.0.21:5432');
    assert.equal(c.postgresql.data_dir, '/var/lib/pgkeel/prod/data');
    assert.equal(c.postgresql.socket_dir, '/var/lib/pgkeel/prod/run');
    assert.equal(c.postgresql.bin_dir, '/usr/lib/postgresql/15/bin');
    assert.equal(c.restapi.authentication?.username, 'pgkeel');
    const pw = [
      c.postgresql.authentication.superuser.password,
      c.postgresql.authentication.replication.password,
      c.restapi.authentication?.password,
    ];
    assert.equal(new Set(pw).size, 3, 'three different generated passwords');
    for (const p of pw) assert.match(String(p), /^secret-\d+$/);
    assert.deepEqual(res.created, []);
  });

  it('generates real random passwords by default (crypto, not the injected ones)', async () => {
    const { newSecret } = await import('../local/layout.js');
    const a = newSecret();
    assert.match(a, /^[A-Za-z0-9_-]{24}$/);
    assert.notEqual(a, newSecret());
  });

  it('with TLS files: REST https (client certificates for unsafe calls), ctl certificates, PostgreSQL ssl verify-full, etcd https + user', () => {
    const pwFile = join(dir, 'etcd.pw');
    writeFileSync(pwFile, 'etcd-secret\n', { mode: 0o600 });
    const res = initNodeConfig(
      {
        ...base,
        listen: '0.0.0.0',
        connectAddress: '10.0.0.22',
        dataDir: '/srv/pg/data',
        tls: { ca: '/etc/pgkeel/tls/ca.crt', cert: '/etc/pgkeel/tls/node1.crt', key: '/etc/pgkeel/tls/node1.key' },
        etcd: {
          hosts: ['10.0.0.11:2379'],
          protocol: 'https',
          cacert: '/etc/pgkeel/tls/etcd-ca.crt',
          cert: '/etc/pgkeel/tls/etcd.crt',
          key: '/etc/pgkeel/tls/etcd.key',
          username: 'pgkeel',
          password_file: pwFile,
        },
      },
      deps,
    );
    checked(res.text, 'tls.yml');
    const c = loadConfig(join(dir, 'tls.yml'), {});
    assert.equal(c.restapi.listen, '0.0.0.0:8008');
    assert.equal(c.restapi.connect_address, '10.0.0.22:8008');
    assert.equal(c.restapi.certfile, '/etc/pgkeel/tls/node1.crt');
    assert.equal(c.restapi.verify_client, 'optional');
    assert.equal(c.ctl.certfile, '/etc/pgkeel/tls/node1.crt');
    assert.equal(c.ctl.cacert, '/etc/pgkeel/tls/ca.crt');
    assert.equal(c.postgresql.parameters['ssl'], 'on');
    assert.equal(c.postgresql.authentication.replication.sslmode, 'verify-full');
    assert.equal(c.postgresql.authentication.superuser.sslrootcert, '/etc/pgkeel/tls/ca.crt');
    assert.equal(c.postgresql.data_dir, '/srv/pg/data');
    assert.equal(c.etcd3.protocol, 'https');
    assert.equal(c.etcd3.cert, '/etc/pgkeel/tls/etcd.crt');
    assert.equal(c.etcd3.username, 'pgkeel');
    assert.equal(c.etcd3.password_file, pwFile);
  });

  it('--secrets-from: generates missing password files once (0600) and names them; a second host reuses them', () => {
    const secrets = join(dir, 'secrets');
    const first = initNodeConfig({ ...base, secretsFrom: secrets }, deps);
    assert.equal(first.created.length, 3);
    for (const f of first.created) assert.equal(statSync(f).mode & 0o777, 0o600);
    assert.equal(statSync(secrets).mode & 0o777, 0o700);
    assert.doesNotMatch(first.text, /secret-\d+/, 'no password inline');
    const doc = parse(first.text) as { postgresql: { authentication: { superuser: Record<string, string> } } };
    assert.deepEqual(doc.postgresql.authentication.superuser, {
      username: 'postgres',
      password_file: secretFile(secrets, 'superuser'),
    });
    const second = initNodeConfig({ ...base, name: 'node2', listen: '10.0.0.23', secretsFrom: secrets }, deps);
    assert.deepEqual(second.created, []);
    checked(second.text, 'node2.yml');
    writeFileSync(join(dir, 'n1.yml'), first.text);
    const c1 = loadConfig(join(dir, 'n1.yml'), {});
    const c2 = loadConfig(join(dir, 'node2.yml'), {});
    assert.equal(c1.postgresql.authentication.replication.password, c2.postgresql.authentication.replication.password);
    assert.equal(c1.restapi.authentication?.password, readFileSync(secretFile(secrets, 'restapi'), 'utf8').trim());
  });

  it('refuses what the checker would refuse, and a wildcard without a connect address', () => {
    assert.deepEqual(
      configProblems(() => initNodeConfig({ ...base, listen: '0.0.0.0' }, deps)),
      [
        '--connect-address: is required with --listen 0.0.0.0: the address other members reach this host at (a wildcard is not one)',
      ],
    );
    assert.match(
      configProblems(() => initNodeConfig({ ...base, listen: 'db1' }, deps))[0] ?? '',
      /^--listen: expected an IP/,
    );
    assert.match(
      configProblems(() => initNodeConfig(base, { ...deps, hostAddress: () => undefined }))[0] ?? '',
      /no non-loopback IPv4/,
    );
    assert.match(configProblems(() => initNodeConfig({ ...base, scope: 'no/slash' }, deps)).join('\n'), /^scope: /m);
    assert.match(
      configProblems(() => initNodeConfig({ ...base, etcd: { hosts: ['etcd1'] } }, deps)).join('\n'),
      /^etcd3\.hosts/m,
    );
    const empty = join(dir, 'empty-secrets');
    initNodeConfig({ ...base, secretsFrom: empty }, deps);
    writeFileSync(secretFile(empty, 'replication'), '\n');
    assert.match(
      configProblems(() => initNodeConfig({ ...base, secretsFrom: empty }, deps))[0] ?? '',
      /replication\.password is empty/,
    );
  });

  it('reads its flags: comma-separated etcd hosts, TLS files all or none, etcd pairs', () => {
    const o = initOptionsFromFlags({ scope: 's', name: 'n', etcd: 'a:1, b:2,', 'pg-port': 5433 });
    assert.deepEqual(o.etcd, { hosts: ['a:1', 'b:2'] });
    assert.equal(o.pgPort, 5433);
    assert.equal(o.tls, undefined);
    const e = { scope: 's', name: 'n', etcd: 'a:1' };
    assert.deepEqual(
      initOptionsFromFlags({
        ...e,
        'etcd-ca-file': 'ca',
        'etcd-cert-file': 'c',
        'etcd-key-file': 'k',
        'etcd-user': 'u',
        'etcd-password-file': 'pw',
      }).etcd,
      { hosts: ['a:1'], protocol: 'https', cacert: 'ca', cert: 'c', key: 'k', username: 'u', password_file: 'pw' },
    );
    assert.throws(() => initOptionsFromFlags({ scope: 's', name: 'n' }), /needs --etcd/);
    assert.throws(
      () => initOptionsFromFlags({ ...e, 'ca-file': 'ca' }),
      /--ca-file, --cert-file and --key-file together/,
    );
    assert.throws(
      () => initOptionsFromFlags({ ...e, 'etcd-cert-file': 'c', 'etcd-key-file': 'k' }),
      /needs --etcd-ca-file/,
    );
    assert.throws(() => initOptionsFromFlags({ ...e, 'etcd-user': 'u' }), /together/);
  });
});
