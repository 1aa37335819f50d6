import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  healthVerdict,
  maximumLagOf,
  type VerdictInput,
  type VerdictMember,
  verdictProblems,
} from './health-verdict.js';

const m = (name: string, o: Partial<VerdictMember> = {}): VerdictMember => ({
  name,
  role: name === 'node1' ? 'leader' : 'replica',
  state: name === 'node1' ? 'running' : 'streaming',
  lag_bytes: 0,
  pending_restart: false,
  ...o,
});

const input = (o: Partial<VerdictInput> = {}): VerdictInput => ({
  leader: 'node1',
  members: [m('node1'), m('node2'), m('node3')],
  pause: false,
  maximumLagOnFailover: 1_048_576,
  ...o,
});

describe('healthVerdict', () => {
  it('healthy: a running leader and streaming replicas within the lag limit', () => {
    assert.deepEqual(healthVerdict(input({ expected: ['node1', 'node2', 'node3'] })), {
      verdict: 'healthy',
      reason: 'leader node1 running with 2 streaming replicas',
    });
  });

  it('critical: no leader, or a leader that is not running', () => {
    assert.equal(healthVerdict(input({ leader: null })).verdict, 'critical');
    assert.match(healthVerdict(input({ leader: null })).reason, /^no leader/);
    const down = healthVerdict(input({ members: [m('node1', { state: 'crashed' }), m('node2')] }));
    assert.deepEqual(down, { verdict: 'critical', reason: 'leader node1 is not running (state: crashed)' });
    assert.equal(healthVerdict(input({ leader: 'node9' })).verdict, 'critical');
  });

  it('degraded: every reason named, in one line', () => {
    const v = healthVerdict(
      input({
        pause: true,
        expected: ['node1', 'node2', 'node3', 'node4'],
        members: [
          m('node1', { pending_restart: true }),
          m('node2', { state: 'running' }),
          m('node3', { lag_bytes: 3 * 1_048_576 }),
        ],
      }),
    );
    assert.equal(v.verdict, 'degraded');
    assert.equal(
      v.reason,
      'maintenance mode is on (no automatic failover); node4 is missing; node2 is not streaming (state: running); ' +
        'node3 lags 3.0 MB, over maximum_lag_on_failover (1.0 MB); pending restart on node1',
    );
  });

  it('lag exactly at the limit is still healthy', () => {
    assert.equal(
      healthVerdict(input({ members: [m('node1'), m('node2', { lag_bytes: 1_048_576 })] })).verdict,
      'healthy',
    );
  });

  it('maximum_lag_on_failover from the DCS config, else the default', () => {
    assert.equal(maximumLagOf({ config: { value: { maximum_lag_on_failover: 5 }, modRevision: 1 } }), 5);
    assert.equal(maximumLagOf({ config: undefined }), 1_048_576);
  });

  it('verdictProblems: one entry per rule, with the members it concerns, critical first', () => {
    const p = verdictProblems(
      input({
        pause: true,
        members: [m('node1', { state: 'stopped', pending_restart: true }), m('node2', { lag_bytes: 2_000_000 })],
      }),
    );
    assert.deepEqual(
      p.map((x) => [x.severity, x.rule, x.members]),
      [
        ['critical', 'leader_down', ['node1']],
        ['degraded', 'paused', []],
        ['degraded', 'lagging', ['node2']],
        ['degraded', 'pending_restart', ['node1']],
      ],
    );
    assert.deepEqual(verdictProblems(input()), []);
  });
});
