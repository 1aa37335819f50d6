import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { isMeshError } from './errors.js';
import { allSiteDirs, detachLocalSite, growLocalMesh, MESH_FILE, readLocalMesh, siteDirs } from './local.js';

describe('a local mesh grown and shrunk (mesh.json)', () => {
  const withMesh = (sites: number, fn: (dir: string) => Promise<void> | void) => async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mesh-leave-'));
    try {
      writeFileSync(join(dir, MESH_FILE), JSON.stringify({ sites, nodes: 1, portBase: 25400, database: 'postgres' }));
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const names = (dirs: string[]) => dirs.map((d) => basename(d));

  it(
    'a detached site leaves the mesh sites but is still started and stopped with the directory',
    withMesh(3, (dir) => {
      detachLocalSite(readLocalMesh(dir) as NonNullable<ReturnType<typeof readLocalMesh>>, 'site2');
      const m = readLocalMesh(dir);
      assert.ok(m);
      assert.deepEqual(m.detached, [2]);
      assert.deepEqual(names(siteDirs(m)), ['site1', 'site3']);
      assert.deepEqual(names(allSiteDirs(m)), ['site1', 'site2', 'site3']);
      detachLocalSite(m, 'site2');
      detachLocalSite(m, 'elsewhere');
      assert.deepEqual(readLocalMesh(dir)?.detached, [2]);
    }),
  );

  it(
    'grows to at most 5 sites',
    withMesh(5, async (dir) => {
      const m = readLocalMesh(dir);
      assert.ok(m);
      await assert.rejects(
        growLocalMesh(m, { timeoutMs: 1000, progress: () => {} }),
        (e) => isMeshError(e, 'MESH_USAGE') && /at most 5 sites/.test(e.message),
      );
    }),
  );
});
