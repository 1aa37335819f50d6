/**
 * How `status` and `ctl --dir` reach a local cluster's etcd: with the first node's `etcd3` settings (https, CA,
 * client certificate, user), so a cluster made with TLS and etcd authentication needs no extra flags.
 */
import { existsSync } from 'node:fs';
import { loadConfig } from '../config/load.js';
import type { EtcdSecurity } from '../config/etcd-section.js';
import { LocalClusterError, paths, type LocalCluster } from './layout.js';

export function localEtcdSection(lc: LocalCluster): { hosts: string[] } & EtcdSecurity {
  const hosts = [`${lc.host}:${lc.etcd.clientPort}`];
  // A cluster made without --tls reads nothing more, as before (a node.yml being edited does not break `status`).
  if (!lc.tls) return { hosts, protocol: 'http' };
  const first = lc.nodes[0]?.name;
  const file = first === undefined ? undefined : paths.nodeConfig(lc.dir, first);
  if (file === undefined || !existsSync(file)) throw new LocalClusterError(`${lc.dir} is a --tls cluster but has no ${file ?? 'node config'} to take the etcd client settings from`);
  // No environment overrides: the cluster directory alone says how to reach its etcd.
  return { ...loadConfig(file, {}).etcd3, hosts };
}
