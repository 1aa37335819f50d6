import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { configFromObject } from '../config/load.js';
import { ConfigError } from '../config/schema.js';
import { vipListenWarning } from './config.js';

const node = (vip: unknown) => ({
  scope: 's',
  name: 'n1',
  postgresql: { data_dir: '/d', authentication: { superuser: { password: 's' }, replication: { password: 'r' } } },
  vip,
});

function problems(vip: unknown): string[] {
  try {
    configFromObject(node(vip), 't', {}, '/');
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
}

describe('vip config section', () => {
  it('is optional; given, it needs address, interface and netmask', () => {
    assert.equal(configFromObject(node(undefined), 't', {}, '/').vip, undefined);
    const vip = { address: '10.0.0.100', interface: 'eth0', netmask: 24 };
    assert.deepEqual(configFromObject(node(vip), 't', {}, '/').vip, vip);
    assert.deepEqual(problems({}), [
      'vip.address: is required: expected an IPv4 address, e.g. 10.0.0.100',
      'vip.interface: is required: expected a network interface name, e.g. eth0',
      'vip.netmask: is required: expected an integer (bits) >= 1 <= 32',
    ]);
  });

  it('refuses a malformed address, interface or prefix length, and unknown keys', () => {
    const ok = { address: '10.0.0.100', interface: 'eth0', netmask: 24 };
    assert.equal(problems({ ...ok, address: '10.0.0.300' }).length, 1);
    assert.equal(problems({ ...ok, address: '::1' }).length, 1);
    assert.equal(problems({ ...ok, interface: 'eth0; rm -rf /' }).length, 1);
    assert.equal(problems({ ...ok, netmask: 33 }).length, 1);
    assert.match(problems({ ...ok, adress: 'x' }).join('\n'), /vip\.adress: unknown key \(did you mean "address"\?\)/);
  });
});

describe('vipListenWarning: will PostgreSQL answer on the VIP?', () => {
  const vip = { address: '10.0.0.100', interface: 'eth0', netmask: 24 };
  it('every address ("*", 0.0.0.0): no warning', () => {
    assert.equal(vipListenWarning(vip, ['*'], false), null);
    assert.equal(vipListenWarning(vip, ['0.0.0.0'], false), null);
  });
  it('the VIP listed: fine with ip_nonlocal_bind = 1 (or unknown), a warning with 0', () => {
    assert.equal(vipListenWarning(vip, ['10.0.0.11', '10.0.0.100'], true), null);
    assert.equal(vipListenWarning(vip, ['10.0.0.11', '10.0.0.100'], null), null);
    assert.match(vipListenWarning(vip, ['10.0.0.11', '10.0.0.100'], false) ?? '', /ip_nonlocal_bind is 0/);
  });
  it('the VIP not listed: PostgreSQL will not answer on it', () => {
    assert.match(vipListenWarning(vip, ['10.0.0.11'], true) ?? '', /does not include the VIP 10\.0\.0\.100/);
  });
});
