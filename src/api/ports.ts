/**
 * What the REST API needs from the rest of pgkeel, and nothing more. `AgentPort` is all it may ask of the HA agent
 * (`Agent` in src/ha/agent.ts implements it; API tests can pass a small fake); `ApiDeps` is what it is given at
 * construction besides (src/cli/agent-cmd.ts wires both): the DCS it writes PATCH/PUT /config and `/failover` to,
 * the node's settings, the clock.
 *
 * Contract: the API never changes the agent's memory. It reads a frozen snapshot, queues operator requests for the
 * loop, reports failsafe pings through a method, and wakes the loop after it wrote something the agents act on.
 */
import type { Cluster, ClusterKeys } from '../dcs/layout.js';
import type { Store } from '../dcs/store.js';
import type { NodeConfig } from '../config/node.js';
import type { AgentSnapshot, OperatorRequest } from '../ha/agent.js';
import type { BackupServiceStatus } from '../backup/agent-service.js';
import type { ClusterEvent } from '../observe/events/event.js';
import type { StatementsReport } from '../observe/pg-metrics/statements.js';
import type { DrillFault } from '../ha/drill.js';

export interface AgentPort {
  /**
   * The last HA cycle's view, with the agent's memory as it is at this call: a frozen copy, so a reader sees one
   * state throughout a request and cannot change the agent's.
   */
  snapshot(): AgentSnapshot;
  /**
   * Queues an operator request (POST /restart, /reinitialize, /reload) that the loop runs between cycles; resolves
   * with the cycle's sentence when it is done, rejects with `RequestRefused` when it cannot run or with the failure.
   */
  request(kind: OperatorRequest): Promise<string>;
  /** POST /failsafe: a primary in failsafe mode confirmed itself to this replica at `at` (epoch ms). */
  noteFailsafePing(at: number): void;
  /** The cluster as the DCS holds it now (one range read; the snapshot's may be a cycle old); rejects when the
   *  DCS does not answer. */
  readCluster(): Promise<Cluster>;
  /** Asks the loop to run a cycle now: a request was written to the DCS that the agents act on. */
  poke(): void;
  /** WAL archiving and backups as this agent sees them (absent in fakes that have none). */
  backupStatus?(): BackupServiceStatus;
  /** GET /events: the events this agent recorded at or after `since` (epoch ms; undefined: all kept), oldest first
   *  (src/observe/events/; absent in fakes that record none). */
  recentEvents?(since?: number): ClusterEvent[];
  /** POST /drill (src/ha/drill.ts): starts a fault; resolves with a sentence once it is in force, rejects with
   *  `RequestRefused` (absent in fakes and agents without drill hooks). */
  drill?(fault: DrillFault, seconds: number): Promise<string>;
}

/** PostgreSQL metrics (src/observe/pg-metrics/): both answer within `metrics.timeout_ms`, from a cached round. */
export interface PgMetricsPort {
  /** pg_* series in Prometheus text, appended to /metrics ('' when off). */
  exposition(): Promise<string>;
  /** GET /statements. */
  statements(): Promise<StatementsReport>;
}

/** The node settings the API reads: its listener and credentials, what a DCS config may set, the default loop_wait,
 *  and the client settings (`ctl`) the dashboard uses to reach the other members. */
export type ApiConfig = Pick<NodeConfig, 'restapi' | 'postgresql' | 'bootstrap' | 'ctl'>;

export interface ApiDeps {
  readonly agent: AgentPort;
  /** The DCS the unsafe endpoints write (`config`, `failover`) with compare-and-swap on what they read. */
  readonly store: Store;
  readonly keys: ClusterKeys;
  readonly cfg: ApiConfig;
  /** Epoch ms: health checks against the lease, auth log intervals, switchover deadlines and schedules. */
  readonly now: () => number;
  /** PostgreSQL metrics for /metrics and GET /statements (absent: neither has PostgreSQL's series). */
  readonly pgMetrics?: PgMetricsPort;
}
