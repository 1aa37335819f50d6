/** proxy.yml against hostile input (issue 8): Object.prototype names as keys, out-of-range ports, client-chosen names. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../config/schema.js';
import { poolSettingsFor, proxyConfigFromObject, reservePoolFor } from './config.js';
import { workerConfig } from './workers/workers-config.js';

const base = { listen: '127.0.0.1:6432', primary: '127.0.0.1:5432', auth_type: 'trust' };

function problems(raw: Record<string, unknown>): string[] {
  try {
    proxyConfigFromObject(raw, 'proxy.yml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  return [];
}

describe('proxy config: keys are own properties', () => {
  it('refuses constructor, toString, hasOwnProperty and __proto__ as unknown keys, at the top and in etcd', () => {
    const raw = {
      ...base,
      ...JSON.parse('{"constructor":{"prototype":{"x":1}},"toString":1,"__proto__":{"polluted":1},"hasOwnProperty":1}'),
    } as Record<string, unknown>;
    delete raw['primary'];
    raw['etcd'] = JSON.parse('{"hosts":["127.0.0.1:2379"],"scope":"s","constructor":1}');
    const p = problems(raw);
    for (const key of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'etcd.constructor']) {
      assert.ok(
        p.some((x) => x.startsWith(`${key}: unknown key`)),
        `${key} refused:\n${p.join('\n')}`,
      );
    }
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });

  it('refuses Object.prototype names inside a per-user override; a user called "constructor" gets the defaults', () => {
    const p = problems({ ...base, users: { bob: JSON.parse('{"pool_size":2,"constructor":1}') } });
    assert.ok(
      p.some((x) => x.startsWith('users.bob.constructor: unknown key')),
      p.join('\n'),
    );
    const c = proxyConfigFromObject(
      { ...base, users: JSON.parse('{"__proto__":{"pool_size":3},"bob":{"pool_size":2}}') },
      't',
    );
    assert.deepEqual(poolSettingsFor(c, 'app', '__proto__'), { mode: 'transaction', size: 3 });
    assert.deepEqual(poolSettingsFor(c, 'constructor', 'constructor'), { mode: 'transaction', size: 20 });
    assert.deepEqual(poolSettingsFor(c, 'app', 'toString'), { mode: 'transaction', size: 20 });
    assert.equal(reservePoolFor(c, 'hasOwnProperty', 'valueOf'), 0);
    const w = workerConfig(c, 0, 2);
    assert.deepEqual(poolSettingsFor(w, 'app', 'constructor'), { mode: 'transaction', size: 10 });
    assert.equal(Object.keys(w.users).sort().join(','), '__proto__,bob');
  });
});

describe('proxy config: ports', () => {
  for (const port of [70000, 99999]) {
    it(`refuses port ${port} in every host:port setting, naming the key`, () => {
      const hp = `127.0.0.1:${port}`;
      const p = problems({ ...base, listen: hp, ro_listen: hp, metrics_listen: hp, primary: hp, replicas: [hp] });
      for (const key of ['listen', 'ro_listen', 'metrics_listen', 'primary', 'replicas[0]']) {
        assert.ok(
          p.some((x) => x.startsWith(`${key}: expected a port from`) && x.endsWith(`got "${hp}"`)),
          `${key}:\n${p.join('\n')}`,
        );
      }
    });
  }

  it('refuses port 0 for a server, allows it for a listener (any free port)', () => {
    const p = problems({ ...base, listen: '127.0.0.1:0', primary: '127.0.0.1:0', etcd: undefined });
    assert.deepEqual(p, ['primary: expected a port from 1 to 65535, got "127.0.0.1:0"']);
    const e = problems({ listen: '127.0.0.1:0', auth_type: 'trust', etcd: { hosts: ['127.0.0.1:0'], scope: 's' } });
    assert.deepEqual(e, ['etcd.hosts[0]: expected a port from 1 to 65535, got "127.0.0.1:0"']);
  });
});
