import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { changedKeys, derive, type Tracked } from './derive.js';
import type { EventDraft } from './event.js';
import { testState } from './fixture.js';
import type { DecisionFacts, EventState } from './state.js';

const state = testState;

const quiet: DecisionFacts = { summary: 'no action: following node1', actions: [] };

/** Runs cycles in order; returns every cycle's events. */
function run(cycles: Array<[Partial<EventState>, DecisionFacts?]>, first: Tracked | null = null): EventDraft[][] {
  let t = first;
  const out: EventDraft[][] = [];
  cycles.forEach(([s, d], i) => {
    const r = derive(t, state({ at: 1_000 * (i + 1), ...s }), d ?? quiet);
    t = r.tracked;
    out.push([...r.events]);
  });
  return out;
}

const kinds = (es: readonly EventDraft[]) => es.map((e) => e.kind);

describe('derive: events from cycles', () => {
  it('cycles that change nothing record nothing', () => {
    const out = run([[{}], [{}], [{}], [{}]]);
    assert.deepEqual(out.flat(), []);
  });

  it('the first cycle after a start sets the baseline: no config or leader "change" from nothing', () => {
    const [first] = run([[{ leader: null, config: { ttl: 30 }, pendingRestart: true }]]);
    assert.deepEqual(first, []);
  });

  it('switchover on the old leader: requested, demote started, lock lost with the decision sentence', () => {
    const demoting: DecisionFacts = { summary: 'demoting: switchover to node2 requested', actions: ['demote'] };
    const out = run([
      [{ me: 'node1', holdsLock: true }],
      [{ me: 'node1', holdsLock: true, failover: { leader: 'node1', member: 'node2' }, busy: 'demote' }, demoting],
      [{ me: 'node1', holdsLock: false, leader: null, busy: null, memberState: 'stopped' }, demoting],
    ]);
    assert.deepEqual(kinds(out[1] as EventDraft[]), ['switchover_requested', 'demote']);
    const [req, demote] = out[1] as EventDraft[];
    assert.equal(req?.reason, 'switchover from node1 to node2 requested');
    assert.equal(req?.member, 'node1');
    assert.deepEqual([req?.from, req?.to], ['node1', 'node2']);
    assert.equal(req?.details?.['scope'], 'cluster');
    assert.equal(demote?.reason, demoting.summary);
    assert.equal(demote?.details?.['outcome'], 'started');
    assert.deepEqual(kinds(out[2] as EventDraft[]), ['leader_lost']);
    assert.equal(out[2]?.[0]?.reason, `released the leader key after the demote (${demoting.summary})`);
    assert.equal(out[2]?.[0]?.member, 'node1');
  });

  it('switchover on the new leader: the old key gone, lock won, promote started and done, switchover done', () => {
    const promoting: DecisionFacts = {
      summary: 'promoted: switchover from node1 to me requested',
      actions: ['take_leadership'],
    };
    const f = { leader: 'node1', member: 'node2' };
    const out = run([
      [{}],
      [{ failover: f }],
      [{ failover: f, leader: null, busy: 'promote' }, promoting],
      [{ failover: null, leader: 'node2', holdsLock: true, busy: null, timeline: 2 }],
      [{ leader: 'node2', holdsLock: true, timeline: 2 }],
    ]);
    assert.deepEqual(kinds(out[1] as EventDraft[]), ['switchover_requested']);
    assert.deepEqual(kinds(out[2] as EventDraft[]), ['leader_lost', 'leader_acquired', 'promote']);
    assert.equal(out[2]?.[0]?.member, 'node1', 'the lost key is node1’s');
    assert.equal(out[2]?.[1]?.reason, promoting.summary);
    assert.deepEqual(kinds(out[3] as EventDraft[]), ['promote', 'switchover_done']);
    assert.equal(out[3]?.[0]?.details?.['outcome'], 'done');
    assert.equal(out[3]?.[0]?.reason, 'promote done in 1.0 s');
    const done = out[3]?.[1];
    assert.deepEqual([done?.from, done?.to, done?.member, done?.timeline], ['node1', 'node2', 'node2', 2]);
    assert.deepEqual(out[4], [], 'holding the lock afterwards is no new event');
  });

  it('an automatic failover after the leader vanished is a failover_done from the last leader', () => {
    const promoting: DecisionFacts = {
      summary: 'promoted: leader key was free and I had the highest WAL position',
      actions: ['take_leadership'],
    };
    const out = run([
      [{}],
      [{ leader: null }],
      [{ leader: null, busy: 'promote' }, promoting],
      [{ holdsLock: true, leader: 'node2' }],
    ]);
    assert.deepEqual(kinds(out[1] as EventDraft[]), ['leader_lost']);
    assert.match(out[1]?.[0]?.reason ?? '', /leader key of node1 is gone/);
    assert.deepEqual(kinds(out[3] as EventDraft[]), ['promote', 'failover_done']);
    assert.deepEqual([out[3]?.[1]?.from, out[3]?.[1]?.to], ['node1', 'node2']);
  });

  it('a leader key this agent removed is told with the removal’s reason: what failed and who noticed', () => {
    const removing: DecisionFacts = {
      summary: 'removing the leader key of node1: its REST API and PostgreSQL both refuse connections',
      actions: ['remove_dead_leader'],
    };
    const out = run([
      [{}],
      [{}, removing],
      [{ leader: null }, { summary: 'taking leadership: leader key was free', actions: ['take_leadership'] }],
      [{ leader: null }],
      [{ leader: 'node1' }],
      [{ leader: null }],
    ]);
    assert.deepEqual(out[1], [], 'the removal cycle still read the key: nothing yet');
    assert.deepEqual(kinds(out[2] as EventDraft[]), ['leader_lost']);
    assert.equal(
      out[2]?.[0]?.reason,
      'removing the leader key of node1: its REST API and PostgreSQL both refuse connections; taking leadership: leader key was free',
    );
    // A later loss this agent did not cause is told as before, not with the old removal's reason.
    assert.match(out[5]?.[0]?.reason ?? '', /leader key of node1 is gone/);
  });

  it('a bootstrap that ends holding the key says so, not the next cycle’s "no action"', () => {
    const out = run([
      [{ leader: null, config: null }],
      [
        { leader: null, busy: 'bootstrap' },
        { summary: 'bootstrapping: racing', actions: ['bootstrap'] },
      ],
      [
        { leader: 'node2', holdsLock: true },
        { summary: 'no action: I am the leader with the lock', actions: [] },
      ],
    ]);
    assert.deepEqual(out.map(kinds), [[], ['bootstrap'], ['leader_acquired', 'bootstrap']]);
    assert.equal(out[2]?.[0]?.reason, 'took the leader key as the bootstrap finished (bootstrapping: racing)');
  });

  it('a bootstrap that ends without the key lost the initialize race, and says who won — never "done"', () => {
    const out = run([
      [{ leader: null, config: null }],
      [
        { leader: null, busy: 'bootstrap' },
        { summary: 'bootstrapping: racing', actions: ['bootstrap'] },
      ],
      [
        { leader: 'node1', memberState: 'stopped' },
        { summary: 'no action: waiting for node1', actions: [] },
      ],
    ]);
    assert.deepEqual(out.map(kinds), [[], ['bootstrap'], ['bootstrap']]);
    assert.equal(out[2]?.[0]?.reason, 'lost the initialize race: node1 initialized the cluster');
    assert.equal(out[2]?.[0]?.details?.['outcome'], 'lost');
  });

  it('a take_leadership that lost the race (nothing went busy) records no lock', () => {
    const out = run([[{ leader: null }], [{ leader: null }, { summary: 'trying', actions: ['take_leadership'] }]]);
    assert.deepEqual(out.flat(), []);
  });

  it('a failed operation says what failed and why; a re-clone is told from a clone', () => {
    const out = run([
      [{}],
      [{ busy: 'clone' }, { summary: 'diverged: re-cloning from node1', actions: ['reclone'] }],
      [{ busy: null, lastError: 'pg_basebackup: could not connect' }],
    ]);
    assert.deepEqual(kinds(out[1] as EventDraft[]), ['reclone']);
    assert.deepEqual(kinds(out[2] as EventDraft[]), ['clone']);
    assert.equal(out[2]?.[0]?.details?.['outcome'], 'failed');
    assert.match(out[2]?.[0]?.reason ?? '', /clone failed after 1\.0 s: pg_basebackup: could not connect/);
  });

  it('a restart or start that succeeds is one event; a crash, a stop and a pending restart each one', () => {
    const out = run([
      [{}],
      [{ busy: 'restart' }, { summary: 'restarting PostgreSQL', actions: ['restart'] }],
      [{ busy: null }],
      [{ memberState: 'crashed' }, { summary: 'PostgreSQL is not running: starting it', actions: [] }],
      [{ memberState: 'crashed' }],
      [{ memberState: 'running', pendingRestart: true }],
      [{ pendingRestart: true }],
      [{ shuttingDown: true }, { summary: 'shutting down', actions: [] }],
    ]);
    assert.deepEqual(out.map(kinds), [[], ['restart'], [], ['crash'], [], ['pending_restart'], [], ['stop']]);
    assert.match(out[3]?.[0]?.reason ?? '', /stopped unexpectedly; PostgreSQL is not running: starting it/);
  });

  it('DCS lost and regained, with the time it was away; keys are compared across the gap', () => {
    const out = run([
      [{}],
      [
        { dcsOk: false, dcsError: 'connection refused', leader: null, config: null },
        { summary: 'DCS down', actions: [] },
      ],
      [{ dcsOk: false, leader: null, config: null }],
      [{ leader: 'node3' }],
    ]);
    assert.deepEqual(out.map(kinds), [[], ['dcs_lost'], [], ['dcs_regained', 'leader_lost']]);
    assert.match(out[1]?.[0]?.reason ?? '', /connection refused/);
    assert.equal(out[3]?.[0]?.reason, 'the DCS answers again after 2.0 s');
    assert.deepEqual([out[3]?.[1]?.from, out[3]?.[1]?.to], ['node1', 'node3']);
  });

  it('config changes name the keys, nested ones dotted', () => {
    const out = run([
      [{ config: { ttl: 30, postgresql: { parameters: { work_mem: '4MB' } } } }],
      [{ config: { ttl: 30, loop_wait: 5, postgresql: { parameters: { work_mem: '8MB' } } } }],
    ]);
    assert.deepEqual(kinds(out[1] as EventDraft[]), ['config_changed']);
    assert.deepEqual(out[1]?.[0]?.details?.['keys'], ['loop_wait', 'postgresql.parameters.work_mem']);
    assert.equal(out[1]?.[0]?.member, 'node1', 'a cluster event is filed under the leader');
  });

  it('backups: each finished backup once, done or failed', () => {
    const ok = { type: 'full' as const, ok: true, at: 5, id: '20261203-0800F', durationS: 12.5 };
    const bad = { type: 'incr' as const, ok: false, at: 9, error: 'repository full' };
    const out = run([[{}], [{ lastBackup: ok }], [{ lastBackup: ok }], [{ lastBackup: bad }]]);
    assert.deepEqual(out.map(kinds), [[], ['backup_done'], [], ['backup_failed']]);
    assert.equal(out[1]?.[0]?.reason, 'full backup 20261203-0800F done in 12.5 s');
    assert.equal(out[3]?.[0]?.reason, 'incr backup failed: repository full');
  });

  it('changedKeys: added, removed and changed keys; equal values are not changes', () => {
    assert.deepEqual(changedKeys({ a: 1, b: { c: 2 }, d: [1] }, { a: 1, b: { c: 3 }, d: [1], e: true }), ['b.c', 'e']);
    assert.deepEqual(changedKeys({ a: 1 }, {}), ['a']);
  });
});
