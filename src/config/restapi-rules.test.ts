import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { configFromObject } from './load.js';
import { ConfigError } from './schema.js';
import { isLoopbackHost } from '../lib/net.js';

const base = (restapi: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  scope: 'demo',
  name: 'n1',
  restapi,
  postgresql: {
    data_dir: '/var/lib/pgkeel/n1',
    authentication: { superuser: { password: 's' }, replication: { password: 'r' } },
  },
  ...extra,
});

function problems(raw: unknown): string[] {
  try {
    configFromObject(raw, 'test.yml', {}, '/etc/pgkeel');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  return [];
}

const AUTH = { username: 'u', password: 'p' };

describe('config: restapi fails closed', () => {
  it('refuses a non-loopback listener without credentials, naming restapi.authentication', () => {
    for (const listen of ['0.0.0.0:8008', '[::]:8008', '10.0.0.5:8008', 'db1.example.com:8008']) {
      const p = problems(base({ listen }));
      assert.equal(p.length, 1, `${listen}: ${p.join('\n')}`);
      assert.match(
        p[0] as string,
        /^restapi\.authentication: is required when restapi\.listen is not a loopback address/,
      );
      assert.deepEqual(problems(base({ listen, authentication: AUTH })), [], listen);
    }
  });

  it('accepts a loopback-only listener without credentials (only local users reach it)', () => {
    for (const listen of ['127.0.0.1:8008', '127.0.0.2:8008', 'localhost:8008', '[::1]:8008'])
      assert.deepEqual(problems(base({ listen })), [], listen);
    assert.equal(isLoopbackHost('::ffff:127.0.0.1'), true);
    for (const h of ['0.0.0.0', '::', '128.0.0.1', '127.0.0.1.example.com', 'localhost.example.com'])
      assert.equal(isLoopbackHost(h), false, h);
  });

  it('TLS keys: verify_client needs cafile and certfile; files resolve next to the config', () => {
    assert.deepEqual(problems(base({ verify_client: 'required', certfile: 'a.crt' })), [
      'restapi.cafile: is required with restapi.verify_client: required (the CA client certificates must chain to)',
    ]);
    assert.ok(problems(base({ keyfile: 'a.key' })).includes('restapi.keyfile: needs restapi.certfile (https) as well'));
    assert.ok(
      problems(base({ verify_client: 'sometimes' })).some((p) =>
        p.startsWith('restapi.verify_client: expected one of none, optional, required'),
      ),
      problems(base({ verify_client: 'sometimes' })).join('\n'),
    );
    const c = configFromObject(
      base(
        { certfile: 'tls/n1.crt', keyfile: 'tls/n1.key', cafile: '/ca.crt', verify_client: 'optional' },
        { ctl: { cacert: 'tls/ca.crt', insecure: true } },
      ),
      'test.yml',
      {},
      '/etc/pgkeel',
    );
    assert.equal(c.restapi.certfile, '/etc/pgkeel/tls/n1.crt');
    assert.equal(c.restapi.cafile, '/ca.crt');
    assert.equal(c.ctl.cacert, '/etc/pgkeel/tls/ca.crt');
    assert.equal(c.ctl.insecure, true);
    assert.equal(configFromObject(base({}), 'x', {}, '/').restapi.verify_client, 'none');
  });
});
