/**
 * A Patroni 3.0.2 cluster (Debian's package) for the benchmark: three `patroni node.yml` processes on loopback,
 * run as the `postgres` user, against an etcd of their own (the integration tests' helper), with PostgreSQL 15 from
 * /usr/lib/postgresql/15/bin and the same PostgreSQL settings as a `pgkeel up` cluster. Timers are either pgkeel's
 * defaults (ttl 10, loop_wait 1, retry_timeout 3) or Patroni's own (30, 10, 10) for reference.
 *
 * Patroni starts the postmaster in a session of its own, so a SIGKILLed Patroni leaves PostgreSQL running; the
 * postmaster pid is read from the data directory. Teardown: SIGTERM every Patroni (it stops PostgreSQL), then
 * SIGKILL by pid whatever is still alive — never by name.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from '../../src/lib/net.js';
import { pidAlive, postgresIdentity, sleep } from '../../src/lib/proc.js';
import { startEtcd, type RunningEtcd } from '../../test/helpers/etcd.js';
import { patchDcsConfig } from '../../test/helpers/scenario.js';
import { tempDir } from '../../test/helpers/tmp.js';
import type { BenchCluster, Timers } from './cluster.js';
import { statusRef, waitHealthy } from './cluster.js';
import type { Backend } from './haproxy.js';

export const PATRONI_BIN = '/usr/bin/patroni';
const SCOPE = 'bench';
const BIN_DIR = '/usr/lib/postgresql/15/bin';

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // exited meanwhile
  }
}

interface Secrets {
  readonly superuser: string;
  readonly replication: string;
}

function nodeConfig(n: Backend, dir: string, etcd: string, timers: Timers | null, pw: Secrets): string {
  const cfg = {
    scope: SCOPE,
    namespace: '/service/',
    name: n.name,
    log: { level: 'INFO' },
    restapi: { listen: `127.0.0.1:${n.apiPort}`, connect_address: `127.0.0.1:${n.apiPort}` },
    etcd3: { hosts: etcd },
    bootstrap: {
      dcs: {
        ...(timers ?? {}),
        maximum_lag_on_failover: 1048576,
        postgresql: {
          use_pg_rewind: true,
          use_slots: true,
          parameters: { wal_log_hints: 'on', max_connections: 200, max_wal_senders: 10, max_replication_slots: 10 },
        },
      },
      initdb: [{ encoding: 'UTF8' }, 'data-checksums'],
    },
    postgresql: {
      listen: `127.0.0.1:${n.pgPort}`,
      connect_address: `127.0.0.1:${n.pgPort}`,
      data_dir: join(dir, 'data'),
      bin_dir: BIN_DIR,
      pgpass: join(dir, 'pgpass'),
      authentication: {
        superuser: { username: 'postgres', password: pw.superuser },
        replication: { username: 'replicator', password: pw.replication },
      },
      parameters: { unix_socket_directories: dir, shared_buffers: '32MB' },
      pg_hba: [
        'local all all trust',
        'host all all 127.0.0.1/32 scram-sha-256',
        'host replication replicator 127.0.0.1/32 scram-sha-256',
      ],
    },
  };
  return `# written by bench/failover/patroni-cluster.ts\n${stringify(cfg)}`;
}

export async function startPatroni(timers: Timers | null): Promise<BenchCluster> {
  const id = postgresIdentity();
  if (!id) throw new Error('the Patroni cluster runs PostgreSQL as the postgres OS user: run the benchmark as root');
  const tmp = await tempDir(timers ? 'bench-patroni' : 'bench-patroni-defaults');
  const procs = new Map<string, ChildProcess>();
  let etcd: RunningEtcd | null = null;
  const pw: Secrets = {
    superuser: randomBytes(12).toString('base64url'),
    replication: randomBytes(12).toString('base64url'),
  };
  const nodes: Backend[] = [];
  for (let i = 1; i <= 3; i++) nodes.push({ name: `node${i}`, pgPort: await freePort(), apiPort: await freePort() });
  const nodeDir = (name: string) => join(tmp.path, name);

  const spawnAgent = (n: Backend): void => {
    const log = openSync(join(nodeDir(n.name), 'patroni.log'), 'a', 0o644);
    try {
      const child = spawn(PATRONI_BIN, [join(nodeDir(n.name), 'patroni.yml')], {
        cwd: nodeDir(n.name),
        uid: id.uid,
        gid: id.gid,
        stdio: ['ignore', log, log],
        env: { PATH: '/usr/bin:/bin', HOME: id.home, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' },
      });
      child.on('error', () => {});
      procs.set(n.name, child);
    } finally {
      closeSync(log);
    }
  };
  const agentPid = (name: string): number | null => {
    const pid = procs.get(name)?.pid;
    return pid !== undefined && pidAlive(pid) ? pid : null;
  };
  const postmasterPid = (name: string): number | null => {
    try {
      const pid = Number(readFileSync(join(nodeDir(name), 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 && pidAlive(pid) ? pid : null;
    } catch {
      return null;
    }
  };

  const dispose = async (): Promise<void> => {
    const alive = nodes.map((n) => agentPid(n.name)).filter((p): p is number => p !== null);
    for (const p of alive) signal(p, 'SIGTERM');
    for (let i = 0; i < 300 && alive.some(pidAlive); i++) await sleep(100);
    for (const pid of [...nodes.map((n) => agentPid(n.name)), ...nodes.map((n) => postmasterPid(n.name))]) {
      if (pid !== null) signal(pid, 'SIGKILL');
    }
    await etcd?.stop();
    await tmp[Symbol.asyncDispose]();
  };

  const cluster: BenchCluster = {
    system: timers ? 'patroni' : 'patroni-defaults',
    timers: timers ?? { ttl: 30, loop_wait: 10, retry_timeout: 10 },
    nodes,
    user: 'postgres',
    password: pw.superuser,
    dir: tmp.path,
    agentPid,
    postmasterPid,
    async restartStopped() {
      for (const n of nodes) if (agentPid(n.name) === null) spawnAgent(n);
    },
    get dcs() {
      return { etcd: etcd?.endpoint ?? '', scope: SCOPE };
    },
    async patchConfig(patch) {
      await patchDcsConfig(statusRef(cluster.dcs), patch);
    },
    logTail(node, lines = 40) {
      try {
        return readFileSync(join(nodeDir(node), 'patroni.log'), 'utf8')
          .trimEnd()
          .split('\n')
          .slice(-lines)
          .join('\n');
      } catch {
        return '(no patroni log)';
      }
    },
    [Symbol.asyncDispose]: dispose,
  };

  try {
    etcd = await startEtcd(tmp.path);
    for (const n of nodes) {
      mkdirSync(nodeDir(n.name), { mode: 0o700 });
      chownSync(nodeDir(n.name), id.uid, id.gid);
      const file = join(nodeDir(n.name), 'patroni.yml');
      writeFileSync(file, nodeConfig(n, nodeDir(n.name), etcd.endpoint, timers, pw), { mode: 0o600 });
      chownSync(file, id.uid, id.gid);
    }
    // The first node bootstraps alone; the others then clone it (starting all at once works too, but costs a
    // failed bootstrap race on a 2-core machine).
    spawnAgent(nodes[0] as Backend);
    await sleep(3000);
    for (const n of nodes.slice(1)) spawnAgent(n);
    await waitHealthy(cluster, false, 180_000);
  } catch (err) {
    const tails = nodes.map((n) => `--- ${n.name}\n${cluster.logTail(n.name, 15)}`).join('\n');
    await dispose();
    throw new Error(`${(err as Error).message}\n${tails}`);
  }
  return cluster;
}
