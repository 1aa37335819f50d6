/** `up`'s REST credentials on disk: generated for a new cluster, added to an older one, an operator's own kept. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseDocument } from 'yaml';
import { loadConfig } from '../config/load.js';
import { targetFromDir } from '../ctl/target.js';
import { createLocalCluster, migrateRestCredentials, paths, readLocalCluster } from './layout.js';

const restOf = (file: string) =>
  (parse(readFileSync(file, 'utf8')) as { restapi: { authentication?: unknown } }).restapi.authentication;

describe('local cluster REST credentials', () => {
  it('a new cluster has them in cluster.json and every node.yml (0600), and ctl --dir sends them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgkeel-restcred-'));
    try {
      const lc = createLocalCluster(dir, { nodes: 2, portBase: 30000 });
      const saved = JSON.parse(readFileSync(paths.clusterFile(dir), 'utf8')) as {
        restapi: { username: string; password: string };
      };
      assert.equal(saved.restapi.username, 'pgkeel');
      assert.match(saved.restapi.password, /^[A-Za-z0-9_-]{24}$/);
      assert.equal(statSync(paths.clusterFile(dir)).mode & 0o777, 0o600);
      for (const n of lc.nodes) {
        assert.deepEqual(restOf(paths.nodeConfig(dir, n.name)), saved.restapi);
        assert.equal(statSync(paths.nodeConfig(dir, n.name)).mode & 0o777, 0o600);
        assert.deepEqual(loadConfig(paths.nodeConfig(dir, n.name), {}).restapi.authentication, saved.restapi);
      }
      assert.deepEqual(targetFromDir(dir, {}).rest.auth, saved.restapi);
      assert.equal(migrateRestCredentials(lc), false, 'nothing to add');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("an older cluster gets them once; an operator's own node.yml credentials stay", () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgkeel-restcred-'));
    try {
      createLocalCluster(dir, { nodes: 2, portBase: 30000 });
      const cj = JSON.parse(readFileSync(paths.clusterFile(dir), 'utf8')) as Record<string, unknown>;
      delete cj['restapi'];
      writeFileSync(paths.clusterFile(dir), JSON.stringify(cj));
      const n1 = parseDocument(readFileSync(paths.nodeConfig(dir, 'node1'), 'utf8'));
      n1.deleteIn(['restapi', 'authentication']);
      writeFileSync(paths.nodeConfig(dir, 'node1'), n1.toString());
      const n2 = parseDocument(readFileSync(paths.nodeConfig(dir, 'node2'), 'utf8'));
      n2.setIn(['restapi', 'authentication'], n2.createNode({ username: 'ops', password: 'theirs' }));
      writeFileSync(paths.nodeConfig(dir, 'node2'), n2.toString());

      const lc = readLocalCluster(dir);
      assert.ok(lc);
      assert.equal(migrateRestCredentials(lc), true);
      const saved = JSON.parse(readFileSync(paths.clusterFile(dir), 'utf8')) as {
        restapi: { username: string; password: string };
      };
      assert.deepEqual(restOf(paths.nodeConfig(dir, 'node1')), saved.restapi);
      assert.deepEqual(restOf(paths.nodeConfig(dir, 'node2')), { username: 'ops', password: 'theirs' });
      assert.match(
        readFileSync(paths.nodeConfig(dir, 'node1'), 'utf8'),
        /^# pgkeel node config written by `pgkeel up`/,
        'comments kept',
      );
      assert.equal(
        migrateRestCredentials(readLocalCluster(dir) as NonNullable<typeof lc>),
        false,
        'a second up changes nothing',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
