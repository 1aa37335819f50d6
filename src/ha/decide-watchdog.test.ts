import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decide } from './decide.js';
import { PG_STOPPED, UNREACHABLE, acts, leaderFixture, peer, racerFixture } from '../../test/fakes/observed.js';
import type { WatchdogView } from './watchdog.js';

const missing = '/dev/watchdog does not exist (is the softdog module loaded?)';
const view = (mode: WatchdogView['mode'], state: WatchdogView['state']): WatchdogView => ({
  mode,
  state,
  problem: state === 'unavailable' ? missing : null,
});
const bar = `watchdog.mode is required and the watchdog cannot be armed (${missing})`;

describe('decide: watchdog fencing', () => {
  it('required and unavailable: the healthiest replica does not race, and says why', () => {
    const d = decide(racerFixture({ watchdog: view('required', 'unavailable') }));
    assert.deepEqual(acts(d), []);
    assert.equal(d.summary, `no action: not taking leadership: ${bar}`);
    assert.equal(d.role, 'replica');
  });

  it('required and ready (or armed): it races as usual', () => {
    for (const state of ['ready', 'armed'] as const)
      assert.deepEqual(acts(decide(racerFixture({ watchdog: view('required', state) }))), ['take_leadership']);
  });

  it('automatic and unavailable: it races anyway (the agent warns once)', () => {
    assert.deepEqual(acts(decide(racerFixture({ watchdog: view('automatic', 'unavailable') }))), ['take_leadership']);
  });

  it('no watchdog field (mode off): unchanged', () => {
    assert.deepEqual(acts(decide(racerFixture())), ['take_leadership']);
  });

  it('required and unavailable while leading: the primary hands the key over with a graceful demote', () => {
    const d = decide(leaderFixture({ watchdog: view('required', 'unavailable') }));
    assert.deepEqual(acts(d), ['demote:graceful']);
    assert.equal(d.summary, `demoting: ${bar}; handing the leader key over`);
    assert.equal(d.role, 'demoted');
  });

  it('required and unavailable, holding the key with PostgreSQL stopped: release it and start as a replica', () => {
    const d = decide(leaderFixture({ watchdog: view('required', 'unavailable'), pg: PG_STOPPED }));
    assert.deepEqual(acts(d), ['release_lock', 'start:replica:-']);
    assert.match(d.summary, /^releasing the leader key: watchdog.mode is required/);
  });

  it('automatic and unavailable while leading: the leader keeps leading', () => {
    const d = decide(leaderFixture({ watchdog: view('automatic', 'unavailable') }));
    assert.equal(d.role, 'primary');
    assert.equal(acts(d).includes('demote:graceful'), false);
  });

  it('a peer ahead of me that reports watchdog_failed is no rival (it will not take the key)', () => {
    const ahead = { walPosition: 2000 };
    const blocked = decide(racerFixture({ peerMap: { node1: UNREACHABLE, node3: peer(ahead) } }));
    assert.deepEqual(acts(blocked), []);
    const peers = { node1: UNREACHABLE, node3: peer({ ...ahead, watchdogFailed: true }) };
    assert.deepEqual(acts(decide(racerFixture({ peerMap: peers }))), ['take_leadership']);
  });

  it('paused: an unavailable required watchdog changes nothing (Patroni disarms it during pause)', () => {
    const d = decide(leaderFixture({ watchdog: view('required', 'unavailable'), settings: { paused: true } }));
    assert.equal(acts(d).includes('demote:graceful'), false);
  });
});
