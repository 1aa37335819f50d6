import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ignored,
  leaderSlotReport,
  logicalSlotBar,
  permanentLogicalSlots,
  permanentPhysicalSlots,
  planReplicaSlots,
  withSlotFeedback,
  type LogicalSlotRow,
  type PermanentLogicalSlot,
} from './logical-slots.js';
import { decide } from './decide.js';
import { acts, peer, racerFixture } from '../../test/fakes/observed.js';
import { dynamicFields, type DynamicConfig } from '../config/node.js';
import { validate } from '../config/schema.js';
import { LogicalSlotKeeper } from './logical-slots-keeper.js';
import type { AgentContext } from './state.js';

const A: PermanentLogicalSlot = { name: 'pgl_app_s1_sub_a', database: 'app', plugin: 'pglogical_output' };
const B: PermanentLogicalSlot = { name: 'pgl_app_s1_sub_b', database: 'app', plugin: 'pglogical_output' };
const row = (s: PermanentLogicalSlot, confirmedFlush: number | null, over: Partial<LogicalSlotRow> = {}) => ({
  name: s.name,
  database: s.database,
  plugin: s.plugin,
  confirmedFlush,
  ...over,
});
const DYN = {
  postgresql: {
    parameters: { hot_standby_feedback: 'off', max_connections: 50 },
    use_pg_rewind: true,
    use_slots: true,
  },
  slots: {
    [A.name]: { type: 'logical', database: 'app', plugin: 'pglogical_output' },
    keep_me: { type: 'physical' },
  },
} as unknown as DynamicConfig;

describe('permanent slots: the dynamic config', () => {
  const check = (slots: unknown) =>
    validate({ kind: 'object', doc: '', fields: dynamicFields }, { slots }).problems.map(
      (p) => `${p.path}: ${p.message}`,
    );

  it('accepts Patroni slots and ignore_slots and fills the defaults', () => {
    const r = validate(
      { kind: 'object', doc: '', fields: dynamicFields },
      { slots: DYN.slots, ignore_slots: [{ name: 'x_1', type: 'logical' }, { plugin: 'wal2json' }] },
    );
    assert.deepEqual(r.problems, []);
    const v = r.value as DynamicConfig;
    assert.deepEqual(v.slots?.['keep_me'], { type: 'physical' });
    assert.equal(v.ignore_slots?.length, 2);
    const empty = validate({ kind: 'object', doc: '', fields: dynamicFields }, {}).value as DynamicConfig;
    assert.deepEqual([empty.slots, empty.ignore_slots], [{}, []]);
  });

  it('names the key and the expected form on bad input', () => {
    assert.deepEqual(check({ Bad: { type: 'physical' } }), [
      'slots.Bad: expected the name to be a replication slot name (lower-case letters, digits and _, at most 63), got "Bad"',
    ]);
    assert.deepEqual(check({ s: { type: 'logical', plugin: 'pglogical_output' } }), [
      'slots.s.database: is required for a logical slot: expected a name',
    ]);
    assert.deepEqual(check({ s: { database: 'app' } }), [
      'slots.s.type: is required: expected one of physical, logical',
    ]);
    assert.deepEqual(check({ s: { type: 'physical', plugin: 'x' } }), [
      'slots.s.plugin: is only for a logical slot; remove it or set type: logical',
    ]);
    assert.deepEqual(check({ s: { type: 'logcal' } }), [
      'slots.s.type: expected one of physical, logical, got "logcal" (did you mean "logical"?)',
    ]);
    assert.deepEqual(check({ s: { type: 'physical', size: 1 } }), [
      'slots.s.size: unknown key; allowed here: type, database, plugin',
    ]);
    assert.deepEqual(check([]), [
      'slots: expected a mapping of names to a mapping with keys type, database, plugin, got a list',
    ]);
  });

  it('reads the permanent slots by type; hot_standby_feedback forced on only with logical ones', () => {
    assert.deepEqual(permanentLogicalSlots(DYN), [A]);
    assert.deepEqual(permanentPhysicalSlots(DYN), ['keep_me']);
    assert.deepEqual(withSlotFeedback(DYN), { hot_standby_feedback: 'on', max_connections: 50 });
    const none = { ...DYN, slots: {} };
    assert.equal(withSlotFeedback(none), none.postgresql.parameters);
  });

  it('ignore_slots: a matcher matches when every key it gives is equal', () => {
    const slot = { name: 'a', type: 'logical' as const, database: 'app', plugin: 'p' };
    assert.equal(ignored(slot, [{ plugin: 'p' }]), true);
    assert.equal(ignored(slot, [{ plugin: 'p', database: 'other' }]), false);
    assert.equal(ignored(slot, [{ name: 'b' }, { type: 'logical', name: 'a' }]), true);
    assert.equal(ignored(slot, []), false);
  });
});

describe('permanent logical slots: the leader', () => {
  it('publishes confirmed_flush of each permanent slot; reports a missing or mismatched one, never creates it', () => {
    const r = leaderSlotReport(
      [A, B, { ...A, name: 'pgl_other' }],
      [row(A, 5000), row({ ...A, name: 'pgl_other' }, 7, { plugin: 'test_decoding' }), row({ ...A, name: 'x' }, 9)],
    );
    assert.deepEqual(r.positions, { [A.name]: 5000 });
    assert.deepEqual(r.missing, [B.name]);
    assert.deepEqual(r.mismatched, ['pgl_other']);
  });
});

describe('permanent logical slots: a replica', () => {
  const base = { permanent: [A, B], replayLsn: 6000, hotStandbyFeedback: true };

  it('copies every published slot it lacks, all at once; a slot the leader never published is not copied', () => {
    const p = planReplicaSlots({ ...base, published: { [A.name]: 5000, [B.name]: 100 }, local: [] });
    assert.deepEqual(p.copy, [A, B]);
    assert.deepEqual(p.advance, []);
    const q = planReplicaSlots({ ...base, published: { [A.name]: 5000 }, local: [] });
    assert.deepEqual(q.copy, [A]);
    assert.deepEqual(planReplicaSlots({ ...base, published: null, local: [] }).copy, []);
  });

  it('advances a copy to the published position once replay has reached it, never past, never backwards', () => {
    const published = { [A.name]: 5000, [B.name]: 7000 };
    const p = planReplicaSlots({ ...base, published, local: [row(A, 4000), row(B, 3000)] });
    assert.deepEqual(p.advance, [{ name: A.name, database: 'app', lsn: 5000 }]); // B: replay 6000 < 7000
    const ahead = planReplicaSlots({ ...base, published, local: [row(A, 5000), row(B, 9000)] });
    assert.deepEqual([ahead.advance, ahead.ahead], [[], [B.name]]); // B's copy is past what the leader published
    assert.deepEqual(
      planReplicaSlots({ ...base, replayLsn: 7000, published, local: [row(A, 5000), row(B, 3000)] }).advance,
      [{ name: B.name, database: 'app', lsn: 7000 }],
    );
  });

  it('a same-named slot of another plugin or database is reported and left alone', () => {
    const p = planReplicaSlots({ ...base, published: { [A.name]: 5000 }, local: [row(A, 1, { database: 'x' })] });
    assert.deepEqual([p.copy, p.advance], [[], []]);
    assert.match(p.problems[0] ?? '', /left alone/);
  });

  it('hot_standby_feedback off: no copy, said why; copies already here still advance', () => {
    const p = planReplicaSlots({
      ...base,
      hotStandbyFeedback: false,
      published: { [A.name]: 5000, [B.name]: 5000 },
      local: [row(A, 1)],
    });
    assert.deepEqual(p.copy, []);
    assert.deepEqual(p.advance, [{ name: A.name, database: 'app', lsn: 5000 }]);
    assert.match(p.problems[0] ?? '', /hot_standby_feedback is off/);
  });
});

describe('permanent logical slots: the promotion guard (patroni#1749)', () => {
  const view = (local: string[]) => ({ permanent: [A.name, B.name], local: new Set(local) });

  it('bars a replica without the copies, or replaying behind the greatest published position', () => {
    const pub = { [A.name]: 5000, [B.name]: 8000 };
    assert.match(logicalSlotBar(view([A.name]), pub, 9000) ?? '', new RegExp(`no copy .*${B.name}`));
    assert.match(
      logicalSlotBar(view([A.name, B.name]), pub, 7999) ?? '',
      new RegExp(`replay position 0/1F3F is behind 0/1F40, what a peer confirmed on logical slot ${B.name}`),
    );
    assert.equal(logicalSlotBar(view([A.name, B.name]), pub, 8000), null);
    assert.match(logicalSlotBar(view([A.name, B.name]), pub, null) ?? '', /unknown/);
  });

  it('no guard without permanent logical slots, without /status slots, or for slots the leader never published', () => {
    assert.equal(logicalSlotBar(undefined, { [A.name]: 5000 }, 0), null);
    assert.equal(logicalSlotBar(view([]), null, 0), null);
    assert.equal(logicalSlotBar(view([]), { other: 5 }, 0), null);
  });

  const status = (slots: Record<string, number>) => ({ optime: 1000, slots, retainSlots: [] });

  it('decide: the healthiest replica does not race while behind; says why', () => {
    const d = decide(
      racerFixture({
        cluster: { leader: undefined, status: status({ [A.name]: 1500 }) },
        logicalSlots: { permanent: [A.name], local: new Set([A.name]) },
      }),
    );
    assert.deepEqual(acts(d), []);
    assert.match(d.summary, /^no action: not taking leadership: my replay position 0\/3E8 is behind 0\/5DC/);
  });

  it('decide: caught up and holding the copies, it races as before', () => {
    const d = decide(
      racerFixture({
        cluster: { leader: undefined, status: status({ [A.name]: 1000 }) },
        logicalSlots: { permanent: [A.name], local: new Set([A.name]) },
      }),
    );
    assert.deepEqual(acts(d), ['take_leadership']);
  });

  it('decide: an operator naming this replica in /failover overrides the guard (ctl failover --candidate)', () => {
    const d = decide(
      racerFixture({
        cluster: {
          leader: undefined,
          status: status({ [A.name]: 9000 }),
          failover: { member: 'node2', modRevision: 1 },
        },
        logicalSlots: { permanent: [A.name], local: new Set() },
        peerMap: { node3: peer() },
      }),
    );
    assert.deepEqual(acts(d), ['take_leadership']);
  });
});

describe('permanent logical slots: what the keeper shows decide', () => {
  it('nothing without permanent logical slots; before its first look, no copy counts as present', () => {
    const keeper = new LogicalSlotKeeper({} as AgentContext);
    assert.equal(keeper.view({ ...DYN, slots: { keep_me: { type: 'physical' } } }), undefined);
    const v = keeper.view(DYN);
    assert.deepEqual([v?.permanent, [...(v?.local ?? ['?'])]], [[A.name], []]);
  });
});
