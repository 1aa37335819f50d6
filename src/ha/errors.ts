/**
 * The HA agent's error catalogue: every error the executor and the agent raise has a stable code here, with the
 * identifiers it concerns as fields (never only in the message). docs/errors.md is generated from this list
 * (config/errors-doc.ts). Errors of the programs keep their PG_* codes (postgres/local-instance.ts).
 */
export const haErrorCatalogue = {
  HA_MEMBER_NO_CONN_URL: {
    where: 'agent',
    summary:
      'A clone, re-clone or rewind needs a member whose DCS record has no usable conn_url ("cannot clone: member node2 has no conn_url"); the operation fails and is retried after a pause, when the member may have published it.',
  },
  HA_NO_LEASE: {
    where: 'agent',
    summary:
      'The agent has no DCS lease to take the leader key with (the lease could not be granted or was lost); taking the key or finishing a bootstrap fails and is retried after a pause.',
  },
  HA_BOOTSTRAP_LEADER_TAKEN: {
    where: 'agent',
    summary:
      'Another member took the leader key while this one was initializing the cluster; the new data directory is moved to <data_dir>.failed-bootstrap-<time> and the initialize key released.',
  },
  HA_BOOTSTRAP_NO_CONTROL_DATA: {
    where: 'agent',
    summary:
      'pg_controldata could not read the freshly initialized cluster (no system identifier to publish); bootstrap is rolled back as above and retried.',
  },
  HA_NO_REPLICA_METHOD: {
    where: 'agent',
    summary:
      'postgresql.create_replica_methods has only `backup` and this node has no backup repository (or the restore failed): the replica cannot be created; add basebackup to the list or give the node a repository.',
  },
  HA_REWIND_DISABLED: {
    where: 'agent',
    summary:
      'This former primary diverged from the new leader and postgresql.use_pg_rewind is off, so it cannot follow; re-clone it (pgkeel ctl reinit) or turn use_pg_rewind on.',
  },
  HA_REINIT_NO_SPACE: {
    where: 'agent',
    summary:
      "POST /reinitialize refused (503): the filesystem cannot hold the clone (the leader's databases or the local data directory, whichever is larger, plus 10 % and 64 MB), counting what removing older moved-aside copies would free.",
  },
  HA_REQUEST_REFUSED: {
    where: 'agent',
    summary:
      'An operator request (REST restart/reinitialize) cannot run now, e.g. reinitialize on the leader; the REST answer is 503 with the reason.',
  },
  HA_REQUEST_FAILED: {
    where: 'agent',
    summary:
      "An operator request (REST restart/reinitialize) was started but its background operation failed; the REST answer carries the operation's error and the agent retries as after any failed operation.",
  },
  HA_WATCHDOG_UNAVAILABLE: {
    where: 'agent',
    summary:
      "The watchdog device (watchdog.device) cannot be armed safely: missing (softdog not loaded), not writable, its timeout cannot be set to ttl - safety_margin or is longer, or a keepalive failed. `automatic` mode warns once and leads without it; `required` mode refuses to take or keep the leader key (the cycle's sentence says why). See docs/deploy-watchdog.md.",
  },
  HA_VIP_COMMAND_FAILED: {
    where: 'agent',
    summary:
      'Adding, removing, checking or announcing the VIP failed (`ip addr …` or `arping` exited non-zero or is missing; its output is logged): the agent logs it and tries again next cycle. Usually the agent lacks root/CAP_NET_ADMIN, `vip.interface` does not exist, or iputils-arping is not installed (docs/deploy-vip.md).',
  },
} as const;

export type HaErrorCode = keyof typeof haErrorCatalogue;

/** What an HA error concerns; each field that applies is set. */
export interface HaErrorContext {
  /** The other member involved (clone source, rewind source). */
  readonly member?: string;
  /** The operation that failed (clone, reclone, rewind, take_leadership, bootstrap). */
  readonly operation?: string;
  /** This node's name. */
  readonly node?: string;
}

export class HaError extends Error {
  constructor(
    readonly code: HaErrorCode,
    message: string,
    readonly context: HaErrorContext = {},
    /** Extra text for the log (a program's output); never part of the message. */
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'HaError';
  }
}
