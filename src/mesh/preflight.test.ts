import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Sql } from './engine.js';
import { isMeshError } from './errors.js';
import { type PreflightReport, measureClocks, preflightText, refuseUnsafe } from './preflight.js';

const report = (extra: Partial<PreflightReport> = {}): PreflightReport => ({
  ok: true,
  problems: [],
  sites: [
    { scope: 'site1', schemaHash: 'aaaa', tables: 2 },
    { scope: 'site2', schemaHash: 'aaaa', tables: 2 },
  ],
  clocks: [
    { site: 'site1', offsetMs: 0.5, rttMs: 1 },
    { site: 'site2', offsetMs: -0.5, rttMs: 2 },
  ],
  maxClockOffsetMs: 500,
  ...extra,
});

describe('preflight report', () => {
  it('prints hashes, clocks and ok', () => {
    assert.deepEqual(preflightText(report()), [
      'schema: site1 aaaa (2 table(s)), site2 aaaa (2 table(s))',
      'clocks vs local (bound 500 ms between sites): site1 +0.5 ms ±0.5, site2 -0.5 ms ±1.0',
      'preflight ok: the schemas are safe to replicate multi-master',
    ]);
    assert.doesNotThrow(() => refuseUnsafe(report()));
  });

  it('lists every problem with its code, and refuses with MESH_PREFLIGHT_REFUSED carrying them all', () => {
    const r = report({
      ok: false,
      problems: [
        { code: 'MESH_NO_REPLICA_IDENTITY', site: 'site1', table: 'public.a', message: 'site site1: table public.a …' },
        { code: 'MESH_CLOCK_SKEW', message: 'the clocks …' },
      ],
    });
    assert.deepEqual(preflightText(r).slice(2), [
      'preflight refused: 2 problem(s)',
      '  MESH_NO_REPLICA_IDENTITY: site site1: table public.a …',
      '  MESH_CLOCK_SKEW: the clocks …',
    ]);
    try {
      refuseUnsafe(r);
      assert.fail('not refused');
    } catch (e) {
      assert.ok(isMeshError(e, 'MESH_PREFLIGHT_REFUSED'));
      assert.equal(
        e.detail,
        '  MESH_NO_REPLICA_IDENTITY: site site1: table public.a …\n  MESH_CLOCK_SKEW: the clocks …',
      );
    }
  });
});

describe('measureClocks', () => {
  it("reads each site's clock_timestamp() between two readings of the injected local clock", async () => {
    let local = 1000;
    const now = () => {
      local += 10;
      return local;
    };
    // The site's clock runs 2 s ahead of the local one: it answers with the local time at the midpoint + 2000.
    const db: Sql = {
      query: async <R extends Record<string, unknown>>() => [{ ms: String(local + 5 + 2000) }] as unknown as R[],
    };
    const [o] = await measureClocks([{ scope: 's', db }], now, 3);
    assert.deepEqual(o, { site: 's', offsetMs: 2000, rttMs: 10 });
  });
});
