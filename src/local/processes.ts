/**
 * Background processes of a local cluster: started detached (their own session, so Ctrl-C in `up` reaches only
 * `up`), logging to a file, remembered by pid file, and stopped by pid — never by name.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { pidAlive, sleep } from '../lib/proc.js';

export function readPid(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** The pid in `file` if that process is alive. */
export function livePid(file: string): number | null {
  const pid = readPid(file);
  return pid !== null && pidAlive(pid) ? pid : null;
}

export function spawnDetached(cmd: string, args: readonly string[], logFile: string, pidFile: string, env: NodeJS.ProcessEnv = process.env): number {
  const fd = openSync(logFile, 'a', 0o640);
  try {
    const child = spawn(cmd, args as string[], { detached: true, stdio: ['ignore', fd, fd], env });
    if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
    child.unref();
    writeFileSync(pidFile, `${child.pid}\n`);
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
