/**
 * The agent's own memory between cycles (what it cannot read back from the DCS or PostgreSQL), and the context
 * every I/O step gets. Only the loop and the executor change `AgentMemory`.
 */
import type { Cluster, ClusterKeys } from '../dcs/layout.js';
import type { LeaseId, Store } from '../dcs/store.js';
import type { NodeConfig } from '../config/node.js';
import type { Logger } from '../lib/log.js';
import type { LocalInstance } from '../postgres/local-instance.js';
import type { Busy } from './view.js';

export interface AgentMemory {
  lease: LeaseId | null;
  busy: Busy | null;
  /** Message of the last failed background operation (shown in status and /patroni), cleared on success. */
  lastError: string | null;
  lastRenew: { ok: boolean; at: number } | null;
  releasedLockAt: number | null;
  /** PostgreSQL should be running (we started it and did not stop it on purpose). */
  shouldRun: boolean;
  downSince: number | null;
  rewindFailed: boolean;
  /** The member our primary_conninfo points at, as last written. */
  following: string | null;
  /** The synchronous_standby_names value last written ('' = none). */
  synchronousStandbyNames: string;
  /** Database system identifier of our data directory, read once from pg_controldata. */
  sysid: string | null;
  /** A background operation must not be retried before this time (failed clone, failed start, crash loop). */
  retryAfter: number;
  /** When the executor last started PostgreSQL; stops soon after it count as a crash loop (crash-loop.ts). */
  startedAt: number | null;
  /** Consecutive stops of PostgreSQL soon after a start (crash-loop.ts). */
  crashes: number;
  /** Consecutive failures of background operations; the retry wait grows with it (crash-loop.ts). */
  failures: number;
  /** The node's role as last decided, for callbacks (on_role_change fires when it changes). */
  role: 'primary' | 'replica' | 'uninitialized' | 'demoted';
  /** When the DCS last answered. */
  dcsLastSeen: number | null;
  /** The last cluster read from the DCS (settings and the failsafe member list while the DCS is down). */
  lastCluster: Cluster | undefined;
  /** failsafe mode: when a leader last confirmed it is alive (POST /failsafe to this replica); null if never. */
  failsafeSeenAt: number | null;
}

export function newMemory(): AgentMemory {
  return {
    lease: null,
    busy: null,
    lastError: null,
    lastRenew: null,
    releasedLockAt: null,
    shouldRun: true,
    downSince: null,
    rewindFailed: false,
    following: null,
    synchronousStandbyNames: '',
    sysid: null,
    retryAfter: 0,
    startedAt: null,
    crashes: 0,
    failures: 0,
    role: 'uninitialized',
    dcsLastSeen: null,
    lastCluster: undefined,
    failsafeSeenAt: null,
  };
}

export interface AgentContext {
  readonly cfg: NodeConfig;
  readonly keys: ClusterKeys;
  readonly store: Store;
  readonly pg: LocalInstance;
  readonly log: Logger;
  readonly now: () => number;
  readonly mem: AgentMemory;
  /** The VIP (src/vip/), when the node config has one: the executor drops it before PostgreSQL stops taking writes. */
  readonly vip?: { drop(reason: string): Promise<void> };
}
