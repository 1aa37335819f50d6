import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FENCE_STOP_TIMEOUT_MS, fencePostgres, type Fenceable } from './fence.js';

function fakePg(running: boolean): Fenceable & { stops: Array<[string, number]> } {
  const pg = {
    stops: [] as Array<[string, number]>,
    isRunning: () => running,
    stop: async (mode: 'fast' | 'immediate', ms: number) => {
      pg.stops.push([mode, ms]);
      running = false;
    },
  };
  return pg;
}

describe('pgkeel fence', () => {
  it('stops a running PostgreSQL immediately (no checkpoint, no waiting for clients)', async () => {
    const pg = fakePg(true);
    assert.equal(await fencePostgres(pg, '/d'), 'stopped PostgreSQL in /d (immediate): its agent is gone');
    assert.deepEqual(pg.stops, [['immediate', FENCE_STOP_TIMEOUT_MS]]);
  });

  it('leaves a stopped PostgreSQL alone', async () => {
    const pg = fakePg(false);
    assert.match(await fencePostgres(pg, '/d'), /not running: nothing to fence/);
    assert.deepEqual(pg.stops, []);
  });
});
