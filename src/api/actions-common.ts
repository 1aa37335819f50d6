/** What the unsafe REST handlers share: their result type, timing options, and a fresh read of the cluster. */
import { parseCluster, type Cluster } from '../dcs/layout.js';
import type { Agent } from '../ha/agent.js';

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

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The cluster as the DCS holds it right now (the agent's last snapshot may be a cycle old). */
export async function readCluster(agent: Agent): Promise<Cluster> {
  const { store, keys } = agent.ctx;
  return parseCluster(keys, await store.getPrefix(keys.prefix));
}

export function text(code: number, body: string): ActionResult {
  return { code, body };
}
