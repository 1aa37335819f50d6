/**
 * The lease step's I/O (decide-lease.ts chose the actions): keep the agent's lease alive, adopt our leader key
 * onto it. Every write compares on what the cycle read. A store error does not throw out of the step: it becomes
 * the cycle's DCS error, so the cycle goes on as one that could not reach the DCS.
 */
import type { AgentContext } from './state.js';
import type { LeaseRun } from './decide-lease.js';
import type { LeaseAction } from './view.js';

/** renew_lease: true when the lease we had is still alive; false when a new one had to be granted. */
export async function renewLease(ctx: AgentContext, ttl: number): Promise<boolean> {
  const { mem, store } = ctx;
  if (mem.lease !== null && (await store.keepAlive(mem.lease))) return true;
  mem.lease = await store.grantLease(ttl);
  return false;
}

/** adopt_leader_key: put the key that names me onto my lease, if it is still the one read (value and revision). */
export async function adoptLeaderKey(ctx: AgentContext, modRevision: number): Promise<boolean> {
  const { cfg, keys, store, mem, log } = ctx;
  if (mem.lease === null) return false;
  const adopted = await store.compareAndPut(
    keys.leader,
    cfg.name,
    { value: cfg.name, modRevision },
    { lease: mem.lease },
  );
  if (adopted) log.info('adopted my existing leader key with a new lease');
  return adopted;
}

/** Runs the lease actions in order; stops at the first store error and reports it. */
export async function runLeaseActions(ctx: AgentContext, actions: readonly LeaseAction[]): Promise<LeaseRun> {
  let renewed: boolean | null = null;
  let adopted: boolean | null = null;
  try {
    for (const a of actions) {
      if (a.kind === 'renew_lease') renewed = await renewLease(ctx, a.ttl);
      else adopted = await adoptLeaderKey(ctx, a.modRevision);
    }
  } catch (err) {
    return { error: (err as Error).message };
  }
  return { renewed, adopted };
}
