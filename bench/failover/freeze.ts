/**
 * A frozen node for the `node-freeze` scenario: SIGSTOP of the agent, the postmaster and every child of the
 * postmaster (backends, walsenders). Unlike a SIGKILL, the ports still accept TCP connections (the kernel completes
 * the handshake) but nothing answers — what other members see of a host that hangs or drops off the network, so
 * no shortcut based on refused connections applies and the leader key has to expire.
 */
import { readdirSync, readFileSync } from 'node:fs';

function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid …" — comm may contain spaces and parentheses: split after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) ? ppid : null;
  } catch {
    return null;
  }
}

export function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((p) => parentOf(p) === pid);
}

function signal(pids: readonly number[], sig: NodeJS.Signals): void {
  for (const p of pids) {
    try {
      process.kill(p, sig);
    } catch {
      // exited meanwhile
    }
  }
}

/** Stops the agent and the whole postmaster tree; returns the function that lets them run again. */
export function freeze(agent: number | null, postmaster: number | null): () => void {
  const pids = [
    ...(postmaster !== null ? [postmaster, ...childrenOf(postmaster)] : []),
    ...(agent !== null ? [agent] : []),
  ];
  signal(pids, 'SIGSTOP');
  let thawed = false;
  return () => {
    if (thawed) return;
    thawed = true;
    signal(pids, 'SIGCONT');
  };
}
