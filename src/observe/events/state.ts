/**
 * What event derivation looks at, taken from one HA cycle's snapshot: a small plain value, so `derive` (derive.ts)
 * is a pure function of two of them and the cycle's decision, testable without an agent.
 */
import type { AgentSnapshot } from '../../ha/agent.js';
import type { BackupServiceStatus } from '../../backup/agent-service.js';
import type { Busy } from '../../ha/view.js';

export interface EventState {
  readonly at: number;
  readonly me: string;
  readonly timeline: number | null;
  /** The DCS answered this cycle; the cluster fields below are only compared while it did. */
  readonly dcsOk: boolean;
  readonly dcsError: string | null;
  /** Who holds the leader key, as read this cycle (null: nobody). */
  readonly leader: string | null;
  /** The lease step found the leader key ours (Observed.holdsLock). */
  readonly holdsLock: boolean;
  /** The background operation running after this cycle's actions started (null: none). */
  readonly busy: Busy['what'] | null;
  /** Message of the last failed background operation; null after a success. */
  readonly lastError: string | null;
  /** The member record's state ("running", "crashed", "stopped", …). */
  readonly memberState: string;
  readonly shuttingDown: boolean;
  readonly pendingRestart: boolean;
  /** The `/failover` key: a requested switchover (leader set) or failover (member only). */
  readonly failover: { readonly leader?: string; readonly member?: string; readonly scheduledAt?: string } | null;
  /** The DCS config key's value (null when absent or the DCS did not answer). */
  readonly config: Readonly<Record<string, unknown>> | null;
  readonly lastBackup: BackupServiceStatus['lastBackup'];
}

/** The cycle's decision as derivation needs it. */
export interface DecisionFacts {
  readonly summary: string;
  readonly actions: readonly string[];
}

export function eventState(s: AgentSnapshot, backup: BackupServiceStatus | null): EventState {
  const g = s.gathered;
  const o = g?.observed;
  const c = g?.cluster;
  const dcs = o?.dcs;
  const f = c?.failover;
  return {
    at: s.at,
    me: s.name,
    timeline: g?.pgStatus?.timeline ?? o?.pg.timeline ?? null,
    dcsOk: dcs?.ok === true,
    dcsError: dcs && !dcs.ok ? dcs.error : null,
    leader: c?.leader?.name ?? null,
    holdsLock: o?.holdsLock === true,
    busy: s.memory.busy?.what ?? null,
    lastError: s.memory.lastError,
    memberState: s.memberState,
    shuttingDown: o?.shuttingDown === true,
    pendingRestart: g?.pgStatus?.pendingRestart === true,
    failover: f
      ? {
          ...(f.leader ? { leader: f.leader } : {}),
          ...(f.member ? { member: f.member } : {}),
          ...(f.scheduledAt ? { scheduledAt: f.scheduledAt } : {}),
        }
      : null,
    config: dcs?.ok ? (c?.config?.value ?? null) : null,
    lastBackup: backup?.lastBackup ?? null,
  };
}

export function decisionFacts(s: AgentSnapshot): DecisionFacts | null {
  const d = s.decision;
  return d ? { summary: d.summary, actions: d.actions.map((a) => a.kind) } : null;
}
