/**
 * Another member holds the leader key and PostgreSQL accepts connections (Patroni `process_healthy_cluster`,
 * else-branch → `follow()`): a primary steps down, a diverged replica is rewound or re-cloned, any other replica
 * points at the leader.
 */
import type { Cluster } from '../dcs/layout.js';
import { clusterTimeline, decision, isPrimary, memberTimeline } from './decide-common.js';
import type { Decision, Observed } from './view.js';

/**
 * Why our history cannot continue from the leader's, or null. Two cases, as Patroni's `rewind.py`
 * `_check_timeline_and_lsn`: our timeline is ahead of the leader's (we were promoted on a branch it does not have),
 * or we are on an older timeline but past the point where the cluster switched away from it (`/history` row
 * [timeline, switch LSN]: we wrote WAL the new timeline does not contain). A streaming replica is by definition
 * not diverged, and its received LSN may already be on the new timeline, so only a non-streaming one is checked.
 */
function divergence(o: Observed, c: Cluster, leader: string): string | null {
  const mine = o.pg.timeline;
  if (mine === null || o.pg.streaming) return null;
  const theirs = memberTimeline(c, leader) ?? clusterTimeline(c, o.me);
  if (theirs !== undefined && mine > theirs) return `my timeline ${mine} is ahead of ${leader}'s ${theirs}`;
  const row = c.history.find(([tl]) => tl === mine);
  const pos = o.pg.walPosition;
  if (row !== undefined && pos !== null && pos > row[1]) {
    return `my WAL position ${pos} is past the end of timeline ${mine} (${row[1]})`;
  }
  return null;
}

/** Patroni needs `use_pg_rewind` (and a rewindable data directory); after a failed rewind it re-clones instead. */
function repair(o: Observed, leader: string, why: string): Decision {
  if (o.settings.usePgRewind && !o.rewindFailed) {
    return decision(`rewinding from ${leader}: ${why}`, [{ kind: 'rewind', from: leader }], 'replica');
  }
  const because = o.settings.usePgRewind ? 'the last rewind failed' : 'use_pg_rewind is off';
  return decision(`recloning from ${leader}: ${why} and ${because}`, [{ kind: 'reclone', from: leader }], 'replica');
}

/**
 * A replica pointed at the leader that does not stream. When the leader no longer has the WAL it needs (its slot
 * was invalidated at max_slot_wal_keep_size, or wal_keep_size ran out), waiting cannot help: re-clone (the data
 * directory is moved aside first). Otherwise say why, from PostgreSQL's own log, and keep waiting.
 */
function notStreaming(o: Observed, leader: string): Decision {
  const p = o.pg.streamProblem;
  if (!p) return decision(`no action: following ${leader}, not streaming yet`, [], 'replica');
  if (p.kind === 'wal_removed') {
    return decision(
      `recloning from ${leader}: it no longer has the WAL I need (${p.message})`,
      [{ kind: 'reclone', from: leader }],
      'replica',
    );
  }
  // The summary is logged when it changes: keep it free of what varies between attempts (pids in file names).
  const why =
    p.kind === 'disk_full'
      ? 'my disk is full (No space left on device)'
      : `${p.kind === 'connection' ? 'cannot connect' : 'failing'} (${p.message})`;
  return decision(`no action: following ${leader}, not streaming: ${why}`, [], 'replica');
}

function currentRoleOfReplica(o: Observed): Decision['role'] {
  return o.pg.inRecovery === false ? 'primary' : 'replica';
}

function decidePausedFollower(o: Observed, leader: string): Decision {
  if (isPrimary(o.pg))
    return decision(`paused: no action, ${leader} holds the leader key but I am running as primary`, [], 'primary');
  if (o.pg.following === leader) return decision(`paused: no action, following ${leader}`, [], 'replica');
  return decision(`paused: no action, ${leader} holds the leader key`, [], 'replica');
}

export function decideFollower(o: Observed, c: Cluster, leader: string): Decision {
  if (o.settings.paused) return decidePausedFollower(o, leader);
  // A primary without the key is a split brain in the making: stop it at once, without waiting for a checkpoint
  // (Patroni: demote('immediate-nolock')). The next cycles restart it as a replica and check divergence.
  if (isPrimary(o.pg)) {
    return decision(
      `demoting: ${leader} holds the leader key but I am running as primary`,
      [{ kind: 'demote', mode: 'immediate' }],
      'demoted',
    );
  }
  if (o.leaderDown === true && c.leader) {
    return decision(
      `removing the leader key of ${leader}: its REST API and PostgreSQL both refuse connections`,
      [{ kind: 'remove_dead_leader', leader, modRevision: c.leader.modRevision }],
      currentRoleOfReplica(o),
    );
  }
  const why = divergence(o, c, leader);
  if (why !== null) return repair(o, leader, why);
  if (o.pg.following !== leader) {
    const from = o.pg.following === null ? 'no upstream' : `was following ${o.pg.following}`;
    return decision(`following ${leader}: changing upstream (${from})`, [{ kind: 'follow', leader }], 'replica');
  }
  if (!o.pg.streaming) return notStreaming(o, leader);
  return decision(`no action: following ${leader}`, [], 'replica');
}
