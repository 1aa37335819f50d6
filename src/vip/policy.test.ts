import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { vipStep, type VipView } from './policy.js';

const leader: VipView = {
  holdsLock: true,
  writablePrimary: true,
  demoting: false,
  shuttingDown: false,
  held: false,
  announced: false,
  leaseLeftMs: 9000,
};

describe('VIP policy: the leader holds it, nobody else does', () => {
  it('the leader adds it (and the guard holds it for the lease left), announces a held one once, then keeps it', () => {
    assert.deepEqual(vipStep(leader), {
      kind: 'add',
      reason: 'adding the VIP: I hold the leader key and PostgreSQL accepts writes',
      holdMs: 9000,
    });
    assert.equal(vipStep({ ...leader, held: true }).kind, 'announce');
    assert.deepEqual(vipStep({ ...leader, held: true, announced: true }), {
      kind: 'keep',
      reason: 'holding the VIP',
      holdMs: 9000,
    });
  });

  const table: ReadonlyArray<readonly [string, Partial<VipView>, string]> = [
    [
      'a replica (no leader key)',
      { holdsLock: false, writablePrimary: false },
      'this member does not hold the leader key',
    ],
    [
      'the key holder whose PostgreSQL is still in recovery (promoting)',
      { writablePrimary: false },
      'PostgreSQL does not accept writes here',
    ],
    ['a primary without the key (lost it)', { holdsLock: false }, 'this member does not hold the leader key'],
    ['a leader about to demote or restart', { demoting: true }, 'PostgreSQL is being demoted or restarted'],
    ['a stopping agent, even as leader', { shuttingDown: true }, 'the agent is stopping'],
    ['a leader whose lease has run out', { leaseLeftMs: 0 }, "the leader key's lease has no time left"],
  ];
  for (const [who, over, why] of table) {
    it(`${who}: removes a held VIP, else holds none — "${why}"`, () => {
      assert.deepEqual(vipStep({ ...leader, ...over, held: true, announced: true }), {
        kind: 'remove',
        reason: `removing the VIP: ${why}`,
      });
      assert.deepEqual(vipStep({ ...leader, ...over, held: false }), {
        kind: 'none',
        reason: `not holding the VIP: ${why}`,
      });
    });
  }
});
