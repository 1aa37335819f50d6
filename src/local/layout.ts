/**
 * The on-disk layout of a local cluster made by `pgkeel up` (DIR defaults to ./pgkeel-data):
 *
 *   DIR/cluster.json            ports, scope, node names, passwords incl. the REST credentials (0600; later `up`s reuse it)
 *   DIR/pgpass                  libpq password file for the superuser (PGPASSFILE)
 *   DIR/etcd/{data,etcd.log,etcd.pid}
 *   DIR/tls/                    (`up --tls`) ca.{crt,key} and one certificate per node, <node>.{crt,key}
 *   DIR/backup/                 the backup repository: archived WAL and base backups (docs/backup.md), postgres-owned
 *   DIR/<node>/{node.yml,data,run,agent.log,agent.pid,postgresql.log,pgpass}
 *
 * As root, DIR and the node folders are root's (0755) and hold root's files (node.yml 0600, agent.pid); only data/,
 * run/, postgresql.log and the node's pgpass belong to `postgres` (docs/architecture.md, "Privileges").
 *
 * Ports come from --port-base P: etcd P (peer P+1), proxy rw P+2 / ro P+3 / admin P+4,
 * node i (1-based) PostgreSQL P+10+i and REST API P+20+i.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseDocument, stringify } from 'yaml';
import type { BootstrapRestoreConfig } from '../config/bootstrap-restore.js';
import { pgpassLine } from '../postgres/conf.js';
import { localTlsDir, postgresTls, proxyServerTls } from './tls.js';
import { restTlsSections } from './rest-tls.js';

export const DEFAULT_DIR = 'pgkeel-data';
export const DEFAULT_PORT_BASE = 25400;
export const MAX_NODES = 9;

export interface LocalCluster {
  scope: string;
  dir: string;
  portBase: number;
  host: string;
  etcd: { clientPort: number; peerPort: number };
  proxy: { rw: number; ro: number; admin: number };
  nodes: Array<{ name: string; pgPort: number; apiPort: number }>;
  superuser: { username: string; password: string };
  /** Basic auth for the agents' unsafe REST endpoints (also in every node.yml's restapi.authentication). */
  restapi: { username: string; password: string };
  /** Made with `up --tls`: PostgreSQL ssl with verify-full replication (tls.ts), etcd https with client certificates and
   *  authentication (etcd-security.ts); kept by every later `up`. */
  tls: boolean;
}

interface Saved {
  scope: string;
  portBase: number;
  host: string;
  nodes: number;
  superuser: { username: string; password: string };
  replication: { username: string; password: string };
  /** Absent in clusters created before REST credentials existed: `up` adds them (see migrateRestCredentials). */
  restapi?: { username: string; password: string };
  tls?: boolean;
}

export function layoutFor(dir: string, saved: Saved): LocalCluster {
  const P = saved.portBase;
  return {
    scope: saved.scope,
    dir,
    portBase: P,
    host: saved.host,
    etcd: { clientPort: P, peerPort: P + 1 },
    proxy: { rw: P + 2, ro: P + 3, admin: P + 4 },
    nodes: Array.from({ length: saved.nodes }, (_, i) => ({
      name: `node${i + 1}`,
      pgPort: P + 11 + i,
      apiPort: P + 21 + i,
    })),
    superuser: saved.superuser,
    restapi: saved.restapi ?? { username: REST_USER, password: '' },
    tls: saved.tls === true,
  };
}

export const paths = {
  clusterFile: (dir: string) => join(dir, 'cluster.json'),
  pgpass: (dir: string) => join(dir, 'pgpass'),
  etcdDir: (dir: string) => join(dir, 'etcd'),
  etcdPid: (dir: string) => join(dir, 'etcd', 'etcd.pid'),
  etcdLog: (dir: string) => join(dir, 'etcd', 'etcd.log'),
  nodeDir: (dir: string, name: string) => join(dir, name),
  /** The cluster's backup repository (WAL archive and base backups), postgres-owned. */
  backupRepo: (dir: string) => join(dir, 'backup'),
  nodeConfig: (dir: string, name: string) => join(dir, name, 'node.yml'),
  agentPid: (dir: string, name: string) => join(dir, name, 'agent.pid'),
  agentLog: (dir: string, name: string) => join(dir, name, 'agent.log'),
  proxyPid: (dir: string) => join(dir, 'proxy.pid'),
  proxyLog: (dir: string) => join(dir, 'proxy.log'),
  proxyConfig: (dir: string) => join(dir, 'proxy.yml'),
  userlist: (dir: string) => join(dir, 'userlist.txt'),
  tlsDir: localTlsDir,
};

export class LocalClusterError extends Error {
  readonly code = 'LOCAL_CLUSTER';
}

/**
 * The proxy `up` runs in front of the cluster: follows the leader through etcd, transaction pooling, SCRAM for
 * clients, the superuser's password from a pgBouncer-style userlist.txt for logging in to the servers.
 * Written when missing, so clusters created before the proxy existed get one too.
 */
export function ensureProxyFiles(lc: LocalCluster, etcdClient: Record<string, string> = {}): void {
  const su = lc.superuser;
  if (!existsSync(paths.userlist(lc.dir))) {
    writeFileSync(paths.userlist(lc.dir), `"${su.username}" "${su.password.replace(/"/g, '""')}"\n`, { mode: 0o600 });
  }
  if (existsSync(paths.proxyConfig(lc.dir))) return;
  const cfg = {
    listen: `${lc.host}:${lc.proxy.rw}`,
    ro_listen: `${lc.host}:${lc.proxy.ro}`,
    metrics_listen: `${lc.host}:${lc.proxy.admin}`,
    pool_mode: 'transaction',
    default_pool_size: 20,
    max_client_conn: 1000,
    auth_type: 'scram-sha-256',
    auth_file: paths.userlist(lc.dir),
    etcd: { hosts: [`${lc.host}:${lc.etcd.clientPort}`], scope: lc.scope, ...etcdClient },
    ...(lc.tls ? proxyServerTls(lc.dir) : {}),
  };
  writeFileSync(
    paths.proxyConfig(lc.dir),
    `# pgkeel proxy config written by \`pgkeel up\`; see docs/proxy.md\n${stringify(cfg)}`,
    { mode: 0o600 },
  );
}

/** Reads DIR/cluster.json, or null when DIR holds no cluster yet. */
export function readLocalCluster(dirArg: string): LocalCluster | null {
  const dir = resolve(dirArg);
  const file = paths.clusterFile(dir);
  if (!existsSync(file)) return null;
  let saved: Saved;
  try {
    saved = JSON.parse(readFileSync(file, 'utf8')) as Saved;
  } catch (err) {
    throw new LocalClusterError(`${file} is not valid JSON (${(err as Error).message}); fix or remove it`);
  }
  return layoutFor(dir, saved);
}

/** A generated password: 18 random bytes (crypto), base64url. */
export const newSecret = () => randomBytes(18).toString('base64url');
/** The user name of the REST API's basic auth that `up` and `init` write. */
export const REST_USER = 'pgkeel';

/** A node.yml's text: a header naming the command that wrote it, then the YAML. */
export function nodeConfigText(cfg: object, writer: string): string {
  return `# pgkeel node config written by \`${writer}\`; see docs/config.md\n${stringify(cfg)}`;
}

/**
 * A cluster created before `up` set REST credentials gets them now: generated into cluster.json, added to every
 * node.yml's restapi.authentication (other settings kept). Returns true when anything changed, so the caller
 * restarts running agents, which read their config only at start.
 */
export function migrateRestCredentials(lc: LocalCluster): boolean {
  const file = paths.clusterFile(lc.dir);
  const saved = JSON.parse(readFileSync(file, 'utf8')) as Saved;
  let changed = false;
  if (!saved.restapi?.password) {
    saved.restapi = { username: REST_USER, password: newSecret() };
    writeFileSync(file, JSON.stringify(saved, null, 2) + '\n', { mode: 0o600 });
    chmodSync(file, 0o600);
    changed = true;
  }
  lc.restapi = saved.restapi;
  for (const n of lc.nodes) {
    const cfgFile = paths.nodeConfig(lc.dir, n.name);
    if (!existsSync(cfgFile)) continue;
    const doc = parseDocument(readFileSync(cfgFile, 'utf8'));
    // An operator's own credentials stay; `ctl --dir` reads them from node1's file.
    if (doc.hasIn(['restapi', 'authentication'])) continue;
    doc.setIn(['restapi', 'authentication'], doc.createNode(saved.restapi));
    writeFileSync(cfgFile, doc.toString(), { mode: 0o600 });
    chmodSync(cfgFile, 0o600);
    changed = true;
  }
  return changed;
}

/**
 * Adds the cluster's etcd user to every node.yml (`etcd3`) and proxy.yml (`etcd`) that has none — clusters made
 * before etcd authentication was on by default. Returns whether a file changed (running agents must restart).
 */
export function migrateEtcdCredentials(lc: LocalCluster, section: Record<string, string>): boolean {
  let changed = false;
  const files = [
    ...lc.nodes.map((n) => [paths.nodeConfig(lc.dir, n.name), 'etcd3'] as const),
    [paths.proxyConfig(lc.dir), 'etcd'] as const,
  ];
  for (const [file, key] of files) {
    if (!existsSync(file)) continue;
    const doc = parseDocument(readFileSync(file, 'utf8'));
    if (doc.hasIn([key, 'username'])) continue;
    for (const [k, v] of Object.entries(section)) doc.setIn([key, k], v);
    writeFileSync(file, doc.toString(), { mode: 0o600 });
    chmodSync(file, 0o600);
    changed = true;
  }
  return changed;
}

/**
 * Gives every node.yml without a backup section the cluster's repository (clusters made before backups existed).
 * Returns whether a file changed (running agents must restart: archive_mode needs a PostgreSQL restart anyway).
 */
export function migrateBackupRepo(lc: LocalCluster): boolean {
  let changed = false;
  for (const n of lc.nodes) {
    const file = paths.nodeConfig(lc.dir, n.name);
    if (!existsSync(file)) continue;
    const doc = parseDocument(readFileSync(file, 'utf8'));
    if (doc.hasIn(['backup'])) continue;
    doc.setIn(['backup'], doc.createNode({ repo: paths.backupRepo(lc.dir) }));
    writeFileSync(file, doc.toString(), { mode: 0o600 });
    chmodSync(file, 0o600);
    changed = true;
  }
  return changed;
}

/** Creates DIR/cluster.json, per-node configs and DIR/pgpass for a new local cluster. */
export function createLocalCluster(
  dirArg: string,
  opts: {
    nodes: number;
    portBase: number;
    scope?: string;
    tls?: boolean;
    etcdClient?: Record<string, string>;
    /** `up --restore-from`: every node.yml gets bootstrap.restore, so the cluster starts from that backup. */
    restore?: BootstrapRestoreConfig;
  },
): LocalCluster {
  const dir = resolve(dirArg);
  if (opts.nodes < 1 || opts.nodes > MAX_NODES)
    throw new LocalClusterError(`--nodes must be between 1 and ${MAX_NODES}, got ${opts.nodes}`);
  if (opts.portBase < 1024 || opts.portBase + 30 > 65535)
    throw new LocalClusterError(`--port-base must be between 1024 and 65505, got ${opts.portBase}`);
  const saved: Saved = {
    scope: opts.scope ?? 'pgkeel',
    portBase: opts.portBase,
    host: '127.0.0.1',
    nodes: opts.nodes,
    superuser: { username: 'postgres', password: newSecret() },
    replication: { username: 'replicator', password: newSecret() },
    restapi: { username: REST_USER, password: newSecret() },
    ...(opts.tls ? { tls: true } : {}),
  };
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  const lc = layoutFor(dir, saved);
  for (const n of lc.nodes) {
    mkdirSync(paths.nodeDir(dir, n.name), { recursive: true, mode: 0o755 });
    const pgBase = {
      authentication: { superuser: saved.superuser, replication: saved.replication },
      parameters: { shared_buffers: '32MB', max_connections: 200 },
    };
    const rest = saved.tls
      ? restTlsSections(localTlsDir(dir), n.name, { client: n.name, verifyClient: 'required' })
      : null;
    const cfg = {
      scope: lc.scope,
      name: n.name,
      etcd3: { hosts: [`${lc.host}:${lc.etcd.clientPort}`], ...opts.etcdClient },
      restapi: {
        listen: `${lc.host}:${n.apiPort}`,
        connect_address: `${lc.host}:${n.apiPort}`,
        authentication: saved.restapi,
        // A local cluster is a staging cluster: `pgkeel drill` may kill and isolate its members (docs/drill.md).
        allow_drills: true,
        ...rest?.restapi,
      },
      // With --tls, ctl and this agent present the node's certificate (serverAuth + clientAuth) to the other members.
      ...(rest ? { ctl: rest.ctl } : {}),
      postgresql: {
        listen: `${lc.host}:${n.pgPort}`,
        connect_address: `${lc.host}:${n.pgPort}`,
        data_dir: 'data',
        ...(saved.tls ? postgresTls(dir, n.name, pgBase) : pgBase),
      },
      backup: { repo: paths.backupRepo(dir) },
      ...(opts.restore ? { bootstrap: { restore: opts.restore } } : {}),
      // Every node of a local cluster shares one host: a killed leader must not reset it (docs/deploy-watchdog.md).
      watchdog: { mode: 'off' },
      log: { format: 'json' },
    };
    const file = paths.nodeConfig(dir, n.name);
    writeFileSync(file, nodeConfigText(cfg, 'pgkeel up'), { mode: 0o600 });
  }
  const su = saved.superuser;
  writeFileSync(
    paths.pgpass(dir),
    [pgpassLine(lc.host, '*', su.username, su.password), pgpassLine('localhost', '*', su.username, su.password)].join(
      '\n',
    ) + '\n',
    { mode: 0o600 },
  );
  writeFileSync(paths.clusterFile(dir), JSON.stringify(saved, null, 2) + '\n', { mode: 0o600 });
  return lc;
}
