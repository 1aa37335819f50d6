/**
 * The VipNet port: what the agent does to the host's network for the VIP, and its Linux implementation with
 * iproute2 and iputils arping (Debian: iproute2, iputils-arping; both need root or CAP_NET_ADMIN / CAP_NET_RAW).
 *
 * Contract (every implementation; net.test.ts checks the Linux one against a recording runner):
 * - `has(address, dev)` says whether `address` is assigned to `dev` now; it throws when it cannot tell.
 * - `add` and `remove` are idempotent: adding a held address or removing an absent one is not an error.
 * - `announce` tells the segment that `address` is at `dev`'s MAC (a gratuitous ARP), so switches and clients
 *   whose ARP cache still names the former holder update it at once instead of after their cache expires.
 * Failures throw HaError HA_VIP_COMMAND_FAILED with the program's output as `detail`.
 */
import { run, type RunResult } from '../lib/proc.js';
import { HaError } from '../ha/errors.js';

export interface VipNet {
  has(address: string, dev: string): Promise<boolean>;
  add(address: string, prefix: number, dev: string): Promise<void>;
  remove(address: string, prefix: number, dev: string): Promise<void>;
  announce(address: string, dev: string): Promise<void>;
}

/** Runs a program to completion; never throws for a non-zero exit (src/lib/proc.ts `run` as root, not postgres). */
export type Runner = (cmd: string, args: readonly string[]) => Promise<Pick<RunResult, 'code' | 'stdout' | 'stderr'>>;

const RUN_TIMEOUT_MS = 5000;
export const defaultRunner: Runner = (cmd, args) => run(cmd, args, { asPostgres: false, timeoutMs: RUN_TIMEOUT_MS });

/** `ip addr add` of a held address / `ip addr del` of an absent one: already as wanted. */
const ALREADY = /File exists|Cannot assign requested address|Address not found/i;

export class LinuxVipNet implements VipNet {
  constructor(private readonly runner: Runner = defaultRunner) {}

  async has(address: string, dev: string): Promise<boolean> {
    const r = await this.must('ip', ['-o', '-4', 'addr', 'show', 'dev', dev], 'check');
    return r.stdout.split('\n').some((line) => new RegExp(`\\binet ${address.replace(/\./g, '\\.')}/`).test(line));
  }

  async add(address: string, prefix: number, dev: string): Promise<void> {
    await this.must('ip', ['addr', 'add', `${address}/${prefix}`, 'dev', dev], 'add');
  }

  async remove(address: string, prefix: number, dev: string): Promise<void> {
    await this.must('ip', ['addr', 'del', `${address}/${prefix}`, 'dev', dev], 'remove');
  }

  /** Unsolicited ARP (-U), twice (the second ~1 s later, so it takes that long); the address must be on `dev`. */
  async announce(address: string, dev: string): Promise<void> {
    await this.must('arping', ['-U', '-c', '2', '-I', dev, address], 'announce');
  }

  private async must(cmd: string, args: readonly string[], operation: string) {
    let r: Awaited<ReturnType<Runner>>;
    try {
      r = await this.runner(cmd, args);
    } catch (err) {
      throw new HaError('HA_VIP_COMMAND_FAILED', `VIP ${operation}: cannot run ${cmd}: ${(err as Error).message}`, {
        operation: `vip ${operation}`,
      });
    }
    if (r.code === 0 || (operation !== 'check' && operation !== 'announce' && ALREADY.test(r.stderr))) return r;
    throw new HaError(
      'HA_VIP_COMMAND_FAILED',
      `VIP ${operation}: ${cmd} ${args.join(' ')} exited with ${r.code}`,
      { operation: `vip ${operation}` },
      r.stderr.trim(),
    );
  }
}
