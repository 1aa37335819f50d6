/**
 * Where backup commands get their settings: a node config (`-c node.yml`) or a local cluster made by `pgkeel up`
 * (`--dir DIR`: its first node's config), plus the cluster's dynamic configuration read from the DCS.
 */
import { existsSync } from 'node:fs';
import { clusterView, type ClusterView } from '../cluster/view.js';
import { etcdStoreOptions } from '../config/etcd-section.js';
import { loadConfig } from '../config/load.js';
import type { NodeConfig } from '../config/node.js';
import { EtcdStore } from '../dcs/etcd.js';
import { type ClusterKeys, clusterKeys, parseCluster } from '../dcs/layout.js';
import { effectiveDynamic } from '../ha/settings.js';
import { LocalClusterError, paths, readLocalCluster } from '../local/layout.js';
import { type BackupSettings, effectiveBackup } from './config.js';

export interface BackupContext extends AsyncDisposable {
  readonly cfg: NodeConfig;
  readonly settings: BackupSettings;
  readonly dcs: EtcdStore;
  readonly keys: ClusterKeys;
  readView(): Promise<ClusterView>;
}

/** The node config a `--dir` or `-c` names. */
export function nodeConfigFor(opts: { dir?: string; config?: string }): NodeConfig {
  if (opts.config) return loadConfig(opts.config);
  const dir = opts.dir as string;
  const lc = readLocalCluster(dir);
  if (!lc)
    throw new LocalClusterError(
      `no pgkeel cluster in ${dir} (no cluster.json); start one with \`pgkeel up --dir ${dir}\` or point at a node config with -c node.yml`,
    );
  const first = lc.nodes[0]?.name ?? 'node1';
  const file = paths.nodeConfig(lc.dir, first);
  if (!existsSync(file)) throw new LocalClusterError(`${file} is missing: run \`pgkeel up --dir ${dir}\` once`);
  return loadConfig(file);
}

export async function backupContext(opts: { dir?: string; config?: string }): Promise<BackupContext> {
  const cfg = nodeConfigFor(opts);
  const dcs = new EtcdStore(etcdStoreOptions(cfg.etcd3, 5000, 'etcd3', opts.config ?? opts.dir ?? ''));
  const keys = clusterKeys(cfg.scope, cfg.namespace);
  try {
    const cluster = parseCluster(keys, await dcs.getPrefix(keys.prefix));
    const dyn = effectiveDynamic(cfg, cluster).config;
    const allow = cfg.postgresql.allow_dynamic_parameters.some((p) => p.toLowerCase() === 'archive_command');
    const { settings, problems } = effectiveBackup(dyn.backup, cfg.backup, allow);
    if (!settings)
      throw new LocalClusterError(
        `no backup repository configured for cluster ${cfg.scope}: set backup.repo in the node config${problems.length ? ` (${problems.join('; ')})` : ''}`,
      );
    return {
      cfg,
      settings,
      dcs,
      keys,
      async readView() {
        return clusterView(cfg.scope, parseCluster(keys, await dcs.getPrefix(keys.prefix)));
      },
      async [Symbol.asyncDispose]() {
        await dcs.close();
      },
    };
  } catch (err) {
    await dcs.close();
    throw err;
  }
}
