/**
 * Who holds the VIP, as a pure function of what the HA cycle saw: the leader — it holds the leader key on its own
 * lease after this cycle's lease step AND its PostgreSQL answered as a primary accepting writes — holds the address;
 * every other member makes sure it does not. The address goes before writes stop: a decided or running demotion, a
 * restart, or the agent stopping all count as "not the leader" here (the executor also drops it before it demotes,
 * execute-lifecycle.ts). The agent looks at the interface every cycle, so an address that appeared by any other way
 * on a member that is not the leader is removed within a cycle.
 *
 * While the address is held, the guard process (guard.ts) is told how long the leader's lease still runs: if the
 * agent freezes or dies, the guard removes the address — no later than the lease could pass to another member.
 */

export interface VipView {
  /** Observed.holdsLock: the leader key names me, on my lease, after this cycle's lease step. */
  readonly holdsLock: boolean;
  /** PostgreSQL answered this cycle as a primary (accepting connections, not in recovery). */
  readonly writablePrimary: boolean;
  /** A demotion or restart is decided this cycle or running (PostgreSQL is about to stop accepting writes). */
  readonly demoting: boolean;
  /** The agent is stopping. */
  readonly shuttingDown: boolean;
  /** The address is on the interface now. */
  readonly held: boolean;
  /** This agent announced the address (gratuitous ARP) since it last found it absent. */
  readonly announced: boolean;
  /** Milliseconds the leader's lease still runs from now (last renewal + ttl - now); 0 when unknown or past. */
  readonly leaseLeftMs: number;
}

export type VipStep =
  /** Add the address, then announce it; the guard holds it `holdMs`. */
  | { readonly kind: 'add'; readonly reason: string; readonly holdMs: number }
  /** It is held but this agent has not announced it (e.g. the agent restarted on the leader). */
  | { readonly kind: 'announce'; readonly reason: string; readonly holdMs: number }
  | { readonly kind: 'keep'; readonly reason: string; readonly holdMs: number }
  | { readonly kind: 'remove'; readonly reason: string }
  | { readonly kind: 'none'; readonly reason: string };

/** Why this member must not hold the address, or null when it must (the first failing condition, in order). */
export function notLeaderBecause(v: VipView): string | null {
  if (v.shuttingDown) return 'the agent is stopping';
  if (v.demoting) return 'PostgreSQL is being demoted or restarted';
  if (!v.holdsLock) return 'this member does not hold the leader key';
  if (!v.writablePrimary) return 'PostgreSQL does not accept writes here';
  if (v.leaseLeftMs <= 0) return "the leader key's lease has no time left";
  return null;
}

export function vipStep(v: VipView): VipStep {
  const not = notLeaderBecause(v);
  if (not !== null)
    return v.held
      ? { kind: 'remove', reason: `removing the VIP: ${not}` }
      : { kind: 'none', reason: `not holding the VIP: ${not}` };
  const holdMs = v.leaseLeftMs;
  if (!v.held)
    return { kind: 'add', reason: 'adding the VIP: I hold the leader key and PostgreSQL accepts writes', holdMs };
  if (!v.announced) return { kind: 'announce', reason: 'announcing the VIP this agent found already held', holdMs };
  return { kind: 'keep', reason: 'holding the VIP', holdMs };
}
