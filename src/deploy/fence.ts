/**
 * `pgkeel fence -c node.yml`: stops this node's PostgreSQL at once (pg_ctl stop -m immediate: every backend quits,
 * no checkpoint, crash recovery at the next start). The systemd unit runs it as ExecStop only when the agent is
 * already gone (`$MAINPID` unset): a primary must not keep accepting writes without the agent that renews its leader
 * key, while the key expires and a replica is promoted. With the agent alive, ExecStop does nothing and the agent's
 * own SIGTERM handling (handover, then a clean stop) runs.
 */
import type { LocalInstance } from '../postgres/local-instance.js';

export type Fenceable = Pick<LocalInstance, 'isRunning' | 'stop'>;

export const FENCE_STOP_TIMEOUT_MS = 30_000;

/** Stops PostgreSQL immediately when it runs; returns what was done, for the journal. */
export async function fencePostgres(pg: Fenceable, dataDir: string): Promise<string> {
  if (!pg.isRunning()) return `PostgreSQL in ${dataDir} is not running: nothing to fence`;
  await pg.stop('immediate', FENCE_STOP_TIMEOUT_MS);
  return `stopped PostgreSQL in ${dataDir} (immediate): its agent is gone`;
}
