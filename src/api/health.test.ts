import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentSnapshot } from '../ha/agent.js';
import { healthCode, parseLag, patroniStatus } from './health.js';

const NOW = 1_000_000;

/** A snapshot of a running primary that renewed its key `renewedAgo` ms ago (ttl 10 s). */
function primary(renewedAgo: number): AgentSnapshot {
  return {
    name: 'node1',
    scope: 'demo',
    at: NOW - renewedAgo,
    role: 'primary',
    memberState: 'running',
    decision: null,
    memory: {
      lastRenew: { ok: true, at: NOW - renewedAgo },
      dcsLastSeen: NOW - renewedAgo,
      sysid: null,
      lastError: null,
    },
    gathered: {
      observed: { holdsLock: true, tags: {} },
      cluster: { leader: { name: 'node1' }, members: new Map(), sync: undefined, status: undefined },
      pgStatus: { inRecovery: false, replication: [], streaming: false },
      dynamic: { ttl: 10, pause: false, maximum_lag_on_failover: 1048576 },
    },
  } as unknown as AgentSnapshot;
}

describe('REST health codes', () => {
  it('a leader answers 200 on /primary while its last renewal is younger than the ttl', () => {
    assert.equal(healthCode('/primary', primary(2000), new URLSearchParams(), NOW), 200);
    assert.equal(healthCode('/replica', primary(2000), new URLSearchParams(), NOW), 503);
  });

  it('an agent whose last renewal is older than the ttl (it was frozen) no longer claims the primary', () => {
    assert.equal(healthCode('/primary', primary(10_500), new URLSearchParams(), NOW), 503);
    assert.equal(healthCode('/leader', primary(10_500), new URLSearchParams(), NOW), 503);
  });

  it('GET /patroni says watchdog_failed only when watchdog.mode is required and it cannot be armed', () => {
    const withWatchdog = (mode: string, state: string) => {
      const s = primary(0);
      const g = s.gathered as unknown as { observed: object };
      return { ...s, gathered: { ...g, observed: { ...g.observed, watchdog: { mode, state, problem: 'x' } } } };
    };
    const failed = (s: unknown) => patroniStatus(s as AgentSnapshot)['watchdog_failed'];
    assert.equal(failed(withWatchdog('required', 'unavailable')), true);
    assert.equal(failed(withWatchdog('automatic', 'unavailable')), undefined);
    assert.equal(failed(withWatchdog('required', 'armed')), undefined);
    assert.equal(failed(primary(0)), undefined);
  });

  it('parses Patroni lag values', () => {
    assert.equal(parseLag('16MB'), 16 * 1024 * 1024);
    assert.equal(parseLag('1024'), 1024);
    assert.equal(parseLag('lots'), null);
  });
});
