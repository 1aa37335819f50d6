/**
 * A pgkeel cluster on namespace hosts (net.ts): a 3-member etcd on hosts e1–e3, one agent + PostgreSQL on each of
 * n1–n3, and the proxy in the root namespace (the test's own process) reaching them over the bridge — deployed from
 * node configs as an operator would write them, with the real CLI (`pgkeel agent -c`).
 *
 * Every process is remembered by pid and killed by pid in `close()` (agents, postmasters, etcd), then the hosts are
 * torn down — also when the test failed.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync, closeSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import { findEtcdBinary, waitForEtcd } from '../../src/dcs/etcd-server.js';
import { EtcdStore } from '../../src/dcs/etcd.js';
import { clusterKeys, parseCluster, type Cluster } from '../../src/dcs/layout.js';
import { pidAlive, sleep } from '../../src/lib/proc.js';
import { silentLogger } from '../../src/lib/log.js';
import { proxyConfigFromObject } from '../../src/proxy/config.js';
import { startProxy, type RunningProxy } from '../../src/proxy/proxy.js';
import { pgkeelBin } from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';
import { HostNet } from './net.js';

export const NODES = ['n1', 'n2', 'n3'] as const;
export const ETCDS = ['e1', 'e2', 'e3'] as const;
const PG_PORT = 5432;
const API_PORT = 8008;
const ETCD_CLIENT = 2379;
const ETCD_PEER = 2380;
const SCOPE = 'hosts';

export interface HostCluster extends AsyncDisposable {
  readonly net: HostNet;
  readonly dir: string;
  readonly password: string;
  readonly etcdHosts: string[];
  readonly proxy: RunningProxy;
  /** "ip:port" of node's PostgreSQL. */
  pgAddr(node: string): { host: string; port: number };
  apiUrl(node: string): string;
  /** The DCS as the agents see it (via the etcd members' bridge addresses). */
  dcs(): Promise<Cluster>;
  /** The leader key holder whose PostgreSQL answers as primary; waits for it. */
  waitForLeader(timeoutMs?: number, not?: string): Promise<string>;
  /** Until the leader runs and every other node streams from it (in synchronous mode: and /sync names a standby). */
  waitHealthy(timeoutMs?: number): Promise<string>;
  query(node: string, sql: string, params?: unknown[], timeoutMs?: number): Promise<Record<string, unknown>[]>;
  killEtcd(): void;
  startEtcd(): Promise<void>;
  /** Last lines of a node's agent log (for assertion messages). */
  agentLog(node: string, lines?: number): string;
  /** SIGKILL of a node's agent and postmaster (the host stays up: its ports refuse). */
  killNode(node: string): void;
  /** Starts a node's agent again (after killNode). */
  restartAgent(node: string): Promise<void>;
  /** The VIP (`startHostCluster({ vip: true })`: .100 on the bridge's subnet), or null. */
  readonly vip: string | null;
  /** `synchronous_mode: true` in the cluster's dynamic configuration. */
  readonly sync: boolean;
  /**
   * Fills a node's disk (`startHostCluster({ diskMb })`: each node's directory is a tmpfs of that size) with a
   * ballast file until `leaveMb` MiB are left; `freeDisk` removes the ballast.
   */
  fillDisk(node: string, leaveMb: number): void;
  freeDisk(node: string): void;
}

function spawnIn(net: HostNet, host: string, cmd: string, args: string[], logFile: string): number {
  const fd = openSync(logFile, 'a', 0o640);
  try {
    const child = spawn(net.exec(host)[0] as string, [...net.exec(host).slice(1), cmd, ...args], {
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    if (child.pid === undefined) throw new Error(`could not start ${cmd} on ${host}`);
    child.unref();
    return child.pid; // `ip netns exec` execs the command: this is its pid
  } finally {
    closeSync(fd);
  }
}

function kill(pid: number | null): void {
  if (pid === null || !pidAlive(pid)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

/**
 * `vip`: every node gets `vip: {address: <subnet>.100, interface: its veth, netmask: 24}` and PostgreSQL listens on
 * its own address and the VIP ("ip,vip:5432", with net.ipv4.ip_nonlocal_bind = 1 in its namespace).
 */
export async function startHostCluster(
  opts: { ttl?: number; vip?: boolean; sync?: boolean; diskMb?: number } = {},
): Promise<HostCluster> {
  const tmp = await tempDir('hosts');
  const net = HostNet.create([...ETCDS, ...NODES]);
  const vip = opts.vip ? net.gateway.replace(/\.1$/, '.100') : null;
  const pids = new Set<number>();
  const password = randomBytes(12).toString('base64url');
  const etcdHosts = ETCDS.map((e) => `${net.host(e).ip}:${ETCD_CLIENT}`);
  let proxy: RunningProxy | undefined;

  const etcdPids = new Map<string, number>();
  const agentPids = new Map<string, number>();
  const startAgent = (n: string): void => {
    const pid = spawnIn(
      net,
      n,
      process.execPath,
      [pgkeelBin, 'agent', '-c', join(tmp.path, n, 'node.yml')],
      join(tmp.path, n, 'agent.log'),
    );
    pids.add(pid);
    agentPids.set(n, pid);
  };
  const postmasterOf = (n: string): number | null => {
    try {
      return Number(readFileSync(join(tmp.path, n, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]) || null;
    } catch {
      return null;
    }
  };
  const startEtcd = async (): Promise<void> => {
    const initial = ETCDS.map((e) => `${e}=http://${net.host(e).ip}:${ETCD_PEER}`).join(',');
    for (const e of ETCDS) {
      const ip = net.host(e).ip;
      const dataDir = join(tmp.path, e);
      const pid = spawnIn(
        net,
        e,
        findEtcdBinary(),
        [
          '--name',
          e,
          '--data-dir',
          dataDir,
          '--listen-client-urls',
          `http://${ip}:${ETCD_CLIENT}`,
          '--advertise-client-urls',
          `http://${ip}:${ETCD_CLIENT}`,
          '--listen-peer-urls',
          `http://${ip}:${ETCD_PEER}`,
          '--initial-advertise-peer-urls',
          `http://${ip}:${ETCD_PEER}`,
          '--initial-cluster',
          initial,
          '--initial-cluster-state',
          'new',
          '--initial-cluster-token',
          `pgkeel-${net.bridge}`,
          '--heartbeat-interval',
          '100',
          '--election-timeout',
          '1000',
          '--logger',
          'zap',
          '--log-outputs',
          'stderr',
          '--log-level',
          'warn',
        ],
        join(tmp.path, `${e}.log`),
      );
      pids.add(pid);
      etcdPids.set(e, pid);
    }
    await Promise.all(etcdHosts.map((h) => waitForEtcd(h, 30_000)));
  };

  const mounts: string[] = [];
  const close = async (): Promise<void> => {
    await proxy?.close().catch(() => undefined);
    for (const n of NODES) {
      const pm = postmasterOf(n);
      if (pm !== null) pids.add(pm);
    }
    for (const pid of pids) kill(pid);
    for (let i = 0; i < 50 && [...pids].some((p) => pidAlive(p)); i++) await sleep(100);
    for (const m of mounts) {
      // The logs live on the tmpfs: keep a copy when the directories are kept for a post-mortem.
      if (process.env['PGKEEL_KEEP_TEST_DIRS'] === '1') spawnSync('cp', ['-r', m, `${m}-kept`], { stdio: 'ignore' });
      spawnSync('umount', ['-l', m], { stdio: 'ignore' });
    }
    net.close();
    await tmp[Symbol.asyncDispose]();
  };

  try {
    await startEtcd();
    for (const n of NODES) {
      const ip = net.host(n).ip;
      mkdirSync(join(tmp.path, n), { mode: 0o755 });
      if (opts.diskMb) {
        execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${opts.diskMb}m,mode=0755`, 'tmpfs', join(tmp.path, n)]);
        mounts.push(join(tmp.path, n));
      }
      if (vip)
        execFileSync(net.exec(n)[0] as string, [
          ...net.exec(n).slice(1),
          'sysctl',
          '-qw',
          'net.ipv4.ip_nonlocal_bind=1',
        ]);
      const cfg = {
        scope: SCOPE,
        name: n,
        etcd3: { hosts: etcdHosts },
        restapi: {
          listen: `${ip}:${API_PORT}`,
          connect_address: `${ip}:${API_PORT}`,
          authentication: { username: 'pgkeel', password },
        },
        postgresql: {
          listen: vip ? `${ip},${vip}:${PG_PORT}` : `${ip}:${PG_PORT}`,
          connect_address: `${ip}:${PG_PORT}`,
          data_dir: 'data',
          authentication: {
            superuser: { username: 'postgres', password },
            replication: { username: 'replicator', password },
          },
          parameters: { shared_buffers: '16MB', max_connections: 60 },
          pg_hba: [`host all all ${net.gateway}/32 scram-sha-256`, 'host all all 10.231.0.0/16 scram-sha-256'],
        },
        bootstrap: {
          dcs: {
            ttl: opts.ttl ?? 10,
            loop_wait: 1,
            retry_timeout: 3,
            ...(opts.sync ? { synchronous_mode: true } : {}),
          },
        },
        log: { format: 'json' },
        ...(vip ? { vip: { address: vip, interface: net.host(n).dev, netmask: 24 } } : {}),
      };
      writeFileSync(join(tmp.path, n, 'node.yml'), stringify(cfg), { mode: 0o600 });
      startAgent(n);
    }
    writeFileSync(join(tmp.path, 'userlist.txt'), `"postgres" "${password}"\n`, { mode: 0o600 });
    proxy = await startProxy(
      proxyConfigFromObject(
        {
          listen: '127.0.0.1:0',
          pool_mode: 'transaction',
          default_pool_size: 4,
          auth_type: 'trust',
          auth_file: join(tmp.path, 'userlist.txt'),
          etcd: { hosts: etcdHosts, scope: SCOPE },
          query_wait_timeout: 60,
        },
        'hosts',
      ),
      { log: silentLogger },
    );
  } catch (err) {
    await close();
    throw err;
  }

  /** Free space and the last PostgreSQL log lines of a node, for failure messages. */
  const diskNote = (n: string): string => {
    const dir = join(tmp.path, n);
    let free = '?';
    try {
      const st = statfsSync(dir);
      free = `${Math.floor((st.bavail * st.bsize) / 2 ** 20)} MiB free`;
    } catch {
      // gone
    }
    let pgLog = '';
    try {
      pgLog = readFileSync(join(dir, 'postgresql.log'), 'utf8').trim().split('\n').slice(-4).join(' / ');
    } catch {
      // none
    }
    return `${free}; postgresql.log: ${pgLog || '(none)'}`;
  };

  const keys = clusterKeys(SCOPE);
  const c: HostCluster = {
    net,
    dir: tmp.path,
    password,
    etcdHosts,
    vip,
    sync: opts.sync ?? false,
    proxy: proxy as RunningProxy,
    pgAddr: (node) => ({ host: net.host(node).ip, port: PG_PORT }),
    apiUrl: (node) => `http://${net.host(node).ip}:${API_PORT}/patroni`,
    async dcs() {
      const store = new EtcdStore({ hosts: etcdHosts, requestTimeoutMs: 2000 });
      try {
        return parseCluster(keys, await store.getPrefix(keys.prefix));
      } finally {
        await store.close();
      }
    },
    async query(node, sql, params = [], timeoutMs = 3000) {
      const client = new pg.Client({
        ...c.pgAddr(node),
        user: 'postgres',
        password,
        database: 'postgres',
        connectionTimeoutMillis: timeoutMs,
        statement_timeout: timeoutMs,
        query_timeout: timeoutMs,
      });
      client.on('error', () => {});
      try {
        await client.connect();
        return (await client.query(sql, params)).rows as Record<string, unknown>[];
      } finally {
        void client.end().catch(() => {});
      }
    },
    async waitForLeader(timeoutMs = 90_000, not?: string) {
      const until = Date.now() + timeoutMs;
      while (Date.now() < until) {
        try {
          const name = (await c.dcs()).leader?.name;
          if (
            name &&
            name !== not &&
            (await c.query(name, 'SELECT pg_is_in_recovery() AS r', [], 1000))[0]?.['r'] === false
          )
            return name;
        } catch {
          // not yet
        }
        await sleep(200);
      }
      throw new Error(
        `no leader${not ? ` other than ${not}` : ''} within ${timeoutMs} ms; ${NODES.map((n) => `${n}: ${c.agentLog(n, 3)}`).join(' || ')}`,
      );
    },
    async waitHealthy(timeoutMs = 120_000) {
      const until = Date.now() + timeoutMs;
      let leader = '';
      while (Date.now() < until) {
        try {
          leader = await c.waitForLeader(Math.max(1000, until - Date.now()));
          const rows = await c.query(
            leader,
            "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'",
            [],
            1000,
          );
          // In synchronous mode a failover needs a member named in /sync: healthy includes that.
          const synced = !opts.sync || ((await c.dcs()).sync?.standbys.length ?? 0) > 0;
          if (rows.length === NODES.length - 1 && synced) return leader;
        } catch {
          // not yet
        }
        await sleep(300);
      }
      throw new Error(
        `cluster not healthy within ${timeoutMs} ms (leader ${leader || 'none'}); ${NODES.map((n) => `${n}: ${c.agentLog(n, 3)} | ${diskNote(n)}`).join(' || ')}`,
      );
    },
    killEtcd() {
      for (const pid of etcdPids.values()) kill(pid);
    },
    async startEtcd() {
      for (const pid of etcdPids.values()) for (let i = 0; i < 50 && pidAlive(pid); i++) await sleep(100);
      await startEtcd();
    },
    agentLog(node, lines = 5) {
      try {
        return readFileSync(join(tmp.path, node, 'agent.log'), 'utf8')
          .trim()
          .split('\n')
          .slice(-lines)
          .map((l) => {
            try {
              return (JSON.parse(l) as { msg?: string }).msg ?? l;
            } catch {
              return l;
            }
          })
          .join(' | ');
      } catch {
        return '(no log)';
      }
    },
    killNode(node) {
      kill(agentPids.get(node) ?? null);
      kill(postmasterOf(node));
    },
    async restartAgent(node) {
      const old = agentPids.get(node) ?? null;
      for (let i = 0; i < 50 && old !== null && pidAlive(old); i++) await sleep(100);
      startAgent(node);
    },
    fillDisk(node, leaveMb) {
      const dir = join(tmp.path, node);
      const free = Math.floor((statfsSync(dir).bavail * statfsSync(dir).bsize) / 2 ** 20);
      const mb = Math.max(0, free - leaveMb);
      execFileSync('fallocate', ['-l', `${mb}M`, join(dir, 'ballast')]);
    },
    freeDisk(node) {
      rmSync(join(tmp.path, node, 'ballast'), { force: true });
    },
    [Symbol.asyncDispose]: close,
  };
  return c;
}
