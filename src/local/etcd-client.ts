/**
 * How `status` and `ctl --dir` reach a local cluster's etcd: with the first node's `etcd3` settings (https, CA,
 * client certificate, user), so a cluster made with TLS and etcd authentication needs no extra flags.
 */
import { existsSync } from 'node:fs';
import { loadConfig } from '../config/load.js';
import type { EtcdSecurity } from '../config/etcd-section.js';
import { paths, type LocalCluster } from './layout.js';

export function localEtcdSection(lc: LocalCluster): { hosts: string[] } & EtcdSecurity {
  const first = lc.nodes[0]?.name;
  const file = first === undefined ? undefined : paths.nodeConfig(lc.dir, first);
  // No environment overrides: the cluster directory alone says how to reach its etcd.
  if (file !== undefined && existsSync(file)) return { ...loadConfig(file, {}).etcd3, hosts: [`${lc.host}:${lc.etcd.clientPort}`] };
  return { hosts: [`${lc.host}:${lc.etcd.clientPort}`], protocol: 'http' };
}
