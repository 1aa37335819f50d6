import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { meshStatusText, stableMeshStatus, type MeshStatusDetail } from './status.js';

const detail: MeshStatusDetail = {
  sites: [
    { scope: 'a', leader: '10.0.0.1:5432', members: ['10.0.0.1:5432', '10.0.0.2:5432'] },
    { scope: 'b', leader: null, members: [] },
  ],
  links: [
    { from: 'a', to: 'b', lag_bytes: 120, state: 'replicating', slot: 'pgl_x', retained_bytes: 4096 },
    { from: 'b', to: 'a', lag_bytes: null, state: 'unknown', slot: 'pgl_y', retained_bytes: null },
  ],
};

describe('mesh status', () => {
  it("status --json's mesh object keeps exactly the documented fields", () => {
    const s = stableMeshStatus(detail);
    assert.deepEqual(s.links, [
      { from: 'a', to: 'b', lag_bytes: 120, state: 'replicating' },
      { from: 'b', to: 'a', lag_bytes: null, state: 'unknown' },
    ]);
    assert.deepEqual(s.sites[0], { scope: 'a', leader: '10.0.0.1:5432', members: ['10.0.0.1:5432', '10.0.0.2:5432'] });
  });

  it('prints each site and link, unknown numbers as ?', () => {
    assert.deepEqual(meshStatusText(detail), [
      'sites:',
      '  a: leader 10.0.0.1:5432; members 10.0.0.1:5432, 10.0.0.2:5432',
      '  b: leader (none); members ',
      'links (provider → subscriber):',
      '  a → b: replicating, lag 120 bytes, slot pgl_x retains 4096 bytes',
      '  b → a: unknown, lag ? bytes, slot pgl_y retains ? bytes',
    ]);
    assert.equal(meshStatusText(stableMeshStatus(detail))[4], '  a → b: replicating, lag 120 bytes');
  });
});
