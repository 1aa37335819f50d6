/**
 * Test builders for decide(): a three-member cluster (node1 leader, node2 = me, node3) in steady state, with
 * overrides per field. Used only by the decide/sync unit tests beside the code (src/ha/*.test.ts).
 */
import type { Cluster, Member, MemberRecord } from '../../src/dcs/layout.js';
import type { Action, Decision, HaSettings, LocalPostgres, Observed, PeerStatus, Tags } from '../../src/ha/view.js';

export const NOW = Date.parse('2026-01-14T10:00:00Z');
export const SYSID = '7382175862789562070';
export const MiB = 1024 * 1024;

export const SETTINGS: HaSettings = {
  ttl: 30,
  loopWait: 10,
  retryTimeout: 10,
  maximumLagOnFailover: MiB,
  synchronousMode: false,
  synchronousModeStrict: false,
  synchronousNodeCount: 1,
  failsafeMode: false,
  primaryStartTimeout: 300,
  usePgRewind: true,
  paused: false,
};

export const NO_TAGS: Tags = { nofailover: false, noloadbalance: false, nosync: false, clonefrom: false };

export function member(name: string, record: Partial<MemberRecord> = {}): Member {
  return {
    name,
    record: {
      conn_url: `postgres://${name}:5432/postgres`,
      api_url: `http://${name}:8008/patroni`,
      state: 'running',
      role: 'replica',
      timeline: 1,
      xlog_location: 1000,
      replication_state: 'streaming',
      ...record,
    },
    modRevision: 5,
    lease: `lease-${name}`,
  };
}

export function members(...ms: Member[]): Map<string, Member> {
  return new Map(ms.map((m) => [m.name, m]));
}

export function cluster(over: Partial<Cluster> = {}): Cluster {
  return {
    revision: 10,
    initialize: SYSID,
    config: undefined,
    leader: { name: 'node1', modRevision: 7, lease: 'lease-node1' },
    members: members(
      member('node1', { role: 'primary', replication_state: undefined }),
      member('node2'),
      member('node3'),
    ),
    sync: undefined,
    failover: undefined,
    history: [],
    status: { optime: 1000, slots: null, retainSlots: [] },
    failsafe: undefined,
    ...over,
  };
}

export function leaderKey(name: string): Cluster['leader'] {
  return { name, modRevision: 7, lease: `lease-${name}` };
}

export const PG_REPLICA: LocalPostgres = {
  dataDir: 'ready',
  sysid: SYSID,
  running: true,
  accepting: true,
  inRecovery: true,
  timeline: 1,
  walPosition: 1000,
  receivedLsn: 1000,
  replayedLsn: 1000,
  streaming: true,
  following: 'node1',
  syncStandbys: [],
  streamingStandbys: [],
  shouldRun: true,
  downSince: null,
};

export const PG_PRIMARY: LocalPostgres = {
  ...PG_REPLICA,
  inRecovery: false,
  receivedLsn: null,
  replayedLsn: null,
  streaming: false,
  following: null,
};

export const PG_STOPPED: LocalPostgres = {
  ...PG_REPLICA,
  running: false,
  accepting: false,
  inRecovery: null,
  walPosition: null,
  receivedLsn: null,
  replayedLsn: null,
  streaming: false,
  shouldRun: false,
};

export const PG_EMPTY: LocalPostgres = {
  ...PG_STOPPED,
  dataDir: 'empty',
  sysid: null,
  timeline: null,
  following: null,
};

export type Peer = Partial<Extract<PeerStatus, { reachable: true }>>;

export function peer(p: Peer = {}): PeerStatus {
  return {
    reachable: true,
    role: 'replica',
    state: 'running',
    walPosition: 1000,
    timeline: 1,
    nofailover: false,
    ...p,
  };
}

export const UNREACHABLE: PeerStatus = { reachable: false };

export interface FixtureOptions extends Partial<Omit<Observed, 'pg' | 'settings' | 'tags' | 'dcs'>> {
  readonly pg?: Partial<LocalPostgres>;
  readonly settings?: Partial<HaSettings>;
  readonly tags?: Partial<Tags>;
  /** Cluster overrides; `dcsDown` replaces the DCS view with an error. */
  readonly cluster?: Partial<Cluster>;
  readonly dcsDown?: boolean;
  readonly peerMap?: Readonly<Record<string, PeerStatus>>;
}

/** A replica (node2) following leader node1, everything healthy; override what the test is about. */
export function fixture(opts: FixtureOptions = {}): Observed {
  const { pg, settings, tags, cluster: c, dcsDown, peerMap, ...rest } = opts;
  return {
    now: NOW,
    me: 'node2',
    holdsLock: false,
    lastRenew: null,
    releasedLockAt: null,
    peers: new Map(Object.entries(peerMap ?? {})),
    failsafeConfirmed: false,
    shuttingDown: false,
    busy: null,
    rewindFailed: false,
    request: null,
    retry: { after: 0, lastError: null },
    lastRole: 'replica',
    ...rest,
    tags: { ...NO_TAGS, ...tags },
    settings: { ...SETTINGS, ...settings },
    pg: { ...PG_REPLICA, ...pg },
    dcs: dcsDown
      ? { ok: false, error: 'etcd: no endpoint answered', lastSeen: NOW - 5000 }
      : { ok: true, cluster: cluster(c) },
  };
}

/** I (node2) hold the leader key and run as primary; node1 and node3 are my replicas. */
export function leaderFixture(opts: FixtureOptions = {}): Observed {
  const base = cluster();
  const ms = members(
    member('node1'),
    member('node2', { role: 'primary', replication_state: undefined }),
    member('node3'),
  );
  return fixture({
    holdsLock: true,
    lastRenew: { ok: true, at: NOW - 10_000 },
    lastRole: 'primary',
    ...opts,
    pg: { ...PG_PRIMARY, streamingStandbys: ['node1', 'node3'], ...opts.pg },
    cluster: { ...base, leader: leaderKey('node2'), members: ms, ...opts.cluster },
  });
}

/** The leader key is free (node1 died); node3 is reachable and equal to me. */
export function racerFixture(opts: FixtureOptions = {}): Observed {
  return fixture({
    ...opts,
    pg: { following: 'node1', streaming: false, ...opts.pg },
    cluster: { leader: undefined, ...opts.cluster },
    peerMap: opts.peerMap ?? { node1: UNREACHABLE, node3: peer() },
  });
}

/** One action as a short string, so expected action lists read like the decision table. */
export function fmt(a: Action): string {
  switch (a.kind) {
    case 'start':
      return `start:${a.as}:${a.leader ?? '-'}`;
    case 'demote':
      return `demote:${a.mode}`;
    case 'clone':
    case 'rewind':
    case 'reclone':
      return `${a.kind}:${a.from}`;
    case 'follow':
      return `follow:${a.leader}`;
    case 'set_sync':
      return `set_sync:${a.standbys.join(',')}`;
    default:
      return a.kind;
  }
}

export function acts(d: Decision): string[] {
  return d.actions.map(fmt);
}
