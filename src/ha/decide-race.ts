/**
 * The leader key is free and PostgreSQL accepts connections (Patroni `process_unhealthy_cluster` →
 * `is_healthiest_node` / `_is_healthiest_node` / `manual_failover_process_no_leader`): race for the key only if
 * no member is a better choice. Ties are fine: the key is created with compare "absent", so etcd picks one.
 */
import type { Cluster, FailoverRequest } from '../dcs/layout.js';
import {
  clusterTimeline,
  decision,
  isPrimary,
  scheduleOf,
  sortedEntries,
  syncActive,
  watchdogBar,
} from './decide-common.js';
import type { Decision, Observed } from './view.js';
import { logicalSlotBar } from './logical-slots.js';

type Verdict = { readonly race: true; readonly reason: string } | { readonly race: false; readonly why: string };

const yes = (reason: string): Verdict => ({ race: true, reason });
const no = (why: string): Verdict => ({ race: false, why });

/** Bars that hold whatever the others look like. */
function personalBar(o: Observed): string | null {
  if (o.tags.nofailover) return 'I am tagged nofailover';
  const watchdog = watchdogBar(o);
  if (watchdog !== null) return watchdog;
  // Patroni `_released_leader_key_timestamp`: who just gave the key away on purpose must let others take it —
  // unless an operator names it as the switchover/failover candidate (switching back to it must not wait a ttl).
  const named = o.dcs.ok && o.dcs.cluster.failover?.member === o.me;
  if (!named && o.releasedLockAt !== null && o.now - o.releasedLockAt < o.settings.ttl * 1000) {
    return `I released the leader key less than ttl (${o.settings.ttl}s) ago`;
  }
  return null;
}

/** A candidate named in `/failover` can take over: it answered, may be promoted, and (sync mode) is synchronous. */
function candidateHealthy(o: Observed, c: Cluster, name: string): boolean {
  const p = o.peers.get(name);
  if (!c.members.has(name) || p === undefined || !p.reachable || p.nofailover || p.watchdogFailed) return false;
  return !syncActive(o, c) || (c.sync?.standbys.includes(name) ?? false);
}

interface RaceScope {
  /** The former leader named in `/failover`: not a rival, so a just-demoted leader does not block the handover. */
  readonly exclude: string | undefined;
  /** Patroni skips the lag limit for a requested failover: the operator asked for it. */
  readonly checkLag: boolean;
}

/**
 * Patroni `manual_failover_process_no_leader`: the named candidate races alone if it is healthy; if it is not,
 * everyone races as usual except that the former leader is no rival and the lag limit is off. Returns the
 * verdict, or a scope for the ordinary race.
 */
function failoverVerdict(o: Observed, c: Cluster, f: FailoverRequest): Verdict | RaceScope {
  const scope: RaceScope = { exclude: f.leader, checkLag: false };
  if (f.member === undefined) return scope;
  if (f.member === o.me) return yes(`a switchover to ${o.me} was requested`);
  if (syncActive(o, c) && !inSync(o, c))
    return no(`a switchover to ${f.member} was requested and I am not synchronous`);
  if (candidateHealthy(o, c, f.member))
    return no(`waiting for switchover candidate ${f.member} to take the leader key`);
  return scope;
}

function inSync(o: Observed, c: Cluster): boolean {
  return c.sync !== undefined && (c.sync.leader === o.me || c.sync.standbys.includes(o.me));
}

/**
 * A running primary without the key (it lost the key, e.g. the lease expired while it was stalled) may take it
 * back only if no newer timeline exists — otherwise someone was promoted meanwhile and it would discard that
 * promotion (Patroni's comment in `is_healthiest_node`).
 */
function primaryVerdict(o: Observed, c: Cluster): Verdict {
  const mine = o.pg.timeline ?? 0;
  const cluster = clusterTimeline(c, o.me);
  if (cluster !== undefined && mine < cluster) return no(`my timeline ${mine} is behind the cluster's ${cluster}`);
  return yes('leader key was free and I am the running primary on the latest timeline');
}

/** Patroni `_is_healthiest_node`: lag limit, then peers — any primary alive, or an eligible peer ahead of us. */
function healthiestVerdict(o: Observed, c: Cluster, scope: RaceScope): Verdict {
  const sync = syncActive(o, c);
  if (sync && !inSync(o, c)) return no('synchronous mode is on and I am not listed in /sync');
  const mine = o.pg.walPosition;
  if (mine === null) return no('my WAL position is unknown');
  // --- permanent logical slots (issue 14): not behind what the mesh peers confirmed, and holding the copies. ---
  const slotBar = logicalSlotBar(o.logicalSlots, c.status?.slots, o.pg.replayedLsn);
  if (slotBar !== null) return no(slotBar);
  // --- end permanent logical slots ---
  const lag = c.status === undefined ? 0 : c.status.optime - mine;
  if (scope.checkLag && lag > o.settings.maximumLagOnFailover) {
    return no(
      `I lag ${lag} bytes behind the last known leader position (maximum_lag_on_failover ${o.settings.maximumLagOnFailover})`,
    );
  }
  const peers = sortedEntries(o.peers).filter(([name]) => name !== o.me);
  for (const [name, p] of peers) {
    if (p.reachable && p.role === 'primary') return no(`${name} is still running as primary`);
  }
  for (const [name, p] of peers) {
    if (!p.reachable || p.nofailover || p.watchdogFailed || name === scope.exclude || p.walPosition === null) continue;
    // In sync mode only the members in /sync are rivals (Patroni filters with `sync.matches(name, True)`), and
    // the former leader among them is ignored when ahead — its extra WAL was never confirmed to a client — so
    // it can never block: only the synchronous standbys count.
    if (sync && !(c.sync?.standbys.includes(name) ?? false)) continue;
    if (p.walPosition > mine) return no(`${name} has a higher WAL position (${p.walPosition} > ${mine})`);
  }
  return yes('leader key was free and I had the highest WAL position');
}

function raceVerdict(o: Observed, c: Cluster): Verdict {
  const bar = personalBar(o);
  if (bar !== null) return no(bar);
  // A request scheduled for later is the leader's business; a failover now is ordinary.
  const f = c.failover;
  const ordinary: RaceScope = { exclude: undefined, checkLag: true };
  const scoped =
    f !== undefined && scheduleOf(f, o.now, o.settings.loopWait) !== 'future' ? failoverVerdict(o, c, f) : ordinary;
  if ('race' in scoped) return scoped;
  if (isPrimary(o.pg)) return primaryVerdict(o, c);
  return healthiestVerdict(o, c, scoped);
}

export function decideLeaderless(o: Observed, c: Cluster): Decision {
  const primary = isPrimary(o.pg);
  if (o.settings.paused) {
    return decision(
      'paused: no action, the leader key is free and nobody takes leadership automatically',
      [],
      primary ? 'primary' : 'replica',
    );
  }
  const v = raceVerdict(o, c);
  if (v.race)
    return decision(`taking leadership: ${v.reason}`, [{ kind: 'take_leadership', reason: v.reason }], 'primary');
  // A primary that may not race must stop taking writes: whoever wins will not have them (Patroni `follow()`).
  if (primary)
    return decision(
      `demoting: the leader key is free but ${v.why}`,
      [{ kind: 'demote', mode: 'immediate' }],
      'demoted',
    );
  return decision(`no action: not taking leadership: ${v.why}`, [], 'replica');
}
