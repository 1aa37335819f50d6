import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fixture, leaderFixture, NOW } from '../../test/fakes/observed.js';
import { decide } from '../ha/decide.js';
import type { Decision } from '../ha/view.js';
import { vipCycleInput } from './agent-vip.js';

const noAction: Decision = { summary: 'no action', actions: [], role: 'primary' };

describe("vipCycleInput: one cycle's observation and decision, as the VIP policy reads them", () => {
  it('the leader: key held, writable primary, the lease left from the last renewal', () => {
    const o = leaderFixture({ lastRenew: { ok: true, at: NOW - 4000 }, settings: { ttl: 30 } });
    assert.deepEqual(vipCycleInput(o, noAction, null, false, NOW), {
      holdsLock: true,
      writablePrimary: true,
      demoting: false,
      shuttingDown: false,
      leaseLeftMs: 26_000,
    });
  });

  it('a replica: no key, in recovery, no lease to hold on', () => {
    const input = vipCycleInput(fixture(), decide(fixture()), null, false, NOW);
    assert.deepEqual([input.holdsLock, input.writablePrimary, input.leaseLeftMs], [false, false, 0]);
  });

  it('demoting: a demote or restart decided this cycle, or one still running', () => {
    const o = leaderFixture();
    const demote: Decision = { summary: 's', actions: [{ kind: 'demote', mode: 'graceful' }], role: 'demoted' };
    assert.equal(vipCycleInput(o, demote, null, false, NOW).demoting, true);
    assert.equal(vipCycleInput(o, noAction, { what: 'demote', since: NOW }, false, NOW).demoting, true);
    assert.equal(vipCycleInput(o, noAction, { what: 'restart', since: NOW }, false, NOW).demoting, true);
    assert.equal(vipCycleInput(o, noAction, { what: 'promote', since: NOW }, false, NOW).demoting, false);
  });

  it('a failed renewal or a lease past its end leaves no time to hold', () => {
    const failed = leaderFixture({ lastRenew: { ok: false, at: NOW } });
    assert.equal(vipCycleInput(failed, noAction, null, false, NOW).leaseLeftMs, 0);
    const old = leaderFixture({ lastRenew: { ok: true, at: NOW - 60_000 }, settings: { ttl: 30 } });
    assert.equal(vipCycleInput(old, noAction, null, false, NOW).leaseLeftMs, 0);
  });
});
