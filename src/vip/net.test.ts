import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LinuxVipNet, type Runner } from './net.js';
import type { HaError } from '../ha/errors.js';

type Answer = { code: number; stdout?: string; stderr?: string };

function recording(answer: (cmd: string, args: readonly string[]) => Answer = () => ({ code: 0 })) {
  const calls: string[] = [];
  const runner: Runner = async (cmd, args) => {
    calls.push([cmd, ...args].join(' '));
    const a = answer(cmd, args);
    return { code: a.code, stdout: a.stdout ?? '', stderr: a.stderr ?? '' };
  };
  return { calls, net: new LinuxVipNet(runner) };
}

const SHOW = [
  '2: eth0    inet 10.0.0.11/24 brd 10.0.0.255 scope global eth0\\       valid_lft forever preferred_lft forever',
  '2: eth0    inet 10.0.0.100/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever',
].join('\n');

describe('LinuxVipNet (iproute2 + iputils arping)', () => {
  it('runs ip addr add/del with the prefix, and arping -U twice on the interface', async () => {
    const { calls, net } = recording();
    await net.add('10.0.0.100', 24, 'eth0');
    await net.remove('10.0.0.100', 24, 'eth0');
    await net.announce('10.0.0.100', 'eth0');
    assert.deepEqual(calls, [
      'ip addr add 10.0.0.100/24 dev eth0',
      'ip addr del 10.0.0.100/24 dev eth0',
      'arping -U -c 2 -I eth0 10.0.0.100',
    ]);
  });

  it('has(): the exact address on the device, not a longer one that starts the same', async () => {
    const { calls, net } = recording(() => ({ code: 0, stdout: SHOW }));
    assert.equal(await net.has('10.0.0.100', 'eth0'), true);
    assert.equal(await net.has('10.0.0.1', 'eth0'), false);
    assert.equal(await net.has('10.0.0.10', 'eth0'), false);
    assert.equal(calls[0], 'ip -o -4 addr show dev eth0');
  });

  it('adding a held address or removing an absent one is not an error', async () => {
    const exists = recording(() => ({ code: 2, stderr: 'RTNETLINK answers: File exists' }));
    await exists.net.add('10.0.0.100', 24, 'eth0');
    const absent = recording(() => ({ code: 2, stderr: 'RTNETLINK answers: Cannot assign requested address' }));
    await absent.net.remove('10.0.0.100', 24, 'eth0');
  });

  it('other failures throw HA_VIP_COMMAND_FAILED with the output as detail; a missing program too', async () => {
    const denied = recording(() => ({ code: 2, stderr: 'RTNETLINK answers: Operation not permitted\n' }));
    await assert.rejects(denied.net.add('10.0.0.100', 24, 'eth0'), (err: HaError) => {
      assert.equal(err.code, 'HA_VIP_COMMAND_FAILED');
      assert.equal(err.message, 'VIP add: ip addr add 10.0.0.100/24 dev eth0 exited with 2');
      assert.equal(err.detail, 'RTNETLINK answers: Operation not permitted');
      return true;
    });
    const noDev = recording(() => ({ code: 1, stderr: 'Device "eth9" does not exist.' }));
    await assert.rejects(noDev.net.has('10.0.0.100', 'eth9'), /VIP check: ip -o -4 addr show dev eth9 exited with 1/);
    const missing = new LinuxVipNet(async () => {
      throw Object.assign(new Error('spawn arping ENOENT'), { code: 'ENOENT' });
    });
    await assert.rejects(
      missing.announce('10.0.0.100', 'eth0'),
      /VIP announce: cannot run arping: spawn arping ENOENT/,
    );
  });
});
