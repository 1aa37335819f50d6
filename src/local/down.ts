/**
 * `pgkeel down`: stops a local cluster — replicas' agents first, the leader's last (so nobody fails over), each
 * agent stopping its PostgreSQL; then any PostgreSQL left without an agent; then etcd. Data stays for the next `up`.
 * A pid file that does not name the process pgkeel started is reported and never signalled; a node that still runs
 * afterwards is reported as running (exit 1), not as stopped.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { pidAlive, postgresIdentity, run } from '../lib/proc.js';
import { LocalClusterError, paths, type LocalCluster } from './layout.js';
import { foreignNote, managed, removeIfExists, stopPid, verdict, type Managed } from './processes.js';
import { readView } from './status.js';

const AGENT_GRACE_MS = 60_000;

/**
 * The postmaster's pid from postmaster.pid — a file `postgres` can write, so the pid counts only when that process
 * belongs to the PostgreSQL OS user (signalling it as root then gives `postgres` nothing it did not have).
 */
function postmasterPid(data: string): number | null {
  const pidFile = join(data, 'postmaster.pid');
  if (!existsSync(pidFile)) return null;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!pidAlive(pid)) return null;
  const id = postgresIdentity();
  try {
    if (id && statSync(`/proc/${pid}`).uid !== id.uid) return null;
  } catch {
    return null;
  }
  return pid;
}

async function stopOrphanPostgres(lc: LocalCluster, name: string, progress: (l: string) => void): Promise<void> {
  const data = join(paths.nodeDir(lc.dir, name), 'data');
  const pid = postmasterPid(data);
  if (pid === null) return;
  progress(`${name}: stopping PostgreSQL left without an agent (pid ${pid})`);
  const r = await run('/usr/lib/postgresql/15/bin/pg_ctl', ['stop', '-D', data, '-m', 'fast', '-w', '-t', '30', '-s'], {
    timeoutMs: 40_000,
  });
  if (r.code !== 0 && postmasterPid(data) === pid) process.kill(pid, 'SIGQUIT');
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    sock.setTimeout(2000, () => sock.destroy());
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
    sock.once('close', () => resolve(false));
  });
}

/** Stops a managed process if its pid file names it; returns the stale-pid-file note when it does not. */
async function stopManaged(
  m: Managed,
  graceMs: number,
  label: string,
  progress: (l: string) => void,
): Promise<string | null> {
  const v = verdict(m);
  if (v.kind === 'foreign') {
    const note = foreignNote(m, v) as string;
    progress(`${label}: ${note}`);
    return note;
  }
  if (v.kind === 'ours') {
    progress(`${label}: stopping (pid ${v.pid})`);
    await stopPid(v.pid, graceMs);
  }
  removeIfExists(m.file);
  return null;
}

export async function down(lc: LocalCluster, progress: (l: string) => void): Promise<void> {
  let leader: string | null = null;
  try {
    leader = (await readView(lc, 2000)).leader;
  } catch {
    // etcd already down: order does not matter any more
  }
  const stillRunning: string[] = [];
  const order = [...lc.nodes].sort((a, b) => Number(a.name === leader) - Number(b.name === leader));
  for (const n of order) {
    const stale = await stopManaged(
      managed.agent(lc, n.name),
      AGENT_GRACE_MS,
      `${n.name}${n.name === leader ? ' (the leader, last)' : ''} agent`,
      progress,
    );
    if (stale && (await accepts(lc.host, n.apiPort))) {
      stillRunning.push(
        `${n.name} (an agent answers on ${lc.host}:${n.apiPort}, but ${paths.agentPid(lc.dir, n.name)} does not name it)`,
      );
      continue;
    }
    await stopOrphanPostgres(lc, n.name, progress);
  }
  await stopManaged(managed.proxy(lc), 20_000, 'proxy', progress);
  await stopManaged(managed.etcd(lc), 10_000, 'etcd', progress);
  if (stillRunning.length) {
    throw new LocalClusterError(
      `not stopped — still running: ${stillRunning.join('; ')}. Stop that agent by its pid (SIGTERM) after checking it is pgkeel's, then remove the pid file`,
    );
  }
}
