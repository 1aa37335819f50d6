import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { meshStatusText, stableMeshStatus, type MeshStatusDetail } from './status.js';
import { clockOffset } from './offset.js';

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

  it('mesh status --json adds lag in seconds, the apply error and clock offsets; status --json does not', () => {
    const d: MeshStatusDetail = {
      sites: [{ scope: 'a', leader: 'h:1', members: ['h:1'], clock: { offset_ms: -2.5, rtt_ms: 1 } }],
      links: [
        { from: 'a', to: 'b', lag_bytes: 0, state: 'replicating', slot: 's', retained_bytes: 10, lag_seconds: 0 },
        {
          from: 'b',
          to: 'a',
          lag_bytes: 900,
          state: 'down',
          slot: 't',
          retained_bytes: 900,
          lag_seconds: null,
          apply_error: 'duplicate key value violates unique constraint "t_pkey"',
        },
      ],
    };
    assert.deepEqual(meshStatusText(d), [
      'sites:',
      '  a: leader h:1; members h:1; clock -2.5 ms (±0.5)',
      'links (provider → subscriber):',
      '  a → b: replicating, lag 0 bytes (0 s), slot s retains 10 bytes',
      '  b → a: down, lag 900 bytes (? s), slot t retains 900 bytes',
      '    last apply error on a: duplicate key value violates unique constraint "t_pkey"',
    ]);
    assert.deepEqual(Object.keys(stableMeshStatus(d).links[1] ?? {}).sort(), ['from', 'lag_bytes', 'state', 'to']);
    assert.deepEqual(Object.keys(stableMeshStatus(d).sites[0] ?? {}).sort(), ['leader', 'members', 'scope']);
  });

  it('a clock offset is the server reading against the midpoint of the round trip', () => {
    assert.deepEqual(clockOffset(1000, 1507, 1010), { offset_ms: 502, rtt_ms: 10 });
    assert.deepEqual(clockOffset(1000, 990, 1004), { offset_ms: -12, rtt_ms: 4 });
  });
});
