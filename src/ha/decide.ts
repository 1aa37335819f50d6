/**
 * The HA decision: `decide(observed)` maps one immutable snapshot to the actions of this cycle and a one-sentence
 * summary. Pure — no I/O, no clock (time is `observed.now`), no randomness — so every branch is a unit test.
 *
 * The situations are checked in Patroni's order (`patroni/ha.py` `_run_cycle`): DCS reachable? long action in
 * progress? shutting down? data directory empty? system ID ours? PostgreSQL running? then by who holds the
 * leader key. transitions.md draws the same table. An operator request and the wait after a failure override the
 * table for one cycle (decide-request.ts).
 */
import type { Cluster } from '../dcs/layout.js';
import { currentRole, decision, hasTag, isPrimary, renewFailed, seconds, watchdogBar } from './decide-common.js';
import { decideFollower } from './decide-follower.js';
import { decideLeader } from './decide-leader.js';
import { decideLeaderless } from './decide-race.js';
import { duringRetryWait, requestStep } from './decide-request.js';
import type { Busy, Decision, Observed } from './view.js';

/**
 * DCS unreachable (Patroni `_handle_dcs_error`). Nobody can know who leads, so nobody takes leadership. A primary
 * must stop accepting writes before its lease could have expired, unless failsafe mode is on and every member
 * confirmed us (then no one else can have been promoted). Replicas simply wait.
 */
function decideWithoutDcs(o: Observed, error: string): Decision {
  const pg = o.pg;
  // Not yet accepting but holding the key: it may be a primary coming up, so treat it as one.
  const maybePrimary = pg.running && (pg.inRecovery === false || (pg.inRecovery === null && o.holdsLock));
  // The error text comes from the store client and may span lines; the summary is one line.
  if (!maybePrimary)
    return decision(`no action: DCS is not accessible (${error.replace(/\s+/g, ' ').trim()})`, [], currentRole(o));
  if (o.settings.failsafeMode && o.failsafeConfirmed && o.holdsLock) {
    return decision(
      'no action: DCS is not accessible; staying primary in failsafe mode, every member confirmed me',
      [],
      'primary',
    );
  }
  if (o.settings.paused)
    return decision('paused: no action, DCS is not accessible and I am running as primary', [], 'primary');
  if (o.busy) {
    return decision(
      `no action: DCS is not accessible; demoting once ${o.busy.what} in progress has finished`,
      [],
      currentRole(o),
    );
  }
  return decision(
    'demoting: DCS is not accessible and I am running as primary',
    [{ kind: 'demote', mode: 'offline' }],
    'demoted',
  );
}

/** A long action runs in the executor (Patroni `handle_long_action_in_progress`): only keep our key alive. */
function decideBusy(o: Observed, busy: Busy, mine: boolean): Decision {
  const what = busy.what;
  const role =
    what === 'bootstrap' || what === 'clone'
      ? 'uninitialized'
      : what === 'demote'
        ? 'demoted'
        : what === 'promote' && mine
          ? 'primary'
          : currentRole(o);
  if (mine) return decision(`no action: ${what} in progress; renewing the leader key`, [{ kind: 'renew_lock' }], role);
  return decision(`no action: ${what} in progress`, [], role);
}

/**
 * The agent is stopping. A leader hands over at once: a graceful demote checkpoints, stops and deletes the key,
 * so a replica wins the next race instead of waiting out the ttl. Paused: Patroni leaves PostgreSQL and the key
 * alone.
 */
function decideShutdown(o: Observed, mine: boolean): Decision {
  if (o.settings.paused)
    return decision(
      'paused: shutting down without stopping PostgreSQL or releasing the leader key',
      [],
      currentRole(o),
    );
  if (!mine) return decision('no action: shutting down', [], currentRole(o));
  if (o.pg.running)
    return decision(
      'demoting: shutting down, handing the leader key over',
      [{ kind: 'demote', mode: 'graceful' }],
      'demoted',
    );
  return decision('releasing the leader key: shutting down', [{ kind: 'release_lock' }], 'replica');
}

/**
 * Where a new replica copies its data from (Patroni `Cluster.get_clone_member`): a running replica tagged
 * `clonefrom` that streams, to spare the leader; else the leader, once its member record (conn_url) is published.
 * Lowest name rather than Patroni's random pick, to stay deterministic.
 */
function cloneSource(o: Observed, c: Cluster): { name: string; kind: 'leader' | 'replica' } | null {
  const tagged = [...c.members.values()]
    .filter((m) => m.name !== o.me && hasTag(m, 'clonefrom') && m.record.conn_url !== '')
    .filter((m) => m.record.state === 'running' && m.record.replication_state === 'streaming')
    .map((m) => m.name)
    .sort();
  if (tagged[0] !== undefined) return { name: tagged[0], kind: 'replica' };
  const leader = c.leader?.name;
  if (leader !== undefined && (c.members.get(leader)?.record.conn_url ?? '') !== '')
    return { name: leader, kind: 'leader' };
  return null;
}

/** Patroni `_run_cycle` "data directory empty" branch and `bootstrap()`. */
function decideEmpty(o: Observed, c: Cluster, mine: boolean): Decision {
  if (mine)
    return decision('releasing the leader key: data directory is empty', [{ kind: 'release_lock' }], 'uninitialized');
  if (o.settings.paused) return decision('paused: no action, data directory is empty', [], 'uninitialized');
  if (c.initialize === undefined && c.leader === undefined) {
    // A nofailover node could never lead the cluster it created, so it waits for someone else to bootstrap.
    if (o.tags.nofailover)
      return decision(
        'no action: waiting for a leader to bootstrap the cluster (I am tagged nofailover)',
        [],
        'uninitialized',
      );
    return decision(
      'bootstrapping: no initialize key, racing to initialize a new cluster',
      [{ kind: 'bootstrap' }],
      'uninitialized',
    );
  }
  const src = cloneSource(o, c);
  if (src === null) return decision('no action: waiting for a leader to clone from', [], 'uninitialized');
  return decision(`cloning from ${src.kind} ${src.name}`, [{ kind: 'clone', from: src.name }], 'uninitialized');
}

/**
 * Our leader key's last renewal failed (and we are not paused): we may no longer be the leader, so stop any
 * primary now (Patroni `demote('immediate-nolock')`); a non-primary gives the key up so the cluster can elect.
 */
function decideLostLock(o: Observed): Decision {
  const why = `the last renewal of the leader key failed at ${new Date(o.lastRenew?.at ?? 0).toISOString()}`;
  if (o.pg.running && o.pg.inRecovery !== true) {
    return decision(`demoting: lost the leader key (${why})`, [{ kind: 'demote', mode: 'immediate' }], 'demoted');
  }
  if (o.pg.running) return decision(`releasing the leader key: ${why}`, [{ kind: 'release_lock' }], 'replica');
  return decision(
    `releasing the leader key: ${why}; starting as a replica`,
    [{ kind: 'release_lock' }, { kind: 'start', as: 'replica', leader: null }],
    'replica',
  );
}

/**
 * We hold the key but `watchdog.mode` is required and the watchdog cannot be armed (Patroni
 * `enforce_primary_role`: "Demoting self because watchdog could not be activated"): nothing would reset this host
 * if the agent hung, so hand the key over — a primary with a graceful demote (checkpoint, stop, release), anything
 * else by releasing it.
 */
function decideWithoutWatchdog(o: Observed, why: string): Decision {
  if (isPrimary(o.pg))
    return decision(`demoting: ${why}; handing the leader key over`, [{ kind: 'demote', mode: 'graceful' }], 'demoted');
  if (o.pg.running) return decision(`releasing the leader key: ${why}`, [{ kind: 'release_lock' }], 'replica');
  return decision(
    `releasing the leader key: ${why}; starting as a replica`,
    [{ kind: 'release_lock' }, { kind: 'start', as: 'replica', leader: null }],
    'replica',
  );
}

/**
 * We hold the key but PostgreSQL is down (Patroni `recover()`): restart in place for up to primary_start_timeout
 * (crash recovery of a primary is usually quicker than a failover and loses nothing), renewing the key meanwhile;
 * after that, or at once with a timeout of 0, give the key up and come back as a replica.
 */
function decideStoppedLeader(o: Observed): Decision {
  const timeoutMs = o.settings.primaryStartTimeout * 1000;
  const downFor = o.pg.downSince === null ? 0 : o.now - o.pg.downSince;
  if (timeoutMs === 0 || downFor >= timeoutMs) {
    return decision(
      `releasing the leader key: PostgreSQL did not come back within primary_start_timeout (${o.settings.primaryStartTimeout}s); starting as a replica`,
      [{ kind: 'release_lock' }, { kind: 'start', as: 'replica', leader: null }],
      'replica',
    );
  }
  if (o.pg.downSince === null) {
    return decision(
      'starting PostgreSQL as primary: I hold the leader key',
      [{ kind: 'renew_lock' }, { kind: 'start', as: 'primary', leader: null }],
      'primary',
    );
  }
  return decision(
    `restarting PostgreSQL in place: I hold the leader key (down for ${seconds(downFor)} of primary_start_timeout ${o.settings.primaryStartTimeout}s)`,
    [{ kind: 'renew_lock' }, { kind: 'restart' }],
    'primary',
  );
}

function decideStopped(o: Observed, c: Cluster, mine: boolean): Decision {
  if (o.settings.paused) {
    // Patroni deletes the key here; we keep it so a paused cluster's leadership does not move (see transitions.md).
    return decision('paused: no action, PostgreSQL is not running', mine ? [{ kind: 'renew_lock' }] : [], 'replica');
  }
  if (mine) return decideStoppedLeader(o);
  const leader = c.leader?.name ?? null;
  if (leader !== null)
    return decision(`starting as a replica following ${leader}`, [{ kind: 'start', as: 'replica', leader }], 'replica');
  return decision(
    'starting as a replica: no leader yet, so I can report my WAL position and race',
    [{ kind: 'start', as: 'replica', leader: null }],
    'replica',
  );
}

/** Running but not answering yet (starting, crash recovery): only keep a key we hold; nothing else is known. */
function decideStarting(o: Observed, mine: boolean): Decision {
  const p = o.pg.streamProblem;
  const why = p ? ` (last error in its log: ${p.kind === 'disk_full' ? 'No space left on device' : p.message})` : '';
  if (mine)
    return decision(
      `no action: waiting for PostgreSQL to accept connections${why}; renewing the leader key`,
      [{ kind: 'renew_lock' }],
      'primary',
    );
  return decision(`no action: waiting for PostgreSQL to accept connections${why}`, [], 'replica');
}

function sysidMismatch(o: Observed, c: Cluster): boolean {
  return Boolean(o.pg.sysid) && Boolean(c.initialize) && o.pg.sysid !== c.initialize;
}

/** The cycle's decision: an operator request or the situation, then the wait after a failure (decide-request.ts). */
export function decide(o: Observed): Decision {
  // During a long action a request stays queued (no `request` outcome) until it has finished.
  const step = o.request !== null && o.busy === null ? requestStep(o, o.request) : null;
  const d =
    step === null
      ? decideSituation(o)
      : 'run' in step
        ? step.run
        : { ...decideSituation(o), request: { outcome: 'refused' as const, reason: step.refused } };
  return duringRetryWait(o, d);
}

/** The situation table (transitions.md), in Patroni's order. */
function decideSituation(o: Observed): Decision {
  if (!o.dcs.ok) return decideWithoutDcs(o, o.dcs.error);
  const c = o.dcs.cluster;
  // Like Patroni's has_lock(), the key's value decides; if it was attached to an older lease of ours (agent
  // restarted within the ttl), the lease step has adopted it (decide-lease.ts) or `lastRenew` says it failed.
  const mine = c.leader?.name === o.me;
  if (o.busy) return decideBusy(o, o.busy, mine);
  if (o.shuttingDown) return decideShutdown(o, mine);
  if (o.pg.dataDir === 'empty') return decideEmpty(o, c, mine);
  if (sysidMismatch(o, c)) {
    return decision(
      `no action: the data directory belongs to another cluster (system ID ${o.pg.sysid ?? ''}, cluster ${c.initialize ?? ''})`,
      [],
      currentRole(o),
    );
  }
  if (mine && renewFailed(o) && !o.settings.paused) return decideLostLock(o);
  const noWatchdog = mine && !o.settings.paused ? watchdogBar(o) : null;
  if (noWatchdog !== null) return decideWithoutWatchdog(o, noWatchdog);
  if (!o.pg.running) return decideStopped(o, c, mine);
  if (!o.pg.accepting || o.pg.inRecovery === null) return decideStarting(o, mine);
  if (mine) return decideLeader(o, c);
  if (c.leader !== undefined) return decideFollower(o, c, c.leader.name);
  return decideLeaderless(o, c);
}
