/**
 * Background processes of a local cluster: started detached (their own session, so Ctrl-C in `up` reaches only
 * `up`), logging to a file, remembered by pid file (pid and start time), and stopped by pid — never by name, and
 * only after /proc confirms the pid is still the process pgkeel started (lib/pid-identity.ts).
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { checkPidFile, formatPidFile, hasOption, startTimeOf, type PidVerdict } from '../lib/pid-identity.js';
import { pidAlive, sleep } from '../lib/proc.js';
import { paths, type LocalCluster } from './layout.js';

/** A process of the local cluster: its pid file, a name for messages, and the command line it must have. */
export interface Managed {
  readonly file: string;
  readonly what: string;
  readonly expected: (argv: readonly string[]) => boolean;
}

export const managed = {
  agent: (lc: LocalCluster, name: string): Managed => ({
    file: paths.agentPid(lc.dir, name),
    what: `${name}'s agent`,
    expected: (argv) => argv.includes('agent') && hasOption(argv, '-c', paths.nodeConfig(lc.dir, name)),
  }),
  proxy: (lc: LocalCluster): Managed => ({
    file: paths.proxyPid(lc.dir),
    what: "the cluster's proxy",
    expected: (argv) => argv.includes('proxy') && hasOption(argv, '-c', paths.proxyConfig(lc.dir)),
  }),
  etcd: (lc: LocalCluster): Managed => ({
    file: paths.etcdPid(lc.dir),
    what: "the cluster's etcd",
    expected: (argv) =>
      basename(argv[0] ?? '') === 'etcd' && hasOption(argv, '--data-dir', join(paths.etcdDir(lc.dir), 'data')),
  }),
};

export function verdict(m: Managed): PidVerdict {
  return checkPidFile(m.file, m.expected, m.what);
}

/** The pid of a managed process if its pid file names it and it is alive; a stale or foreign pid file gives null. */
export function livePid(m: Managed): number | null {
  const v = verdict(m);
  return v.kind === 'ours' ? v.pid : null;
}

/** "node1: agent.pid names process 1234 which is not node1's agent (…); not signalled" — null unless foreign. */
export function foreignNote(m: Managed, v: PidVerdict = verdict(m)): string | null {
  return v.kind === 'foreign' ? `${basename(m.file)} names ${v.reason}; not signalled` : null;
}

export function spawnDetached(
  cmd: string,
  args: readonly string[],
  logFile: string,
  pidFile: string,
  env: NodeJS.ProcessEnv = process.env,
): number {
  const fd = openSync(logFile, 'a', 0o640);
  try {
    const child = spawn(cmd, args as string[], { detached: true, stdio: ['ignore', fd, fd], env });
    if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
    child.unref();
    rmSync(pidFile, { force: true });
    writeFileSync(pidFile, formatPidFile(child.pid, startTimeOf(child.pid)), { mode: 0o644 });
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL. Resolves true if the process was running. */
export async function stopPid(pid: number, graceMs: number): Promise<boolean> {
  if (!pidAlive(pid)) return false;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return false;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) return true;
    await sleep(100);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
  for (let i = 0; i < 50 && pidAlive(pid); i++) await sleep(100);
  return true;
}

export function removeIfExists(file: string): void {
  if (existsSync(file)) rmSync(file, { force: true });
}
