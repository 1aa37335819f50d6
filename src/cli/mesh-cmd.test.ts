import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from './args.js';
import { runMeshCommand, sitesFromFlags } from './mesh-cmd.js';
import { isMeshError } from '../mesh/errors.js';

describe('mesh command arguments', () => {
  it('needs --dir or two --site, not both', () => {
    assert.throws(
      () => sitesFromFlags({}),
      (e) => e instanceof UsageError && /--site X twice/.test(e.message),
    );
    assert.throws(
      () => sitesFromFlags({ site: ['x'] }),
      (e) => e instanceof UsageError && /--site X twice/.test(e.message),
    );
    assert.throws(
      () => sitesFromFlags({ dir: 'd', site: ['x', 'y'] }),
      (e) => e instanceof UsageError && /not both/.test(e.message),
    );
  });

  it('refuses a directory without a mesh and a site that does not exist', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mesh-args-'));
    try {
      assert.throws(
        () => sitesFromFlags({ dir }),
        (e) => e instanceof UsageError && /no mesh/.test(e.message),
      );
      assert.throws(
        () => sitesFromFlags({ site: [join(dir, 'nope'), dir] }),
        (e) => isMeshError(e, 'MESH_USAGE') && /no such directory/.test(e.message),
      );
      assert.throws(
        () => sitesFromFlags({ site: [dir, dir] }),
        (e) => isMeshError(e, 'MESH_USAGE') && /no local cluster/.test(e.message),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an unknown subcommand and --table outside check', async () => {
    await assert.rejects(
      runMeshCommand(['drop']),
      (e) => e instanceof UsageError && /unknown mesh command/.test(e.message),
    );
    await assert.rejects(
      runMeshCommand(['status', '--table', 't', '--dir', 'd']),
      (e) => e instanceof UsageError && /--table is for/.test(e.message),
    );
  });
});
