import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decide } from './decide.js';
import {
  NOW,
  PG_EMPTY,
  PG_PRIMARY,
  PG_STOPPED,
  acts,
  fixture,
  leaderFixture,
  leaderKey,
} from '../../test/fakes/observed.js';
import type { Decision } from './view.js';

const refused = (d: Decision): string | null => (d.request?.outcome === 'refused' ? d.request.reason : null);

describe('decide: operator requests (REST POST /restart, /reinitialize, /reload)', () => {
  it('restart: runs instead of the situation, keeping the role as last decided', () => {
    const d = decide(leaderFixture({ request: 'restart' }));
    assert.equal(d.summary, 'restarting PostgreSQL on request');
    assert.deepEqual(acts(d), ['restart']);
    assert.equal(d.role, 'primary');
    assert.deepEqual(d.request, { outcome: 'run' });
  });

  it('restart of a stopped PostgreSQL: refused, and the situation decides the cycle', () => {
    const d = decide(fixture({ request: 'restart', pg: PG_STOPPED }));
    assert.equal(refused(d), 'PostgreSQL is not running');
    assert.equal(d.summary, 'starting as a replica following node1');
    assert.deepEqual(acts(d), ['start:replica:node1']);
  });

  it('reinitialize a replica: re-clones from the leader', () => {
    const d = decide(fixture({ request: 'reinitialize', lastRole: 'replica' }));
    assert.equal(d.summary, 'reinitializing from node1 on request');
    assert.deepEqual(acts(d), ['reclone:node1']);
    assert.equal(d.role, 'replica');
    assert.deepEqual(d.request, { outcome: 'run' });
  });

  it('reinitialize the leader: refused; the leader keeps leading', () => {
    const d = decide(leaderFixture({ request: 'reinitialize' }));
    assert.equal(refused(d), 'I am the leader; a leader cannot be reinitialized');
    assert.equal(d.summary, 'no action: I am the leader with the lock');
    assert.deepEqual(acts(d), ['renew_lock']);
  });

  it('reinitialize while the key names me but my renewal failed: still refused (the leader cannot be re-cloned)', () => {
    const d = decide(
      fixture({
        request: 'reinitialize',
        holdsLock: false,
        lastRenew: { ok: false, at: NOW - 1000 },
        pg: PG_PRIMARY,
        cluster: { leader: leaderKey('node2') },
      }),
    );
    assert.equal(refused(d), 'I am the leader; a leader cannot be reinitialized');
    assert.deepEqual(acts(d), ['demote:immediate']);
  });

  it('reinitialize while I hold the key in failsafe mode with the DCS down: refused as the leader', () => {
    const d = decide(
      fixture({
        request: 'reinitialize',
        dcsDown: true,
        holdsLock: true,
        failsafeConfirmed: true,
        settings: { failsafeMode: true },
        pg: PG_PRIMARY,
      }),
    );
    assert.equal(refused(d), 'I am the leader; a leader cannot be reinitialized');
  });

  it('reinitialize with the leader key free: refused, nothing to clone from', () => {
    const d = decide(fixture({ request: 'reinitialize', cluster: { leader: undefined } }));
    assert.equal(refused(d), 'there is no leader to clone from');
  });

  it('reinitialize with the DCS down: refused, no leader is known', () => {
    const d = decide(fixture({ request: 'reinitialize', dcsDown: true }));
    assert.equal(refused(d), 'there is no leader to clone from');
    assert.match(d.summary, /^no action: DCS is not accessible/);
  });

  it('reload: rewrites the configuration, keeping the role as last decided', () => {
    const d = decide(fixture({ request: 'reload', lastRole: 'demoted' }));
    assert.equal(d.summary, 'reloading the configuration on request');
    assert.deepEqual(acts(d), ['reload']);
    assert.equal(d.role, 'demoted');
  });

  it('a request runs whatever the situation, as before (a member with an empty data directory reloads too)', () => {
    const d = decide(fixture({ request: 'reload', pg: PG_EMPTY, lastRole: 'uninitialized' }));
    assert.deepEqual(acts(d), ['reload']);
  });

  it('during a long action a request stays queued: no outcome, the busy decision stands', () => {
    const d = decide(fixture({ request: 'restart', busy: { what: 'clone', since: NOW - 1000 } }));
    assert.equal(d.request, undefined);
    assert.equal(d.summary, 'no action: clone in progress');
  });

  it('no request: no outcome', () => {
    assert.equal(decide(fixture()).request, undefined);
  });
});

describe('decide: the wait after a failure (retry backoff)', () => {
  const waiting = { retry: { after: NOW + 5000, lastError: 'clone failed: no route to host' } };

  it('while it lasts a replica starts nothing, and says why', () => {
    const d = decide(fixture({ ...waiting, pg: PG_STOPPED }));
    assert.equal(d.summary, 'waiting before retrying after a failure (clone failed: no route to host)');
    assert.deepEqual(acts(d), []);
    assert.equal(d.role, 'replica');
  });

  it('a leader keeps renewing its key; sync upkeep waits', () => {
    const d = decide(leaderFixture({ ...waiting, settings: { synchronousMode: true }, pg: { syncStandbys: [] } }));
    assert.deepEqual(acts(d), ['renew_lock']);
    assert.match(d.summary, /^waiting before retrying/);
  });

  it('a crashed leader past primary_start_timeout still gives its key up, but does not start yet', () => {
    const d = decide(
      fixture({
        ...waiting,
        holdsLock: true,
        lastRenew: { ok: true, at: NOW },
        cluster: { leader: leaderKey('node2') },
        pg: { ...PG_STOPPED, shouldRun: true, downSince: NOW - 400_000 },
      }),
    );
    assert.deepEqual(acts(d), ['release_lock']);
  });

  it('a primary that must step down still demotes', () => {
    assert.deepEqual(acts(decide(fixture({ ...waiting, pg: PG_PRIMARY }))), ['demote:immediate']);
  });

  it('without a recorded error the summary says "unknown"', () => {
    const d = decide(fixture({ retry: { after: NOW + 1, lastError: null }, pg: PG_STOPPED }));
    assert.equal(d.summary, 'waiting before retrying after a failure (unknown)');
  });

  it('applies to an operator request too: it is taken, and waits', () => {
    const d = decide(fixture({ ...waiting, request: 'restart' }));
    assert.deepEqual(d.request, { outcome: 'run' });
    assert.deepEqual(acts(d), []);
    assert.match(d.summary, /^waiting before retrying/);
  });

  it('over at its deadline: the situation decides', () => {
    const d = decide(fixture({ retry: { after: NOW, lastError: 'x' }, pg: PG_STOPPED }));
    assert.deepEqual(acts(d), ['start:replica:node1']);
    assert.equal(d.summary, 'starting as a replica following node1');
  });

  it('not while a long action runs: it reports itself', () => {
    const d = decide(fixture({ ...waiting, busy: { what: 'start', since: NOW } }));
    assert.equal(d.summary, 'no action: start in progress');
  });
});
