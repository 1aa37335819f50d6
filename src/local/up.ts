/**
 * `pgkeel up`: a local N-node cluster on loopback — etcd plus one agent per node — started detached, with progress
 * shown until the cluster is healthy. Starting only what is missing makes `up` safe to run again at any time.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { findEtcdBinary, etcdArgs, waitForEtcd } from '../dcs/etcd-server.js';
import { ensureDirFor, sleep } from '../lib/proc.js';
import { waitFirstBackup } from './backup.js';
import {
  createLocalCluster,
  DEFAULT_PORT_BASE,
  ensureProxyFiles,
  LocalClusterError,
  migrateBackupRepo,
  migrateEtcdCredentials,
  migrateRestCredentials,
  paths,
  readLocalCluster,
  type LocalCluster,
} from './layout.js';
import { connect, createServer } from 'node:net';
import { foreignNote, livePid, managed, spawnDetached, type Managed } from './processes.js';
import { enableLocalEtcdAuth, ensureLocalEtcdCerts, ETCD_USER, localEtcdClientSection } from './etcd-security.js';
import { localStatus, type StatusJson } from './status.js';
import { secureNodeFolders } from './secure.js';
import { down } from './down.js';
import { ensureLocalTls } from './tls.js';
import { restoreSection, type RestoreFromOptions } from './up-restore.js';
import type { BootstrapRestoreConfig } from '../config/bootstrap-restore.js';

export interface UpOptions {
  dir: string;
  nodes?: number;
  portBase?: number;
  timeoutMs?: number;
  binDir?: string;
  /** `--tls`: create the cluster with TLS — PostgreSQL, etcd (only when creating; a cluster keeps what it was created with). */
  tls?: boolean;
  /** `--restore-from`: create the cluster from another cluster's backup (only when creating). */
  restoreFrom?: RestoreFromOptions;
  /** How long to wait for the first full backup the leader takes (default 120 s; it goes on in the background). */
  firstBackupTimeoutMs?: number;
  /** Progress lines ("etcd up", "node2: creating replica"). */
  progress: (line: string) => void;
}

/** The compiled CLI entry point, to start agents with the same Node and build as this process. */
export function cliEntry(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');
}

function checkPostgres(binDir: string): void {
  if (!existsSync(join(binDir, 'postgres')) || !existsSync(join(binDir, 'pg_basebackup'))) {
    throw new LocalClusterError(
      `PostgreSQL 15 is not installed in ${binDir}; install Debian's package with \`apt-get install postgresql-15\``,
    );
  }
}

export function prepare(opts: UpOptions, restore?: BootstrapRestoreConfig): LocalCluster {
  const existing = readLocalCluster(opts.dir);
  if (existing) {
    if (opts.restoreFrom)
      throw new LocalClusterError(
        `${existing.dir} holds a cluster already; --restore-from creates a new one: give another --dir (a new or empty directory)`,
      );
    if (opts.nodes !== undefined && opts.nodes !== existing.nodes.length) {
      throw new LocalClusterError(
        `${existing.dir} holds a ${existing.nodes.length}-node cluster; run \`pgkeel up --dir ${opts.dir}\` without --nodes, or use another --dir`,
      );
    }
    if (opts.portBase !== undefined && opts.portBase !== existing.portBase) {
      throw new LocalClusterError(
        `${existing.dir} was created with --port-base ${existing.portBase}; omit --port-base or pass that value`,
      );
    }
    if (opts.tls && !existing.tls) {
      throw new LocalClusterError(
        `${existing.dir} holds a cluster created without --tls; a cluster keeps its transport: run \`pgkeel up --dir ${opts.dir}\` without --tls, or create a new cluster with --tls in another --dir`,
      );
    }
    return existing;
  }
  const etcdClient = localEtcdClientSection(resolve(opts.dir), opts.tls === true);
  return createLocalCluster(opts.dir, {
    ...(restore ? { restore } : {}),
    nodes: opts.nodes ?? 3,
    portBase: opts.portBase ?? DEFAULT_PORT_BASE,
    tls: opts.tls === true,
    etcdClient,
  });
}

/**
 * True (and says so) when the pid file names the live process pgkeel started; a pid file naming some other
 * process is reported as stale and left for spawnDetached to overwrite — that process is never signalled.
 */
function alreadyRunning(m: Managed, progress: (l: string) => void, running: string): boolean {
  const pid = livePid(m);
  if (pid !== null) {
    progress(`${running} (pid ${pid})`);
    return true;
  }
  const note = foreignNote(m);
  if (note) progress(`${m.what}: stale pid file: ${note}`);
  return false;
}

export async function startEtcd(lc: LocalCluster, progress: (l: string) => void): Promise<void> {
  const endpoint = `${lc.host}:${lc.etcd.clientPort}`;
  const certs = lc.tls ? await ensureLocalEtcdCerts(lc) : undefined;
  if (!alreadyRunning(managed.etcd(lc), progress, `etcd already running on ${endpoint}`)) {
    const bin = findEtcdBinary();
    mkdirSync(paths.etcdDir(lc.dir), { recursive: true, mode: 0o700 });
    const args = etcdArgs({
      name: `${lc.scope}-etcd`,
      dataDir: join(paths.etcdDir(lc.dir), 'data'),
      clientHost: lc.host,
      clientPort: lc.etcd.clientPort,
      peerPort: lc.etcd.peerPort,
      ...(certs ? { tls: certs.server } : {}),
    });
    spawnDetached(bin, args, paths.etcdLog(lc.dir), paths.etcdPid(lc.dir));
    try {
      await waitForEtcd(
        endpoint,
        20_000,
        undefined,
        certs ? { protocol: 'https', tls: certs.client } : { protocol: 'http' },
      );
    } catch (err) {
      throw new LocalClusterError(
        `etcd did not start on ${endpoint}: ${(err as Error).message}; see ${paths.etcdLog(lc.dir)}`,
      );
    }
    progress(`etcd up on ${certs ? 'https://' : ''}${endpoint}`);
  }
  // Also when etcd was already running: an `up` interrupted between start and `auth enable` finishes the job here.
  {
    const done = await enableLocalEtcdAuth(lc, certs?.client);
    progress(
      done === 'enabled'
        ? `etcd authentication enabled (user ${ETCD_USER}, passwords in ${join(paths.etcdDir(lc.dir), 'auth.json')})`
        : `etcd authentication on (user ${ETCD_USER})`,
    );
  }
}

export function startAgents(lc: LocalCluster, progress: (l: string) => void): void {
  for (const n of lc.nodes) {
    if (alreadyRunning(managed.agent(lc, n.name), progress, `${n.name}: agent already running`)) continue;
    const started = spawnDetached(
      process.execPath,
      ['--enable-source-maps', cliEntry(), 'agent', '-c', paths.nodeConfig(lc.dir, n.name)],
      paths.agentLog(lc.dir, n.name),
      paths.agentPid(lc.dir, n.name),
    );
    progress(`${n.name}: agent started (pid ${started}, log ${paths.agentLog(lc.dir, n.name)})`);
  }
}

function tailOf(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Healthy: one running leader and every other member streaming, each record published by the live agent. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

/** Starts the cluster's proxy (transaction pooling, follows the leader through etcd) unless it runs already. */
export async function startProxy(lc: LocalCluster, progress: (l: string) => void): Promise<void> {
  ensureProxyFiles(lc, localEtcdClientSection(lc.dir, lc.tls));
  if (alreadyRunning(managed.proxy(lc), progress, 'proxy already running')) return;
  const pid = spawnDetached(
    process.execPath,
    ['--enable-source-maps', cliEntry(), 'proxy', '-c', paths.proxyConfig(lc.dir), '--log-format', 'json'],
    paths.proxyLog(lc.dir),
    paths.proxyPid(lc.dir),
  );
  for (let i = 0; i < 100; i++) {
    if (await accepts(lc.host, lc.proxy.rw)) {
      progress(`proxy up: read-write ${lc.host}:${lc.proxy.rw}, read-only ${lc.host}:${lc.proxy.ro} (pid ${pid})`);
      return;
    }
    if (livePid(managed.proxy(lc)) === null) break;
    await sleep(100);
  }
  throw new LocalClusterError(
    `the proxy did not start; the end of ${paths.proxyLog(lc.dir)}:\n${tailOf(paths.proxyLog(lc.dir))}`,
  );
}

export function healthy(s: StatusJson, nodes: number, livePids?: ReadonlyMap<string, number | null>): boolean {
  if (livePids && s.members.some((m) => m.pid !== livePids.get(m.name))) return false;
  const leaders = s.members.filter((m) => m.role === 'leader' && m.state === 'running');
  const streaming = s.members.filter((m) => m.role !== 'leader' && m.state === 'streaming');
  return !s.error && leaders.length === 1 && streaming.length === nodes - 1;
}

/** Polls the DCS, printing each member's state changes, until the cluster is healthy or the time is up. */
export async function waitHealthy(
  lc: LocalCluster,
  timeoutMs: number,
  progress: (l: string) => void,
): Promise<StatusJson> {
  const deadline = Date.now() + timeoutMs;
  const seen = new Map<string, string>();
  let last: StatusJson | null = null;
  while (Date.now() < deadline) {
    last = await localStatus(lc);
    for (const m of last.members) {
      const label = `${m.role === 'leader' ? 'leader, ' : ''}${m.state}`;
      if (seen.get(m.name) !== label) {
        seen.set(m.name, label);
        progress(`${m.name}: ${label}`);
      }
    }
    const live = new Map(lc.nodes.map((n) => [n.name, livePid(managed.agent(lc, n.name))]));
    if (healthy(last, lc.nodes.length, live)) return last;
    const dead = lc.nodes.find((n) => livePid(managed.agent(lc, n.name)) === null);
    if (dead) {
      const log = paths.agentLog(lc.dir, dead.name);
      throw new LocalClusterError(`the agent of ${dead.name} exited; the end of ${log}:\n${tailOf(log)}`);
    }
    await sleep(300);
  }
  const logs = lc.nodes.map((n) => paths.agentLog(lc.dir, n.name)).join(', ');
  throw new LocalClusterError(
    `the cluster was not healthy after ${Math.round(timeoutMs / 1000)} s (${last?.error ?? last?.members.map((m) => `${m.name} ${m.role} ${m.state}`).join('; ')}); see the agent logs: ${logs}`,
  );
}

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/** Every port `up` is about to listen on (for what is not running yet) must be free: say which is not, at once. */
export async function checkPorts(lc: LocalCluster): Promise<void> {
  const want: Array<[number, string]> = [];
  if (livePid(managed.etcd(lc)) === null)
    want.push([lc.etcd.clientPort, 'etcd client'], [lc.etcd.peerPort, 'etcd peer']);
  for (const n of lc.nodes) {
    if (livePid(managed.agent(lc, n.name)) !== null) continue;
    const pgRunning = existsSync(join(paths.nodeDir(lc.dir, n.name), 'data', 'postmaster.pid'));
    if (!pgRunning) want.push([n.pgPort, `${n.name} PostgreSQL`]);
    want.push([n.apiPort, `${n.name} REST API`]);
  }
  if (livePid(managed.proxy(lc)) === null)
    want.push([lc.proxy.rw, 'proxy read-write'], [lc.proxy.ro, 'proxy read-only'], [lc.proxy.admin, 'proxy metrics']);
  const busy: string[] = [];
  for (const [port, what] of want) if (!(await portFree(lc.host, port))) busy.push(`${port} (${what})`);
  if (busy.length) {
    throw new LocalClusterError(
      `port${busy.length > 1 ? 's' : ''} ${busy.join(', ')} on ${lc.host} ${busy.length > 1 ? 'are' : 'is'} in use by another process; stop it, or create the cluster in another --dir with another --port-base`,
    );
  }
}

export async function up(opts: UpOptions): Promise<{ cluster: LocalCluster; status: StatusJson }> {
  checkPostgres(opts.binDir ?? '/usr/lib/postgresql/15/bin');
  findEtcdBinary();
  // The backup is checked before anything is created; an existing cluster is refused by prepare either way.
  const restore =
    opts.restoreFrom && !readLocalCluster(opts.dir)
      ? await restoreSection(opts.dir, opts.restoreFrom, opts.progress)
      : undefined;
  const lc = prepare(opts, restore);
  for (const line of secureNodeFolders(lc)) opts.progress(line);
  const restAdded = migrateRestCredentials(lc);
  const etcdAdded = migrateEtcdCredentials(lc, localEtcdClientSection(lc.dir, lc.tls));
  const backupAdded = migrateBackupRepo(lc);
  ensureDirFor(paths.backupRepo(lc.dir), 0o750);
  if ((restAdded || etcdAdded || backupAdded) && lc.nodes.some((n) => livePid(managed.agent(lc, n.name)) !== null)) {
    // Agents read node.yml only at start: restart the whole cluster (data stays) so every agent uses them.
    const what = [
      restAdded
        ? 'REST credentials added to this cluster (cluster.json, restapi.authentication in every node.yml)'
        : '',
      etcdAdded ? 'an etcd user added to this cluster (etcd3 in every node.yml, etcd in proxy.yml)' : '',
      backupAdded
        ? `a backup repository added to this cluster (${paths.backupRepo(lc.dir)}, backup in every node.yml)`
        : '',
    ]
      .filter(Boolean)
      .join('; ');
    opts.progress(`${what}: restarting it so the agents use them`);
    await down(lc, opts.progress);
  }
  await checkPorts(lc);
  opts.progress(
    `cluster "${lc.scope}" in ${lc.dir} (${lc.nodes.length} nodes, ports ${lc.portBase}-${lc.portBase + 20 + lc.nodes.length})`,
  );
  if (lc.tls) {
    await ensureLocalTls(lc);
    opts.progress(`TLS: CA and certificates in ${paths.tlsDir(lc.dir)}`);
  }
  await startEtcd(lc, opts.progress);
  startAgents(lc, opts.progress);
  await waitHealthy(lc, opts.timeoutMs ?? 120_000, opts.progress);
  await startProxy(lc, opts.progress);
  await waitFirstBackup(lc, opts.firstBackupTimeoutMs ?? 120_000, opts.progress);
  const status = await localStatus(lc);
  return { cluster: lc, status };
}
