import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { recordingLogger, type LogLine } from '../../test/helpers/wait.js';
import type { VipNet } from './net.js';
import { VipController, type GuardPort, type VipCycleInput } from './vip.js';

const CFG = { address: '10.0.0.100', interface: 'eth0', netmask: 24 };
const LEADER: VipCycleInput = {
  holdsLock: true,
  writablePrimary: true,
  demoting: false,
  shuttingDown: false,
  leaseLeftMs: 8000,
};
const REPLICA: VipCycleInput = { ...LEADER, holdsLock: false, writablePrimary: false };

/** A fake interface and guard that record what was done to them, in one list. */
function harness(opts: { failAdd?: string; announce?: Promise<void> } = {}) {
  const calls: string[] = [];
  const held = new Set<string>();
  const net: VipNet = {
    has: async (a) => held.has(a),
    add: async (a, p, d) => {
      calls.push(`add ${a}/${p} ${d}`);
      if (opts.failAdd) throw Object.assign(new Error(opts.failAdd), { code: 'HA_VIP_COMMAND_FAILED' });
      held.add(a);
    },
    remove: async (a, p, d) => {
      calls.push(`remove ${a}/${p} ${d}`);
      held.delete(a);
    },
    announce: async (a, d) => {
      calls.push(`announce ${a} ${d}`);
      await opts.announce;
    },
  };
  const guard: GuardPort = {
    hold: (ms) => void calls.push(`guard hold ${ms}`),
    release: () => void calls.push('guard release'),
    close: async () => void calls.push('guard close'),
  };
  const logs: LogLine[] = [];
  const vip = new VipController(CFG, net, guard, recordingLogger(logs));
  return { calls, held, vip, logs };
}

describe('VipController', () => {
  it('leader: the guard is told first, then the address is added and announced once; later cycles keep it', async () => {
    const h = harness();
    assert.equal((await h.vip.cycle(LEADER))?.kind, 'add');
    assert.equal((await h.vip.cycle(LEADER))?.kind, 'keep');
    assert.deepEqual(h.calls, [
      'guard hold 8000',
      'add 10.0.0.100/24 eth0',
      'announce 10.0.0.100 eth0',
      'guard hold 8000',
    ]);
  });

  it('a replica that finds the address removes it and tells the guard; then holds none', async () => {
    const h = harness();
    h.held.add('10.0.0.100');
    assert.equal((await h.vip.cycle(REPLICA))?.kind, 'remove');
    assert.equal((await h.vip.cycle(REPLICA))?.kind, 'none');
    assert.deepEqual(h.calls, ['remove 10.0.0.100/24 eth0', 'guard release']);
    assert.deepEqual(
      h.logs.map((l) => l.msg),
      ['removing the VIP: this member does not hold the leader key'],
    );
  });

  it('drop() removes at once without waiting for an announcement in progress; close() ends the guard', async () => {
    let finish = () => {};
    const h = harness({ announce: new Promise<void>((r) => (finish = r)) });
    await h.vip.cycle(LEADER);
    await h.vip.drop('demoting (graceful)');
    assert.equal(h.held.has('10.0.0.100'), false);
    assert.ok(h.logs.some((l) => l.msg === 'removing the VIP: demoting (graceful)'));
    finish();
    await h.vip.close();
    assert.deepEqual(h.calls.slice(-2), ['guard release', 'guard close']);
  });

  it('a failing command is logged once with its code and retried next cycle; the loop never sees it', async () => {
    const h = harness({ failAdd: 'VIP add: ip addr add 10.0.0.100/24 dev eth0 exited with 2' });
    assert.equal(await h.vip.cycle(LEADER), null);
    assert.equal(await h.vip.cycle(LEADER), null);
    assert.equal(h.calls.filter((c) => c.startsWith('add')).length, 2);
    const warned = h.logs.filter((l) => l.level === 'warn');
    assert.equal(warned.length, 1);
    assert.equal(warned[0]?.fields?.['code'], 'HA_VIP_COMMAND_FAILED');
  });
});
