/**
 * What one HA cycle sees (`Observed`, an immutable snapshot gathered once per cycle) and what it may do
 * (`Action`). `decide(observed)` in decide.ts maps the first to a `Decision`; loop.ts gathers and executes.
 *
 * Nothing in here does I/O. Times are milliseconds since the epoch, taken from the loop's injected clock.
 * LSNs are byte positions as JavaScript numbers (exact up to 8 PiB of WAL).
 */
import type { Cluster } from '../dcs/layout.js';
import type { LeaseId } from '../dcs/store.js';
import type { LogProblem } from '../postgres/log-problems.js';
import type { WatchdogView } from './watchdog.js';
import type { LogicalSlotsView } from './logical-slots.js';

export interface HaSettings {
  /** Leader key lease, seconds. */
  readonly ttl: number;
  /** Seconds between cycles. */
  readonly loopWait: number;
  /** Seconds a DCS or PostgreSQL call may take before it counts as failed. */
  readonly retryTimeout: number;
  /** Bytes a replica may trail the leader's last known position and still be promoted automatically. */
  readonly maximumLagOnFailover: number;
  readonly synchronousMode: boolean;
  readonly synchronousModeStrict: boolean;
  readonly synchronousNodeCount: number;
  readonly failsafeMode: boolean;
  /** Seconds a crashed primary may take to come back in place before it gives up the leader key. 0 = at once. */
  readonly primaryStartTimeout: number;
  readonly usePgRewind: boolean;
  /** Maintenance mode (`pause` in the DCS config): observe and report, change nothing. */
  readonly paused: boolean;
}

export interface Tags {
  readonly nofailover: boolean;
  readonly noloadbalance: boolean;
  readonly nosync: boolean;
  readonly clonefrom: boolean;
  readonly [other: string]: unknown;
}

/** The local PostgreSQL as the agent observed it this cycle. */
export interface LocalPostgres {
  /** 'empty': no data directory or no PG_VERSION in it; 'ready': an initialized data directory. */
  readonly dataDir: 'empty' | 'ready';
  /** System identifier from pg_controldata; null when dataDir is 'empty'. */
  readonly sysid: string | null;
  /** The postmaster is alive (postmaster.pid names a live process). */
  readonly running: boolean;
  /** It accepts connections and answered the status query this cycle. */
  readonly accepting: boolean;
  /** pg_is_in_recovery(); null when not accepting. */
  readonly inRecovery: boolean | null;
  readonly timeline: number | null;
  /** Primary: pg_current_wal_lsn(). Replica: max(received, replayed). null when unknown. */
  readonly walPosition: number | null;
  readonly receivedLsn: number | null;
  readonly replayedLsn: number | null;
  /** A WAL receiver is streaming from the upstream. */
  readonly streaming: boolean;
  /** A replica that does not stream, or PostgreSQL running but not accepting connections (a crash-restart loop
   *  inside the postmaster looks like that): the newest error its log gives (recent lines only); null if none. */
  readonly streamProblem?: LogProblem | null;
  /** The member named in primary_conninfo (application_name/host match), null if none configured. */
  readonly following: string | null;
  /** Standbys PostgreSQL reports as `sync` or `quorum` in pg_stat_replication (application_name = member name). */
  readonly syncStandbys: readonly string[];
  /** Standbys currently streaming from this node (pg_stat_replication, state 'streaming'). */
  readonly streamingStandbys: readonly string[];
  /** synchronous_standby_names as configured, parsed into member names ('*' = the strict-mode placeholder, [] =
   *  empty). Optional: when absent, decide compares against `syncStandbys` and cannot see the strict placeholder. */
  readonly synchronousStandbyNames?: readonly string[];
  /** The agent expects PostgreSQL to be running (it started it and did not stop it). */
  readonly shouldRun: boolean;
  /** Since when PostgreSQL has been seen not running although `shouldRun`; null if running or not expected. */
  readonly downSince: number | null;
}

/** What another member's REST API (`GET /patroni`) said this cycle; gathered only while the leader key is free. */
export type PeerStatus =
  | {
      readonly reachable: true;
      readonly role: 'primary' | 'replica' | 'unknown';
      readonly state: string;
      readonly walPosition: number | null;
      readonly timeline: number | null;
      readonly nofailover: boolean;
      /** It said `watchdog_failed` (watchdog.mode required, not armable): it will not take the key, so not a rival. */
      readonly watchdogFailed?: boolean;
    }
  | { readonly reachable: false };

export type DcsView =
  | { readonly ok: true; readonly cluster: Cluster }
  | { readonly ok: false; readonly error: string; readonly lastSeen: number | null };

/** Operator requests from the REST API (POST /restart, /reinitialize, /reload), run by the loop between cycles. */
export type OperatorRequest = 'restart' | 'reinitialize' | 'reload';

/** An operation the executor is running across cycles (initdb, pg_basebackup, rewind, promote, restart). */
export interface Busy {
  readonly what: 'bootstrap' | 'clone' | 'rewind' | 'promote' | 'restart' | 'demote' | 'start';
  readonly since: number;
}

export interface Observed {
  readonly now: number;
  readonly me: string;
  readonly tags: Tags;
  readonly settings: HaSettings;
  readonly dcs: DcsView;
  /** The leader key names me and is attached to my lease, after this cycle's lease step (decide-lease.ts). With
   *  the DCS down in failsafe mode: I held it when the DCS was last seen and run as primary. */
  readonly holdsLock: boolean;
  /** Result of the last attempt to renew the leader key (null if never attempted while leader). */
  readonly lastRenew: Renewal | null;
  /** When this agent last held the lock and released it on purpose (switchover, shutdown); null otherwise. */
  readonly releasedLockAt: number | null;
  readonly pg: LocalPostgres;
  /** Other members' statuses keyed by name; empty unless the leader key was free when gathered. */
  readonly peers: ReadonlyMap<string, PeerStatus>;
  /** failsafe_mode with the DCS down: every member listed in `/failsafe` accepted our POST /failsafe. */
  readonly failsafeConfirmed: boolean;
  /** The agent got SIGTERM/SIGINT and is stopping. */
  readonly shuttingDown: boolean;
  readonly busy: Busy | null;
  /** The last rewind failed (so the executor must re-clone instead of trying rewind again). */
  readonly rewindFailed: boolean;
  /** Another member holds the leader key, our WAL receiver is not streaming, and both the leader's REST API and
   *  PostgreSQL ports refused a TCP connection this cycle: the host answered and nothing listens, so no commit can
   *  be acknowledged there any more (see docs/failover.md). Probed only in that situation; false otherwise. */
  readonly leaderDown?: boolean;
  /** The operator request first in line, or null. decide runs it this cycle instead of the situation's actions,
   *  refuses it, or leaves it queued while a long action runs (see `Decision.request`). */
  readonly request: OperatorRequest | null;
  /** After a failed background operation (or a crash loop) nothing is retried before `after` (ms; 0 = no wait);
   *  `lastError` says what failed. */
  readonly retry: { readonly after: number; readonly lastError: string | null };
  /** The role as last decided (what the member record says); an operator request that changes no role keeps it. */
  readonly lastRole: Decision['role'];
  /** Watchdog fencing (watchdog.ts): in `required` mode an unavailable watchdog bars leading. Absent: mode off. */
  readonly watchdog?: WatchdogView;
  /** Permanent logical slots (issue 14, logical-slots.ts): which the config names and which exist here. Absent:
   *  the promotion guard is off (no permanent logical slots, or not observed). */
  readonly logicalSlots?: LogicalSlotsView;
}

/** A renewal of the leader key: whether we still held it, and when the lease step (or failsafe) found out. */
export interface Renewal {
  readonly ok: boolean;
  readonly at: number;
}

/**
 * What the lease step sees (decide-lease.ts): the DCS as just read, and the agent's lease as the last cycle left
 * it. The step runs before the rest of the cycle is observed or decided, because what the cycle may do depends on
 * its outcome; `Observed.holdsLock` and `lastRenew` carry that outcome to `decide`.
 */
export interface LeaseView {
  readonly now: number;
  readonly me: string;
  /** Seconds, for a lease granted now. */
  readonly ttl: number;
  readonly dcs: DcsView;
  /** The agent's lease (its member record and leader key hang on it); null before the first was granted. */
  readonly lease: LeaseId | null;
  /** `Observed.lastRenew` as the last cycle left it. */
  readonly lastRenew: Renewal | null;
}

/** What the lease step may do, in order; the executor runs them before `decide` (execute-dcs.ts). */
export type LeaseAction =
  /** Keep the agent's lease alive; when it has expired (or none was granted yet), grant a new one of `ttl`
   *  seconds. Every member does this every cycle the DCS answers: its member record hangs on the lease. */
  | { readonly kind: 'renew_lease'; readonly ttl: number }
  /** The leader key names me but hangs on another lease (the agent restarted while PostgreSQL kept running): put
   *  it on our lease, comparing its value and the `modRevision` read (Patroni `update_leader`). */
  | { readonly kind: 'adopt_leader_key'; readonly modRevision: number };

/** What the executor may do this cycle; a Decision lists them in the order they run. */
export type Action =
  /** Try to create `initialize` (the bootstrap race); the winner runs initdb, starts, takes the leader key. */
  | { readonly kind: 'bootstrap' }
  /** Make this node a replica: pg_basebackup from `from` (member name) into an empty data directory. */
  | { readonly kind: 'clone'; readonly from: string }
  /** Start PostgreSQL. As 'replica' it follows `leader` (standby.signal + primary_conninfo); with no leader it
   *  starts in recovery without an upstream. As 'primary' only while holding the lock. */
  | { readonly kind: 'start'; readonly as: 'primary' | 'replica'; readonly leader: string | null }
  /** Restart PostgreSQL in place (crashed primary while still holding the lock). */
  | { readonly kind: 'restart' }
  /** Create the leader key with our lease (compare: key absent); if won, promote PostgreSQL, clear `/failover`,
   *  append `/history`. If lost, nothing — the next cycle sees the new leader. */
  | { readonly kind: 'take_leadership'; readonly reason: string }
  /** Promote the running replica: we already hold the leader key (a promote after take_leadership that did not
   *  finish, or an agent restart). Unlike take_leadership it does not touch the key. */
  | { readonly kind: 'promote'; readonly reason: string }
  /** Leader upkeep while holding the key: the `status` key (optime, slots), replication slots, `/failsafe`. The
   *  lease the key hangs on was renewed by the lease step (`renew_lease`) before this cycle was decided. */
  | { readonly kind: 'renew_lock' }
  /** Delete the leader key if it still names us. */
  | { readonly kind: 'release_lock' }
  /** Stop being a writable primary. 'graceful': fast shutdown with checkpoint, then release the key (switchover,
   *  shutdown). 'immediate': immediate stop, key not ours any more. 'offline': DCS unreachable — stop accepting
   *  writes, keep data, restart read-only. After demote the node starts as a replica (follows a leader later). */
  | { readonly kind: 'demote'; readonly mode: 'graceful' | 'immediate' | 'offline' }
  /** Point the running replica at `leader` (primary_conninfo + slot; reload when possible, else restart). */
  | { readonly kind: 'follow'; readonly leader: string }
  /** A former primary whose timeline diverged: pg_rewind from `from` (or re-clone if rewind is off or failed). */
  | { readonly kind: 'rewind'; readonly from: string }
  | { readonly kind: 'reclone'; readonly from: string }
  /** Leader in synchronous mode: set synchronous_standby_names to `standbys` (empty = none; strict mode with none
   *  uses a placeholder that blocks commits) and write `/sync` — PostgreSQL first, the key only for standbys
   *  PostgreSQL already reports as synchronous (Patroni's order). */
  | { readonly kind: 'set_sync'; readonly standbys: readonly string[] }
  /** Leader with synchronous mode turned off: clear synchronous_standby_names and delete `/sync`. */
  | { readonly kind: 'clear_sync' }
  /** The leader is provably down (`leaderDown`): delete its key (compare value and revision) so the members
   *  race now instead of waiting for its lease to expire. */
  | { readonly kind: 'remove_dead_leader'; readonly leader: string; readonly modRevision: number }
  /** Rewrite the managed configuration from the current settings and reload PostgreSQL (operator request). */
  | { readonly kind: 'reload' }
  /** Leader: a scheduled or immediate switchover/failover request in `/failover` was invalid or done: delete it. */
  | { readonly kind: 'clear_failover' };

export interface Decision {
  /** One sentence, logged every cycle and shown in status/`/patroni`: e.g.
   *  "no action: I am the leader with the lock", "promoted: leader key was free and I had the highest WAL position". */
  readonly summary: string;
  readonly actions: readonly Action[];
  /** The role this node reports after the actions (for the member record and REST API). */
  readonly role: 'primary' | 'replica' | 'uninitialized' | 'demoted';
  /** What became of `Observed.request`: 'run' — these actions carry it out; 'refused' — not run, and `reason` says
   *  why (the REST API answers 503 with it). Absent when there was none, or it stays queued (a long action runs). */
  readonly request?: { readonly outcome: 'run' } | { readonly outcome: 'refused'; readonly reason: string };
}
