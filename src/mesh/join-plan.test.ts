import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { joinPlan, leaveLinks, recordWith, recordWithout } from './join-plan.js';
import type { MeshRecord } from './plan.js';

const pair = (l: { from: string; to: string; syncData: boolean }) => `${l.from}>${l.to}${l.syncData ? '*' : ''}`;

describe('joinPlan', () => {
  it('holds every non-seed site, copies from the seed, then links the new site to every existing one', () => {
    const p = joinPlan(['a', 'b', 'c'], 'd');
    assert.equal(p.seed, 'a');
    assert.deepEqual(p.held.map(pair), ['b>d', 'c>d']);
    assert.equal(pair(p.seedLink), 'a>d*');
    assert.deepEqual(p.outgoing.map(pair), ['d>a', 'd>b', 'd>c']);
    assert.deepEqual(
      [...p.held, p.seedLink, ...p.outgoing].map((l) => l.subscription),
      ['mesh_b_d', 'mesh_c_d', 'mesh_a_d', 'mesh_d_a', 'mesh_d_b', 'mesh_d_c'],
    );
  });

  it('a 2-site mesh has one held link', () => {
    const p = joinPlan(['site1', 'site2'], 'site3');
    assert.deepEqual(p.held.map(pair), ['site2>site3']);
    assert.equal(pair(p.seedLink), 'site1>site3*');
  });

  it('refuses a site already in the mesh, a node-name clash and a one-site mesh', () => {
    assert.throws(() => joinPlan(['a', 'b'], 'b'), /already a site/);
    assert.throws(() => joinPlan(['a-b', 'c'], 'a_b'), /would both be mesh node/);
    assert.throws(() => joinPlan(['a'], 'b'), /two or more/);
  });
});

describe('leaveLinks', () => {
  it('every link to and from the removed site, none between the others', () => {
    assert.deepEqual(leaveLinks(['a', 'b', 'c'], 'b').map(pair), ['b>a', 'a>b', 'b>c', 'c>b']);
    assert.deepEqual(leaveLinks(['a', 'c'], 'b').map(pair), ['b>a', 'a>b', 'b>c', 'c>b']);
  });
});

describe('recordWith / recordWithout', () => {
  const base: MeshRecord = {
    version: 1,
    engine: 'pglogical',
    database: 'postgres',
    sites: [
      { scope: 'a', node: 'a', dsn: 'A' },
      { scope: 'b', node: 'b', dsn: 'B' },
    ],
    links: [
      { from: 'a', to: 'b', subscription: 'mesh_a_b', slot: 's1', origin: 's1' },
      { from: 'b', to: 'a', subscription: 'mesh_b_a', slot: 's2', origin: 's2' },
    ],
  };

  it('adds the site and its links with their slots; removing it gives the record back', () => {
    const p = joinPlan(['a', 'b'], 'c');
    const r = recordWith(
      base,
      { scope: 'c', dsn: 'C' },
      [...p.held, p.seedLink, ...p.outgoing],
      (l) => `slot_${l.subscription}`,
    );
    assert.deepEqual(
      r.sites.map((s) => s.scope),
      ['a', 'b', 'c'],
    );
    assert.deepEqual(
      r.links.map((l) => `${l.from}>${l.to}:${l.slot}`),
      ['a>b:s1', 'b>a:s2', 'b>c:slot_mesh_b_c', 'a>c:slot_mesh_a_c', 'c>a:slot_mesh_c_a', 'c>b:slot_mesh_c_b'],
    );
    assert.deepEqual(recordWithout(r, 'c'), base);
  });
});
