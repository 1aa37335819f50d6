/** What the unsafe REST handlers share: their result type and timing options. */

export interface ActionResult {
  readonly code: number;
  readonly body: unknown;
}

export interface ActionOptions {
  /** How often a switchover/failover polls the DCS for the new leader (default 1000 ms, as Patroni). */
  readonly pollIntervalMs?: number;
  /** How long it waits at most; default 2 × max(10, loop_wait) s, as Patroni's `poll_failover_result`. */
  readonly waitMs?: (loopWait: number) => number;
  /** How long POST /reinitialize waits for the clone to start before answering (default 30 s). */
  readonly reinitStartMs?: number;
}

export { sleep } from '../lib/proc.js';

export function text(code: number, body: string): ActionResult {
  return { code, body };
}
