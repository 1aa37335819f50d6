import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromObject } from './load.js';
import { ConfigError } from './schema.js';
import { etcdStoreOptions } from './etcd-section.js';
import { proxyConfigFromObject } from '../proxy/config.js';
import { authRefusal, shouldRenew } from '../dcs/etcd-auth.js';

const node = (etcd3: Record<string, unknown>) => ({
  scope: 'demo',
  name: 'n1',
  etcd3: { hosts: ['127.0.0.1:2379'], ...etcd3 },
  postgresql: {
    data_dir: '/var/lib/pgkeel/n1',
    authentication: { superuser: { password: 's' }, replication: { password: 'r' } },
  },
});
const proxy = (etcd: Record<string, unknown>) => ({
  listen: '127.0.0.1:6432',
  auth_type: 'trust',
  etcd: { hosts: ['127.0.0.1:2379'], scope: 'demo', ...etcd },
});

function problems(f: () => unknown): string[] {
  try {
    f();
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  return [];
}

describe('etcd client settings (node etcd3, proxy etcd)', () => {
  it("accepts Patroni's etcd3 keys and resolves certificate paths from the config file's directory", () => {
    const c = configFromObject(
      node({
        protocol: 'https',
        cacert: 'tls/ca.crt',
        cert: 'tls/me.crt',
        key: 'tls/me.key',
        username: 'pgkeel',
        password: 'pw',
      }),
      'n.yml',
      {},
      '/etc/pgkeel',
    );
    assert.deepEqual(c.etcd3, {
      hosts: ['127.0.0.1:2379'],
      protocol: 'https',
      cacert: '/etc/pgkeel/tls/ca.crt',
      cert: '/etc/pgkeel/tls/me.crt',
      key: '/etc/pgkeel/tls/me.key',
      username: 'pgkeel',
      password: 'pw',
    });
    const p = proxyConfigFromObject(proxy({ protocol: 'https', cacert: 'ca.crt' }), 'p.yml', '/etc/pgkeel');
    assert.equal(p.etcd?.cacert, '/etc/pgkeel/ca.crt');
  });

  it('keeps plain http with no credentials by default', () => {
    const c = configFromObject(node({}), 'n.yml', {}, '/etc/pgkeel');
    assert.deepEqual(c.etcd3, { hosts: ['127.0.0.1:2379'], protocol: 'http' });
    assert.deepEqual(etcdStoreOptions(c.etcd3, 1000, 'etcd3', 'n.yml'), {
      hosts: ['127.0.0.1:2379'],
      requestTimeoutMs: 1000,
      protocol: 'http',
    });
  });

  it('refuses a username without password and the reverse, naming the key', () => {
    assert.deepEqual(
      problems(() => configFromObject(node({ username: 'pgkeel' }), 'n.yml', {})),
      ['etcd3.password: is required with etcd3.username (or etcd3.password_file)'],
    );
    assert.deepEqual(
      problems(() => configFromObject(node({ password: 'pw' }), 'n.yml', {})),
      ['etcd3.username: is required with etcd3.password'],
    );
    assert.deepEqual(
      problems(() => configFromObject(node({ password_file: 'pw.txt' }), 'n.yml', {})),
      ['etcd3.username: is required with etcd3.password_file'],
    );
    assert.deepEqual(
      problems(() => configFromObject(node({ username: 'u', password: 'pw', password_file: 'pw.txt' }), 'n.yml', {})),
      ['etcd3.password_file: give either etcd3.password or etcd3.password_file, not both'],
    );
    assert.deepEqual(
      problems(() => proxyConfigFromObject(proxy({ username: 'pgkeel' }), 'p.yml')),
      ['etcd.password: is required with etcd.username (or etcd.password_file)'],
    );
  });

  it('refuses cert without key (and the reverse)', () => {
    assert.deepEqual(
      problems(() => configFromObject(node({ protocol: 'https', cert: 'a.crt' }), 'n.yml', {})),
      ['etcd3.key: is required with etcd3.cert'],
    );
    assert.deepEqual(
      problems(() => configFromObject(node({ protocol: 'https', key: 'a.key' }), 'n.yml', {})),
      ['etcd3.cert: is required with etcd3.key'],
    );
  });

  it('refuses certificate keys with protocol http, and protocols other than http/https', () => {
    assert.deepEqual(
      problems(() => configFromObject(node({ cacert: 'ca.crt' }), 'n.yml', {})),
      ['etcd3.cacert: needs etcd3.protocol https (got http): certificates are only used over TLS'],
    );
    assert.equal(problems(() => proxyConfigFromObject(proxy({ cert: 'a', key: 'b' }), 'p.yml')).length, 2);
    assert.match(
      problems(() => configFromObject(node({ protocol: 'spdy' }), 'n.yml', {})).join(),
      /etcd3.protocol: expected one of http, https/,
    );
  });

  it('takes the password from PGKEEL_ETCD3_PASSWORD', () => {
    const c = configFromObject(
      node({ username: 'pgkeel' }),
      'n.yml',
      { PGKEEL_ETCD3_PASSWORD: 'fromenv' },
      '/etc/pgkeel',
    );
    assert.equal(c.etcd3.password, 'fromenv');
  });

  it('reads the PEM files into store options, and names the key of a file it cannot read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgkeel-etcd-section-'));
    try {
      writeFileSync(join(dir, 'ca.crt'), 'CA PEM');
      const c = configFromObject(
        node({ protocol: 'https', cacert: 'ca.crt', username: 'u', password: 'p' }),
        'n.yml',
        {},
        dir,
      );
      assert.deepEqual(etcdStoreOptions(c.etcd3, 500, 'etcd3', 'n.yml'), {
        hosts: ['127.0.0.1:2379'],
        requestTimeoutMs: 500,
        protocol: 'https',
        tls: { ca: 'CA PEM', cert: undefined, key: undefined },
        username: 'u',
        password: 'p',
      });
      const missing = configFromObject(node({ protocol: 'https', cert: 'no.crt', key: 'no.key' }), 'n.yml', {}, dir);
      assert.deepEqual(
        problems(() => etcdStoreOptions(missing.etcd3, 500, 'etcd3', 'n.yml')),
        [
          `etcd3.cert: cannot read ${join(dir, 'no.crt')}: ENOENT`,
          `etcd3.key: cannot read ${join(dir, 'no.key')}: ENOENT`,
        ],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes the password from password_file (first line), refusing a file others can read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgkeel-etcd-pwfile-'));
    try {
      writeFileSync(join(dir, 'pw'), 'from-file\n', { mode: 0o600 });
      writeFileSync(join(dir, 'open'), 'x\n', { mode: 0o644 });
      const c = configFromObject(node({ username: 'u', password_file: 'pw' }), 'n.yml', {}, dir);
      assert.equal(etcdStoreOptions(c.etcd3, 500, 'etcd3', 'n.yml').password, 'from-file');
      const open = configFromObject(node({ username: 'u', password_file: 'open' }), 'n.yml', {}, dir);
      assert.deepEqual(
        problems(() => etcdStoreOptions(open.etcd3, 500, 'etcd3', 'n.yml')),
        [
          `etcd3.password_file: ${join(dir, 'open')} is readable or writable by group or others (mode 0644); chmod 600 it`,
        ],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('etcd authentication refusals', () => {
  it("sorts etcd's answers into DCS_AUTH errors naming the endpoint and user", () => {
    const bad = authRefusal(
      'e:1',
      '/v3/auth/authenticate',
      'etcdserver: authentication failed, invalid user ID or password (grpc code 3, HTTP 400)',
      'pgkeel',
    );
    assert.equal(bad?.code, 'DCS_AUTH');
    assert.match(bad?.message ?? '', /etcd e:1 refused the credentials of user "pgkeel"/);
    assert.match(
      authRefusal('e:1', '/v3/kv/put', 'etcdserver: user name is empty', undefined)?.message ?? '',
      /requires authentication .* no user is configured/,
    );
    assert.match(
      authRefusal('e:1', '/v3/kv/put', 'etcdserver: permission denied', 'pgkeel')?.message ?? '',
      /denied user "pgkeel" \/v3\/kv\/put/,
    );
    assert.match(
      authRefusal(
        'e:1',
        '/v3/kv/put',
        'HTTP 400: CommonName of client sending a request against gateway will be ignored',
        'u',
      )?.message ?? '',
      /without CN/,
    );
    assert.equal(authRefusal('e:1', '/v3/kv/put', 'etcdserver: requested lease not found', 'u'), undefined);
  });

  it('renews a token that expired, and asks for one when etcd enabled auth after we found it disabled', () => {
    assert.equal(shouldRenew('etcdserver: invalid auth token (grpc code 16, HTTP 401)', 'tok'), true);
    assert.equal(shouldRenew('etcdserver: revision of auth store is old', 'tok'), true);
    assert.equal(shouldRenew('etcdserver: user name is empty', ''), true);
    assert.equal(shouldRenew('etcdserver: user name is empty', 'tok'), false);
    assert.equal(shouldRenew('etcdserver: permission denied', 'tok'), false);
  });
});
