import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../config/schema.js';
import { poolSettingsFor, proxyConfigFromObject } from './config.js';

describe('proxy config', () => {
  it('fills defaults and per-database/user overrides', () => {
    const c = proxyConfigFromObject(
      {
        listen: '127.0.0.1:6432',
        primary: '127.0.0.1:5432',
        auth_type: 'trust',
        databases: { app: { pool_mode: 'session', pool_size: 5 } },
        users: { bob: { pool_size: 2 } },
      },
      't',
    );
    assert.equal(c.pool_mode, 'transaction');
    assert.equal(c.default_pool_size, 20);
    assert.deepEqual(poolSettingsFor(c, 'app', 'alice'), { mode: 'session', size: 5 });
    assert.deepEqual(poolSettingsFor(c, 'app', 'bob'), { mode: 'session', size: 2 });
  });

  it('rejects unknown keys with a suggestion and invalid combinations', () => {
    assert.throws(
      () => proxyConfigFromObject({ listen: '127.0.0.1:1', primary: 'h:1', pool_sise: 3 }, 't'),
      (e) => e instanceof ConfigError && /did you mean "pool_size"|did you mean/.test(e.message),
    );
    assert.throws(() => proxyConfigFromObject({ listen: '127.0.0.1:1' }, 't'), /primary: is required unless etcd/);
    assert.throws(
      () => proxyConfigFromObject({ listen: '127.0.0.1:1', primary: 'h:1', auth_type: 'md5' }, 't'),
      /auth_file: is required/,
    );
    assert.throws(
      () => proxyConfigFromObject({ listen: '127.0.0.1:1', primary: 'h:1', etcd: { hosts: ['e:1'], scope: 's' } }, 't'),
      /not both/,
    );
    assert.throws(() => proxyConfigFromObject({ listen: '127.0.0.1:1', primary: 'h:1', workers: 33 }, 't'), /workers/);
  });

  it('authenticates with scram-sha-256 by default: no auth file is an error, trust only when written', () => {
    assert.throws(
      () => proxyConfigFromObject({ listen: '127.0.0.1:1', primary: 'h:1' }, 't'),
      (e) =>
        e instanceof ConfigError &&
        e.problems.some(
          (p) =>
            p.path === 'auth_file' &&
            /auth_type scram-sha-256/.test(p.message) &&
            /auth_type: trust explicitly/.test(p.message),
        ),
    );
    assert.equal(
      proxyConfigFromObject({ listen: '127.0.0.1:1', primary: 'h:1', auth_file: 'u.txt' }, 't').auth_type,
      'scram-sha-256',
    );
    assert.equal(
      proxyConfigFromObject({ listen: '127.0.0.1:1', primary: 'h:1', auth_type: 'trust' }, 't').auth_type,
      'trust',
    );
  });
});
