import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../config/load.js';
import { sslModeOf } from '../postgres/tls.js';
import { createLocalCluster, ensureProxyFiles, paths, readLocalCluster } from './layout.js';
import { prepare } from './up.js';

const withDir = (fn: (dir: string) => void) => {
  const d = mkdtempSync(join(tmpdir(), 'pgkeel-uptls-'));
  try {
    fn(join(d, 'c'));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
};

describe('up --tls: the files it writes', () => {
  it("node.yml turns PostgreSQL ssl on with the node's certificate and verify-full for replication and pg_rewind; cluster.json keeps tls", () => {
    withDir((dir) => {
      const lc = createLocalCluster(dir, { nodes: 2, portBase: 31000, tls: true });
      assert.equal(lc.tls, true);
      assert.equal(readLocalCluster(dir)?.tls, true, 'a later up reads it back');
      const cfg = loadConfig(paths.nodeConfig(dir, 'node2'));
      assert.deepEqual(
        {
          ssl: cfg.postgresql.parameters['ssl'],
          cert: cfg.postgresql.parameters['ssl_cert_file'],
          key: cfg.postgresql.parameters['ssl_key_file'],
          ca: cfg.postgresql.parameters['ssl_ca_file'],
        },
        {
          ssl: 'on',
          cert: join(dir, 'tls', 'node2.crt'),
          key: join(dir, 'tls', 'node2.key'),
          ca: join(dir, 'tls', 'ca.crt'),
        },
      );
      for (const role of ['superuser', 'replication'] as const) {
        const a = cfg.postgresql.authentication[role];
        assert.equal(sslModeOf(a), 'verify-full');
        assert.equal(a.sslrootcert, join(dir, 'tls', 'ca.crt'));
      }
      assert.equal(
        cfg.postgresql.connect_address.split(':')[0],
        '127.0.0.1',
        'the host verify-full checks, an IP SAN of the certificates',
      );
      ensureProxyFiles(lc);
      const proxy = parse(readFileSync(paths.proxyConfig(dir), 'utf8')) as Record<string, unknown>;
      assert.equal(
        proxy['server_tls_sslmode'],
        'verify-full',
        "the proxy checks the servers' certificates and host name",
      );
      assert.equal(proxy['server_tls_ca_file'], join(dir, 'tls', 'ca.crt'));
    });
  });

  it('without --tls nothing changes: no ssl settings, tls false', () => {
    withDir((dir) => {
      const lc = createLocalCluster(dir, { nodes: 1, portBase: 31000 });
      assert.equal(lc.tls, false);
      const cfg = loadConfig(paths.nodeConfig(dir, 'node1'));
      assert.equal(cfg.postgresql.parameters['ssl'], undefined);
      assert.equal(sslModeOf(cfg.postgresql.authentication.replication), 'prefer');
    });
  });

  it('a cluster keeps its transport: --tls on a cluster created without it is refused, naming the way out', () => {
    withDir((dir) => {
      createLocalCluster(dir, { nodes: 1, portBase: 31000 });
      assert.throws(
        () => prepare({ dir, tls: true, progress: () => {} }),
        /created without --tls; a cluster keeps its transport/,
      );
    });
    withDir((dir) => {
      createLocalCluster(dir, { nodes: 1, portBase: 31000, tls: true });
      assert.equal(prepare({ dir, progress: () => {} }).tls, true, 'a TLS cluster stays TLS without the flag');
    });
  });
});
