import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { planSync, sameSet, syncStep, writableSyncStandbys, type SyncInput } from './sync.js';
import { PG_PRIMARY, SETTINGS, member, members } from '../../test/fakes/observed.js';
import type { Cluster } from '../dcs/layout.js';

function input(over: Partial<SyncInput> = {}): SyncInput {
  return {
    me: 'node1',
    settings: { synchronousModeStrict: false, synchronousNodeCount: 1 },
    streamingStandbys: ['node2', 'node3'],
    pgSync: [],
    members: members(
      member('node1', { role: 'primary' }),
      member('node2', { xlog_location: 900 }),
      member('node3', { xlog_location: 1000 }),
    ),
    ...over,
  };
}

describe('planSync', () => {
  it('picks the least lagging streaming standby', () => {
    assert.deepEqual(planSync(input()).desired, ['node3']);
  });

  it('prefers a standby PostgreSQL already has as sync, even if it lags more', () => {
    const p = planSync(input({ pgSync: ['node2'] }));
    assert.deepEqual(p.desired, ['node2']);
    assert.deepEqual(p.writable, ['node2']);
  });

  it('takes up to synchronous_node_count, best first', () => {
    const ms = members(
      member('node2', { xlog_location: 900 }),
      member('node3', { xlog_location: 1000 }),
      member('node4', { xlog_location: 950 }),
    );
    const p = planSync(
      input({
        members: ms,
        streamingStandbys: ['node2', 'node3', 'node4'],
        settings: { synchronousModeStrict: false, synchronousNodeCount: 2 },
      }),
    );
    assert.deepEqual(p.desired, ['node3', 'node4']);
  });

  it('excludes nosync members, non-members, myself and replicas not reporting streaming', () => {
    const ms = members(
      member('node1', { role: 'primary' }),
      member('node2', { tags: { nosync: true } }),
      member('node3', { replication_state: 'in archive recovery' }),
      member('node4'),
    );
    const p = planSync(
      input({
        members: ms,
        streamingStandbys: ['node1', 'node2', 'node3', 'node4', 'ghost'],
        settings: { synchronousModeStrict: false, synchronousNodeCount: 5 },
      }),
    );
    assert.deepEqual(p.desired, ['node4']);
  });

  it('accepts members that do not publish replication_state (older Patroni)', () => {
    const ms = members(member('node2', { replication_state: undefined }));
    assert.deepEqual(planSync(input({ members: ms, streamingStandbys: ['node2'] })).desired, ['node2']);
  });

  it('puts nofailover members last (Patroni prefers standbys that could be promoted)', () => {
    const ms = members(
      member('node2', { xlog_location: 900 }),
      member('node3', { xlog_location: 1000, tags: { nofailover: true } }),
    );
    assert.deepEqual(planSync(input({ members: ms })).desired, ['node2']);
  });

  it('breaks ties by name', () => {
    const ms = members(member('node3'), member('node2'));
    assert.deepEqual(planSync(input({ members: ms })).desired, ['node2']);
  });

  it('writes to /sync only what PostgreSQL already reports as synchronous', () => {
    const p = planSync(
      input({ settings: { synchronousModeStrict: false, synchronousNodeCount: 2 }, pgSync: ['node3'] }),
    );
    assert.deepEqual(p.desired, ['node3', 'node2']);
    assert.deepEqual(p.writable, ['node3']);
    assert.deepEqual(writableSyncStandbys(['a', 'b'], ['b', 'c']), ['b']);
  });

  it('strict mode without candidates keeps a placeholder; non-strict does not', () => {
    assert.equal(
      planSync(input({ streamingStandbys: [], settings: { synchronousModeStrict: true, synchronousNodeCount: 1 } }))
        .placeholder,
      true,
    );
    assert.equal(planSync(input({ streamingStandbys: [] })).placeholder, false);
    assert.equal(
      planSync(input({ settings: { synchronousModeStrict: true, synchronousNodeCount: 1 } })).placeholder,
      false,
    );
  });
});

describe('syncStep', () => {
  const on = { ...SETTINGS, synchronousMode: true };
  const ms = members(member('node1', { role: 'primary' }), member('node2'), member('node3', { xlog_location: 900 }));
  const pg = { ...PG_PRIMARY, streamingStandbys: ['node2', 'node3'] };
  const c = (sync: Cluster['sync']): Pick<Cluster, 'sync' | 'members'> => ({ sync, members: ms });

  it('off with no /sync: nothing', () => {
    assert.deepEqual(syncStep('node1', SETTINGS, pg, c(undefined)).actions, []);
  });

  it('off with /sync: clear_sync', () => {
    assert.deepEqual(syncStep('node1', SETTINGS, pg, c({ leader: 'node1', standbys: [], modRevision: 1 })).actions, [
      { kind: 'clear_sync' },
    ]);
  });

  it('a standby picked but not yet synchronous: set_sync until PostgreSQL reports it', () => {
    const s = syncStep('node1', on, pg, c({ leader: 'node1', standbys: [], modRevision: 1 }));
    assert.deepEqual(s.actions, [{ kind: 'set_sync', standbys: ['node2'] }]);
  });

  it('once the setting names it, waiting for PostgreSQL is not a change', () => {
    const s = syncStep(
      'node1',
      on,
      { ...pg, synchronousStandbyNames: ['node2'] },
      c({ leader: 'node1', standbys: [], modRevision: 1 }),
    );
    assert.deepEqual(s.actions, []);
  });

  it('PostgreSQL reports it synchronous: /sync must be updated', () => {
    const s = syncStep(
      'node1',
      on,
      { ...pg, syncStandbys: ['node2'], synchronousStandbyNames: ['node2'] },
      c({ leader: 'node1', standbys: [], modRevision: 1 }),
    );
    assert.deepEqual(s.actions, [{ kind: 'set_sync', standbys: ['node2'] }]);
  });

  it('a /sync naming another leader is rewritten even when its standbys match', () => {
    const synced = { ...pg, syncStandbys: ['node2'], synchronousStandbyNames: ['node2'] };
    assert.deepEqual(
      syncStep('node1', on, synced, c({ leader: 'node1', standbys: ['node2'], modRevision: 1 })).actions,
      [],
    );
    assert.deepEqual(
      syncStep('node1', on, synced, c({ leader: 'node9', standbys: ['node2'], modRevision: 1 })).actions,
      [{ kind: 'set_sync', standbys: ['node2'] }],
    );
  });

  it('the sync standby stopped streaming: replaced', () => {
    const s = syncStep(
      'node1',
      on,
      { ...pg, streamingStandbys: ['node3'], syncStandbys: [] },
      c({ leader: 'node1', standbys: ['node2'], modRevision: 1 }),
    );
    assert.deepEqual(s.actions, [{ kind: 'set_sync', standbys: ['node3'] }]);
  });

  it('sameSet ignores order and duplicates', () => {
    assert.ok(sameSet(['a', 'b'], ['b', 'a', 'a']));
    assert.ok(!sameSet(['a'], ['a', 'b']));
  });
});
