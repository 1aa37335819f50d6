/**
 * `pgkeel status`: the cluster as the DCS sees it, in the stable `--json` shape scripts rely on
 * (documented in README.md, "status --json"), or as a table.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isBackupError } from '../backup/errors.js';
import { backupReport } from '../backup/report.js';
import { openStore } from '../backup/run.js';
import { clusterKeys, parseCluster, type Cluster } from '../dcs/layout.js';
import { EtcdStore } from '../dcs/etcd.js';
import { etcdStoreOptions } from '../config/etcd-section.js';
import { localEtcdSection } from './etcd-client.js';
import { clusterView, type ClusterView } from '../cluster/view.js';
import { livePid, managed } from './processes.js';
import { paths, type LocalCluster } from './layout.js';
import { dashboardUrl } from '../observe/dashboard/service.js';
import { healthVerdict, maximumLagOf, type HealthVerdict } from '../observe/status/health-verdict.js';
import { lastFailover, type LastFailover } from '../observe/status/last-failover.js';

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
  /** Replay lag in seconds as the member publishes it (pg_replication_lag_seconds); 0 on the leader. */
  lag_seconds?: number | null;
}

export interface StatusJson {
  scope: string;
  etcd: string;
  user: string;
  passfile: string;
  members: StatusMember[];
  proxy?: { rw: string; ro: string };
  /** The backup repository and the recoverable window (times ISO 8601; null until there is a backup). */
  backup?: StatusBackup;
  /** The last change of leader (the DCS `/history` key); null before the first or when the DCS is unreadable. */
  last_failover?: LastFailover | null;
  /** One verdict with its reason (src/observe/status/health-verdict.ts). */
  health?: HealthVerdict;
  /** Set when the DCS could not be read; members then come from the local configs with state "unknown"/"stopped". */
  error?: string;
  /** The web dashboard on the leader's REST API (else the first member's); absent when no member's API is known. */
  dashboard?: string;
}

export interface StatusBackup {
  repo: string;
  last_backup_time: string | null;
  last_backup_id: string | null;
  recoverable_from: string | null;
  recoverable_to: string | null;
  /** Set when the repository could not be read. */
  error?: string;
}

/** The local cluster's repository, summarised; absent when the cluster has none. */
async function backupStatus(lc: LocalCluster): Promise<StatusBackup | undefined> {
  const repo = paths.backupRepo(lc.dir);
  if (!existsSync(repo)) return undefined;
  const none = { repo, last_backup_time: null, last_backup_id: null, recoverable_from: null, recoverable_to: null };
  try {
    const r = await backupReport(await openStore({ repo }, false));
    const last = r.backups.filter((b) => b.status === 'ok').at(-1);
    return {
      ...none,
      last_backup_time: last?.stop_time ?? null,
      last_backup_id: last?.id ?? null,
      recoverable_from: r.recoverable_from,
      recoverable_to: r.recoverable_to,
    };
  } catch (err) {
    if (isBackupError(err, 'REPO_NOT_INITIALIZED')) return none;
    return { ...none, error: (err as Error).message };
  }
}

export async function readView(lc: LocalCluster, timeoutMs = 3000): Promise<ClusterView> {
  return clusterView(lc.scope, await readDcsCluster(lc, timeoutMs));
}

async function readDcsCluster(lc: LocalCluster, timeoutMs = 3000): Promise<Cluster> {
  const store = new EtcdStore(
    etcdStoreOptions(localEtcdSection(lc), timeoutMs, 'etcd3', paths.nodeConfig(lc.dir, lc.nodes[0]?.name ?? '')),
  );
  try {
    const keys = clusterKeys(lc.scope);
    return parseCluster(keys, await store.getPrefix(keys.prefix));
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
    last_failover: null,
    health: { verdict: 'critical', reason: 'the DCS cannot be read' },
  };
  if (livePid(managed.proxy(lc)) !== null)
    out.proxy = { rw: `${lc.host}:${lc.proxy.rw}`, ro: `${lc.host}:${lc.proxy.ro}` };
  const backup = await backupStatus(lc);
  if (backup) out.backup = backup;
  let view: ClusterView | null = null;
  let cluster: Cluster | null = null;
  try {
    cluster = await readDcsCluster(lc);
    view = clusterView(lc.scope, cluster);
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
      lag_seconds: m?.lag_seconds ?? null,
    });
  }
  if (cluster && view) {
    out.last_failover = lastFailover(cluster);
    const expected = lc.nodes.map((n) => n.name);
    out.health = healthVerdict({ ...view, maximumLagOnFailover: maximumLagOf(cluster), expected });
  }
  const api = (out.members.find((m) => m.role === 'leader') ?? out.members[0])?.api_url;
  if (api) out.dashboard = dashboardUrl(api);
  return out;
}
