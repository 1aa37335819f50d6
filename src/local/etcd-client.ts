/**
 * How `status` and `ctl --dir` reach a local cluster's etcd: with the first node's `etcd3` settings (https, CA,
 * client certificate, user), so a cluster made with TLS and etcd authentication needs no extra flags.
 */
import { existsSync } from 'node:fs';
import { loadConfig } from '../config/load.js';
import type { EtcdSecurity } from '../config/etcd-section.js';
import { join } from 'node:path';
import { LocalClusterError, paths, type LocalCluster } from './layout.js';
import { localEtcdSecrets } from './etcd-security.js';

export function localEtcdSection(lc: LocalCluster): { hosts: string[] } & EtcdSecurity {
  const hosts = [`${lc.host}:${lc.etcd.clientPort}`];
  // Without --tls: plain http with the cluster's etcd user (from DIR/etcd/auth.json, so a node.yml being edited does
  // not break `status`); a cluster made before etcd authentication existed has no such file until its next `up`.
  if (!lc.tls) {
    if (!existsSync(join(paths.etcdDir(lc.dir), 'auth.json'))) return { hosts, protocol: 'http' };
    const s = localEtcdSecrets(lc.dir);
    return { hosts, protocol: 'http', username: s.username, password: s.password };
  }
  const first = lc.nodes[0]?.name;
  const file = first === undefined ? undefined : paths.nodeConfig(lc.dir, first);
  if (file === undefined || !existsSync(file))
    throw new LocalClusterError(
      `${lc.dir} is a --tls cluster but has no ${file ?? 'node config'} to take the etcd client settings from`,
    );
  // No environment overrides: the cluster directory alone says how to reach its etcd.
  return { ...loadConfig(file, {}).etcd3, hosts };
}
