import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { planSlots, type SlotInput } from './slots.js';

const base: SlotInput = {
  me: 'node1',
  members: ['node1', 'node2', 'node3'],
  existing: new Set(),
  retainSlots: [],
  absentSince: new Map(),
  now: 1_000_000,
  ttlMs: 1800_000,
};

describe('replication slot policy', () => {
  it('creates one slot per other member (Patroni naming) and publishes them as retained', () => {
    const p = planSlots({ ...base, members: ['node1', 'node-2', 'Node3'] });
    assert.deepEqual(p.create, ['node3', 'node_2']);
    assert.deepEqual(p.retain, ['node3', 'node_2']);
    assert.deepEqual(p.drop, []);
  });

  it("keeps a departed member's slot until the ttl, then drops it", () => {
    const existing = new Set(['node2', 'node3', 'gone']);
    const first = planSlots({ ...base, existing, retainSlots: ['node2', 'node3', 'gone'] });
    assert.deepEqual(first.drop, []);
    assert.deepEqual(first.retain, ['gone', 'node2', 'node3']);
    assert.equal(first.absentSince.get('gone'), base.now);
    const later = planSlots({
      ...base,
      existing,
      retainSlots: first.retain,
      absentSince: first.absentSince,
      now: base.now + 1800_000,
    });
    assert.deepEqual(later.drop, ['gone']);
    assert.deepEqual(later.retain, ['node2', 'node3']);
  });

  it('forgets the absence when the member comes back', () => {
    const p = planSlots({
      ...base,
      existing: new Set(['node2', 'node3']),
      retainSlots: ['node2', 'node3'],
      absentSince: new Map([['node3', 0]]),
      now: base.now + 1e9,
    });
    assert.deepEqual(p.drop, []);
    assert.equal(p.absentSince.size, 0);
  });

  it("never touches slots it does not manage, nor the leader's own name", () => {
    const p = planSlots({
      ...base,
      existing: new Set(['node2', 'node3', 'logical_cdc', 'node1']),
      retainSlots: ['node2', 'node3', 'node1'],
      absentSince: new Map([['node1', 0]]),
      now: base.now + 1e9,
    });
    assert.deepEqual(p.drop, []);
    assert.ok(!p.retain.includes('logical_cdc'));
  });

  it("recreates a member's slot that PostgreSQL invalidated at max_slot_wal_keep_size; never an unmanaged one", () => {
    const p = planSlots({
      ...base,
      existing: new Set(['node2', 'node3', 'logical_cdc']),
      lost: new Set(['node2', 'logical_cdc']),
    });
    assert.deepEqual(p.recreate, ['node2']);
    assert.deepEqual(p.create, []);
    assert.deepEqual(planSlots({ ...base, existing: new Set(['node2', 'node3']) }).recreate, []);
  });
});
