import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clusterHealth, type HealthInput, memberLevel } from './health.js';

type M = HealthInput['members'][number];
const leader: M = { name: 'node1', role: 'leader', state: 'running', lag_bytes: 0, pending_restart: false };
const replica = (name: string, over: Partial<M> = {}): M => ({
  name,
  role: 'replica',
  state: 'streaming',
  lag_bytes: 0,
  pending_restart: false,
  ...over,
});
const base: HealthInput = {
  leader: 'node1',
  members: [leader, replica('node2'), replica('node3')],
  pause: false,
  maxLagBytes: 1024 * 1024,
  unreachable: [],
};

describe('clusterHealth', () => {
  it('green with a one-line summary when the leader runs and every replica streams within the limit', () => {
    const h = clusterHealth({ ...base, members: [leader, replica('node2', { lag_bytes: 2048 }), replica('node3')] });
    assert.equal(h.level, 'ok');
    assert.equal(h.text, 'healthy: node1 leads, 2 replicas streaming, max lag 2.0 kB');
    assert.deepEqual(h.problems, []);
  });

  it('red without a leader, and the banner says so first', () => {
    const h = clusterHealth({ ...base, leader: null, pause: true, members: [replica('node2'), replica('node3')] });
    assert.equal(h.level, 'red');
    assert.equal(h.text, 'no leader: writes are down (+1 more)');
  });

  it('red for a stopped or crashed replica, amber for one starting or replaying from the archive', () => {
    const h = clusterHealth({
      ...base,
      members: [
        leader,
        replica('node2', { state: 'crashed' }),
        replica('node3', { state: 'running' }),
        replica('node4', { state: 'starting' }),
      ],
    });
    assert.equal(h.level, 'red');
    assert.deepEqual(
      h.problems.map((p) => [p.level, p.member, p.text]),
      [
        ['red', 'node2', 'node2 is crashed: not streaming'],
        ['amber', 'node3', 'node3 is not streaming (replaying from the archive only)'],
        ['amber', 'node4', 'node4 is not streaming yet (starting)'],
      ],
    );
    assert.equal(memberLevel(h.problems, 'node2'), 'red');
    assert.equal(memberLevel(h.problems, 'node3'), 'amber');
    assert.equal(memberLevel(h.problems, 'node1'), 'ok');
  });

  it('amber for lag over maximum_lag_on_failover (not at it), paused, pending restart, an API not answering', () => {
    const at = clusterHealth({ ...base, members: [leader, replica('node2', { lag_bytes: 1024 * 1024 })] });
    assert.equal(at.level, 'ok', 'exactly at the limit is still a candidate');
    const h = clusterHealth({
      ...base,
      pause: true,
      unreachable: ['node3'],
      members: [
        { ...leader, pending_restart: true },
        replica('node2', { lag_bytes: 3 * 1024 * 1024 }),
        replica('node3'),
      ],
    });
    assert.equal(h.level, 'amber');
    assert.deepEqual(
      h.problems.map((p) => p.text),
      [
        'maintenance mode (paused): no automatic failover',
        'node1 needs a restart (pending_restart)',
        'node2 lags 3.0 MB, over maximum_lag_on_failover (1.0 MB)',
        "node3's REST API does not answer",
      ],
    );
    assert.equal(h.text, 'maintenance mode (paused): no automatic failover (+3 more)');
  });

  it('red when the leader itself is not running or the DCS does not answer; amber when archiving fails', () => {
    assert.equal(
      clusterHealth({ ...base, members: [{ ...leader, state: 'stopped' }] }).text,
      'leader node1 is stopped',
    );
    assert.equal(clusterHealth({ ...base, dcsError: 'timeout' }).problems[0]?.text, 'the DCS does not answer: timeout');
    const a = clusterHealth({ ...base, archiveFailing: '000000010000000000000003: disk full' });
    assert.equal(a.level, 'amber');
    assert.equal(a.text, 'WAL archiving fails: 000000010000000000000003: disk full');
  });
});
