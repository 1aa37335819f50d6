/**
 * The VIP guard: a small process the agent starts (guard-main.ts) that removes the address when the agent can no
 * longer do it. The agent cannot run after SIGKILL or an OOM kill, so the guard is a separate process that holds the
 * read end of a pipe from the agent on its stdin: the kernel closes the write end when the agent dies, however it
 * dies, and the guard then runs `ip addr del` and exits. It starts in its own process group and ignores SIGINT,
 * SIGTERM and SIGHUP, so a Ctrl-C or a service stop that signals the whole group leaves it to see the pipe close.
 *
 * Protocol on the pipe, one line each: `hold <ms>` — the agent holds the address and its lease runs `ms` more: if no
 * further line comes within `ms`, the guard removes the address (a frozen agent keeps no VIP past its lease, when
 * another member may already hold it); `release` — the agent removed it itself, stop the timer.
 * What the guard cannot cover: a host that dies whole (its addresses die with it) and a service manager that
 * SIGKILLs every process of the group at once (systemd's final SIGKILL; the unit's stop lets the agent hand over
 * first, docs/deploy-vip.md).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import type { Logger } from '../lib/log.js';

export interface GuardTarget {
  readonly address: string;
  readonly prefix: number;
  readonly dev: string;
}

/** The guard's side: reads the agent's lines from `input`; calls `remove(why)` on a missed deadline and at the end. */
export function runGuard(input: Readable, remove: (why: string) => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const lines = createInterface({ input });
  lines.on('line', (line) => {
    const [cmd, arg] = line.trim().split(/\s+/);
    if (cmd === 'hold' && Number.isFinite(Number(arg))) {
      clearTimeout(timer);
      timer = setTimeout(() => remove(`the agent did not renew its hold within ${arg} ms`), Number(arg));
    } else if (cmd === 'release') clearTimeout(timer);
  });
  return new Promise((resolve) =>
    lines.on('close', () => {
      clearTimeout(timer);
      remove('the agent is gone (its pipe closed)');
      resolve();
    }),
  );
}

export const GUARD_SCRIPT = fileURLToPath(new URL('./guard-main.js', import.meta.url));

/**
 * The agent's side: starts the guard (again, should it have died) and writes it the protocol's lines. A write to a
 * dead guard is dropped; `ensure()` next cycle starts a new one.
 */
export class VipGuard {
  private child: ChildProcess | null = null;
  /** Set by close(): the guard's exit is expected then, not worth a warning. */
  private closing = false;

  constructor(
    private readonly target: GuardTarget,
    private readonly log: Logger,
    private readonly logFormat: 'json' | 'text' = 'json',
    private readonly script = GUARD_SCRIPT,
  ) {}

  ensure(): void {
    if (this.child) return;
    const { address, prefix, dev } = this.target;
    const child = spawn(process.execPath, [this.script, address, String(prefix), dev, this.logFormat], {
      stdio: ['pipe', 'ignore', 'inherit'],
      detached: true,
    });
    child.unref();
    child.stdin?.on('error', () => {});
    child.on('error', (err) => this.log.warn('the VIP guard could not start', { err, code: 'HA_VIP_COMMAND_FAILED' }));
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = null;
      if (!this.closing) this.log.warn('the VIP guard exited; it is started again next cycle', { code, signal });
    });
    this.child = child;
  }

  hold(ms: number): void {
    this.ensure();
    this.child?.stdin?.write(`hold ${Math.max(0, Math.floor(ms))}\n`);
  }

  release(): void {
    this.child?.stdin?.write('release\n');
  }

  /** Clean stop: closes the pipe (the guard removes the address, if still there, and exits); waits for it. */
  async close(): Promise<void> {
    const child = this.child;
    this.closing = true;
    if (!child) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.stdin?.end();
      setTimeout(resolve, 3000).unref();
    });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }
}
