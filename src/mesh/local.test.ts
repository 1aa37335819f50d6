import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMeshError } from './errors.js';
import { MESH_FILE, upMesh } from './local.js';

describe('up --mesh refusals (before anything starts)', () => {
  const withDir = async (fn: (dir: string) => Promise<void>) => {
    const dir = mkdtempSync(join(tmpdir(), 'mesh-local-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const progress = () => {};

  it('takes 2 or 3 sites', async () => {
    await withDir(async (dir) => {
      for (const sites of [1, 4, 2.5])
        await assert.rejects(
          upMesh({ dir, sites, progress }),
          (e) => isMeshError(e, 'MESH_USAGE') && /2 or 3/.test(e.message),
        );
    });
  });

  it('refuses a directory holding a plain cluster', async () => {
    await withDir(async (dir) => {
      writeFileSync(join(dir, 'cluster.json'), '{}');
      await assert.rejects(
        upMesh({ dir, sites: 2, progress }),
        (e) => isMeshError(e, 'MESH_USAGE') && /plain cluster/.test(e.message),
      );
    });
  });

  it('refuses another shape for an existing mesh', async () => {
    await withDir(async (dir) => {
      writeFileSync(
        join(dir, MESH_FILE),
        JSON.stringify({ sites: 2, nodes: 1, portBase: 26000, database: 'postgres' }),
      );
      for (const o of [{ sites: 3 }, { sites: 2, nodes: 2 }, { sites: 2, portBase: 27000 }])
        await assert.rejects(
          upMesh({ dir, ...o, progress }),
          (e) => isMeshError(e, 'MESH_USAGE') && /2-site mesh/.test(e.message),
        );
    });
  });
});
