/**
 * `pgkeel status`: the cluster as the DCS sees it, in the stable `--json` shape scripts rely on
 * (documented in README.md, "status --json"), or as a table.
 */
import { join } from 'node:path';
import { clusterKeys, parseCluster } from '../dcs/layout.js';
import { EtcdStore } from '../dcs/etcd.js';
import { etcdStoreOptions } from '../config/etcd-section.js';
import { localEtcdSection } from './etcd-client.js';
import { clusterView, type ClusterView } from '../cluster/view.js';
import { livePid, managed } from './processes.js';
import { paths, type LocalCluster } from './layout.js';

export interface StatusMember {
  name: string;
  role: 'leader' | 'sync_standby' | 'replica';
  state: string;
  host: string;
  port: number;
  api_url: string;
  pid: number | null;
  data_dir: string;
  timeline: number | null;
  lag_bytes: number | null;
}

export interface StatusJson {
  scope: string;
  etcd: string;
  user: string;
  passfile: string;
  members: StatusMember[];
  proxy?: { rw: string; ro: string };
  /** Set when the DCS could not be read; members then come from the local configs with state "unknown"/"stopped". */
  error?: string;
}

export async function readView(lc: LocalCluster, timeoutMs = 3000): Promise<ClusterView> {
  const store = new EtcdStore(
    etcdStoreOptions(localEtcdSection(lc), timeoutMs, 'etcd3', paths.nodeConfig(lc.dir, lc.nodes[0]?.name ?? '')),
  );
  try {
    const keys = clusterKeys(lc.scope);
    return clusterView(lc.scope, parseCluster(keys, await store.getPrefix(keys.prefix)));
  } finally {
    await store.close();
  }
}

export async function localStatus(lc: LocalCluster): Promise<StatusJson> {
  const out: StatusJson = {
    scope: lc.scope,
    etcd: `${lc.host}:${lc.etcd.clientPort}`,
    user: lc.superuser.username,
    passfile: paths.pgpass(lc.dir),
    members: [],
  };
  if (livePid(managed.proxy(lc)) !== null)
    out.proxy = { rw: `${lc.host}:${lc.proxy.rw}`, ro: `${lc.host}:${lc.proxy.ro}` };
  let view: ClusterView | null = null;
  try {
    view = await readView(lc);
  } catch (err) {
    out.error = `cannot read the DCS at ${out.etcd}: ${(err as Error).message}`;
  }
  for (const n of lc.nodes) {
    const m = view?.members.find((x) => x.name === n.name);
    const agentPid = livePid(managed.agent(lc, n.name));
    out.members.push({
      name: n.name,
      role: m?.role ?? 'replica',
      state: m ? m.state : agentPid ? 'unknown' : 'stopped',
      host: lc.host,
      port: n.pgPort,
      // As the agent publishes it (https:// with REST TLS); before it has, the address `up` gave it.
      api_url: m?.api_url || `http://${lc.host}:${n.apiPort}/patroni`,
      pid: m?.pid ?? agentPid,
      data_dir: m?.data_dir ?? join(paths.nodeDir(lc.dir, n.name), 'data'),
      timeline: m?.timeline ?? null,
      lag_bytes: m?.lag_bytes ?? null,
    });
  }
  return out;
}
