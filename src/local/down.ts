/**
 * `pgkeel down`: stops a local cluster — replicas' agents first, the leader's last (so nobody fails over), each
 * agent stopping its PostgreSQL; then any PostgreSQL left without an agent; then etcd. Data stays for the next `up`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, pidAlive } from '../lib/proc.js';
import { paths, type LocalCluster } from './layout.js';
import { livePid, removeIfExists, stopPid } from './processes.js';
import { readView } from './status.js';

const AGENT_GRACE_MS = 60_000;

async function stopOrphanPostgres(lc: LocalCluster, name: string, progress: (l: string) => void): Promise<void> {
  const data = join(paths.nodeDir(lc.dir, name), 'data');
  const pidFile = join(data, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!pidAlive(pid)) return;
  progress(`${name}: stopping PostgreSQL left without an agent (pid ${pid})`);
  const r = await run('/usr/lib/postgresql/15/bin/pg_ctl', ['stop', '-D', data, '-m', 'fast', '-w', '-t', '30', '-s'], { timeoutMs: 40_000 });
  if (r.code !== 0 && pidAlive(pid)) process.kill(pid, 'SIGQUIT');
}

export async function down(lc: LocalCluster, progress: (l: string) => void): Promise<void> {
  let leader: string | null = null;
  try {
    leader = (await readView(lc, 2000)).leader;
  } catch {
    // etcd already down: order does not matter any more
  }
  const order = [...lc.nodes].sort((a, b) => Number(a.name === leader) - Number(b.name === leader));
  for (const n of order) {
    const pidFile = paths.agentPid(lc.dir, n.name);
    const pid = livePid(pidFile);
    if (pid !== null) {
      progress(`${n.name}: stopping agent (pid ${pid})${n.name === leader ? ' — the leader, last' : ''}`);
      await stopPid(pid, AGENT_GRACE_MS);
    }
    removeIfExists(pidFile);
    await stopOrphanPostgres(lc, n.name, progress);
  }
  const proxyPid = livePid(paths.proxyPid(lc.dir));
  if (proxyPid !== null) {
    progress(`proxy: stopping (pid ${proxyPid})`);
    await stopPid(proxyPid, 20_000);
  }
  removeIfExists(paths.proxyPid(lc.dir));
  const etcdPid = livePid(paths.etcdPid(lc.dir));
  if (etcdPid !== null) {
    progress(`etcd: stopping (pid ${etcdPid})`);
    await stopPid(etcdPid, 10_000);
  }
  removeIfExists(paths.etcdPid(lc.dir));
}
