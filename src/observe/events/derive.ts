/**
 * Events from one HA cycle: a pure function of the previous cycle's tracked state, this cycle's state and its
 * decision. Only changes make events — a cycle like the last one makes none — so an agent looping every 10 s for
 * a week records a handful of lines, not sixty thousand.
 *
 * Who records what (docs/events.md): an agent records its own transitions (lock, background operations, crash,
 * stop, pending restart, DCS contact, backups) under its own name; changes of the cluster's keys (leader key
 * gone, `/failover` written, config changed) are recorded by every agent that sees them, marked
 * `details.scope = "cluster"`, and merged into one by `pgkeel ctl events` (merge.ts).
 */
import type { Busy } from '../../ha/view.js';
import type { EventDraft, EventKind } from './event.js';
import type { DecisionFacts, EventState } from './state.js';

/** What derivation carries from cycle to cycle besides the last state. */
export interface Tracked extends EventState {
  /** The lock as derivation counts it: held, or just won by this cycle's take_leadership. */
  readonly leads: boolean;
  /** The last member other than me seen holding the leader key. */
  readonly lastLeader: string | null;
  /** Why the running promote started: a switchover, a requested failover, or an automatic one. */
  readonly promoteCause: { readonly kind: 'switchover' | 'failover'; readonly from: string | null } | null;
  readonly busySince: number | null;
  /** The decision that started the running (or last) background operation. */
  readonly busyReason: string | null;
  readonly dcsLostAt: number | null;
  /** The sentence of the cycle in which this agent removed a dead leader's key (what failed, who noticed); the next
   *  cycle, which sees the key gone, tells it. */
  readonly removal: string | null;
}

/** Operations whose successful end is an event too (how long they took matters); failures always are. */
const DONE_MATTERS = new Set<Busy['what']>(['promote', 'clone', 'bootstrap', 'rewind']);

function busyKind(busy: Busy['what'], actions: readonly string[]): EventKind {
  if (busy === 'clone' && actions.includes('reclone')) return 'reclone';
  return busy;
}

function seconds(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(1)} s`;
}

function failoverKey(f: EventState['failover']): string {
  return f ? JSON.stringify([f.leader ?? '', f.member ?? '', f.scheduledAt ?? '']) : '';
}

/** Dotted names of the keys whose values differ (nested objects such as postgresql.parameters are walked). */
export function changedKeys(
  a: Readonly<Record<string, unknown>>,
  b: Readonly<Record<string, unknown>>,
  at = '',
): string[] {
  const out: string[] = [];
  for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    const x = Object.hasOwn(a, k) ? a[k] : undefined;
    const y = Object.hasOwn(b, k) ? b[k] : undefined;
    const isObj = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);
    if (isObj(x) && isObj(y) && at.split('.').length < 4)
      out.push(...changedKeys(x as Record<string, unknown>, y as Record<string, unknown>, `${at}${k}.`));
    else if (JSON.stringify(x) !== JSON.stringify(y)) out.push(`${at}${k}`);
  }
  return out;
}

function backupEvent(b: NonNullable<EventState['lastBackup']>): Pick<EventDraft, 'kind' | 'reason' | 'details'> {
  const details = { type: b.type, ...(b.id ? { id: b.id } : {}), ...(b.bytes !== undefined ? { bytes: b.bytes } : {}) };
  if (!b.ok)
    return { kind: 'backup_failed', reason: `${b.type} backup failed: ${b.error ?? 'unknown error'}`, details };
  const took = b.durationS !== undefined ? ` in ${b.durationS.toFixed(1)} s` : '';
  return { kind: 'backup_done', reason: `${b.type} backup ${b.id ?? ''} done${took}`.replace('  ', ' '), details };
}

export interface Derived {
  readonly events: readonly EventDraft[];
  readonly tracked: Tracked;
}

/**
 * `prev` null: the agent's first cycle (or first after a restart). Then only what this agent does now is recorded,
 * never a "change" from nothing (the config, the leader key and backups have no baseline yet).
 */
export function derive(prev: Tracked | null, next: EventState, decision: DecisionFacts | null): Derived {
  const events: EventDraft[] = [];
  const summary = decision?.summary ?? '';
  const actions = decision?.actions ?? [];
  const base = { at: next.at, timeline: next.timeline };
  const mine = (kind: EventKind, reason: string, extra: Partial<EventDraft> = {}) =>
    events.push({ ...base, member: next.me, kind, reason, ...extra, details: { observer: next.me, ...extra.details } });
  const cluster = (kind: EventKind, member: string, reason: string, extra: Partial<EventDraft> = {}) =>
    events.push({
      ...base,
      member,
      kind,
      reason,
      ...extra,
      details: { observer: next.me, scope: 'cluster', ...extra.details },
    });
  // While the DCS is down the tracked state keeps the last keys read, so the first good read compares with them.
  const compare = prev !== null && next.dcsOk;

  // The DCS: lost and regained.
  let dcsLostAt = prev?.dcsLostAt ?? null;
  if (prev?.dcsOk && !next.dcsOk) {
    dcsLostAt = next.at;
    mine('dcs_lost', `the DCS does not answer: ${next.dcsError ?? 'no answer'}; ${summary}`);
  } else if (prev && !prev.dcsOk && next.dcsOk) {
    const since = dcsLostAt ?? prev.at;
    mine('dcs_regained', `the DCS answers again after ${seconds(next.at - since)}`);
    dcsLostAt = null;
  }

  // Requests in `/failover`: each distinct request once.
  if (compare && next.failover && failoverKey(next.failover) !== failoverKey(prev.failover)) {
    const f = next.failover;
    const kind = f.leader ? 'switchover_requested' : 'failover_requested';
    const what = f.leader ? `switchover from ${f.leader}` : 'failover';
    const to = f.member ? ` to ${f.member}` : ' to any healthy replica';
    const when = f.scheduledAt ? ` scheduled at ${f.scheduledAt}` : '';
    cluster(kind, f.leader ?? next.leader ?? next.me, `${what}${to} requested${when}`, {
      ...(f.leader ? { from: f.leader } : {}),
      ...(f.member ? { to: f.member } : {}),
    });
  }

  // The DCS config key.
  if (compare && prev.config && next.config) {
    const keys = changedKeys(prev.config, next.config);
    if (keys.length)
      cluster('config_changed', next.leader ?? next.me, `the DCS config changed: ${keys.join(', ')}`, {
        details: { keys },
      });
  }

  // Another member's leader key went away (expired, released or removed) or moved.
  if (compare && prev.leader && prev.leader !== next.leader && prev.leader !== next.me) {
    const reason = next.leader
      ? `the leader key moved from ${prev.leader} to ${next.leader}`
      : prev.removal
        ? `${prev.removal}; ${summary}`
        : `the leader key of ${prev.leader} is gone (released, removed or its lease expired); ${summary}`;
    cluster('leader_lost', prev.leader, reason, { from: prev.leader, ...(next.leader ? { to: next.leader } : {}) });
  }

  // My lock.
  const leads = next.holdsLock || (next.busy === 'promote' && actions.includes('take_leadership'));
  const led = prev?.leads ?? false;
  // The cycle that notices often says something else ("no action: I am the leader"): name the operation instead.
  const opEnded = prev?.busy && prev.busy !== next.busy ? prev.busy : null;
  if (leads && !led) {
    const won = actions.includes('take_leadership') || !opEnded;
    mine('leader_acquired', won ? summary : `took the leader key as the ${opEnded} finished (${prev?.busyReason})`);
  }
  if (!leads && led) {
    const demoting = prev?.busy === 'demote' ? prev.busyReason : null;
    mine('leader_lost', demoting ? `released the leader key after the demote (${demoting})` : summary, {
      from: next.me,
      ...(next.leader ? { to: next.leader } : {}),
    });
  }

  // Background operations: the start of each, and how it ended.
  let busySince = prev?.busySince ?? null;
  let busyReason = prev?.busyReason ?? null;
  let promoteCause = prev?.promoteCause ?? null;
  const lastLeader = next.leader && next.leader !== next.me ? next.leader : (prev?.lastLeader ?? null);
  const was = prev?.busy ?? null;
  if (was && was !== next.busy) {
    const took = seconds(next.at - (busySince ?? next.at));
    if (next.lastError) mine(was, `${was} failed after ${took}: ${next.lastError}`, { details: { outcome: 'failed' } });
    // A bootstrap that ends without the leader key lost the initialize race: another member initializes.
    else if (was === 'bootstrap' && !leads)
      mine(was, `lost the initialize race${next.leader ? `: ${next.leader} initialized the cluster` : ''}`, {
        details: { outcome: 'lost' },
      });
    else if (DONE_MATTERS.has(was))
      mine(was, `${was} done in ${took}`, {
        details: { outcome: 'done', seconds: (next.at - (busySince ?? next.at)) / 1000 },
      });
    if (was === 'promote' && !next.lastError && promoteCause?.from) {
      const { kind, from } = promoteCause;
      cluster(
        kind === 'switchover' ? 'switchover_done' : 'failover_done',
        next.me,
        `${kind} from ${from} to ${next.me} done: ${next.me} accepts writes on timeline ${next.timeline ?? '?'}`,
        { from, to: next.me },
      );
    }
    if (was === 'promote') promoteCause = null;
    busySince = null;
  }
  if (next.busy && next.busy !== was) {
    busySince = next.at;
    busyReason = summary;
    mine(busyKind(next.busy, actions), summary, { details: { outcome: 'started' } });
    if (next.busy === 'promote') {
      const f = next.failover ?? prev?.failover ?? null;
      promoteCause = f?.leader
        ? { kind: 'switchover', from: f.leader }
        : { kind: 'failover', from: prev?.lastLeader ?? null };
    }
  }

  // PostgreSQL itself.
  if (next.memberState === 'crashed' && prev?.memberState !== 'crashed')
    mine('crash', `PostgreSQL stopped unexpectedly; ${summary}`);
  if (next.shuttingDown && !prev?.shuttingDown) mine('stop', `the agent is stopping; ${summary}`);
  // A stop nobody asked the agent for (an operation's own stops — demote, restart — are not told twice).
  else if (prev?.memberState === 'running' && next.memberState === 'stopped' && !prev.busy && !next.busy)
    mine('stop', `PostgreSQL stopped; ${summary}`);
  if (prev && next.pendingRestart && !prev.pendingRestart)
    mine('pending_restart', 'PostgreSQL has changed settings that take effect only after a restart');

  // Backups (the agent's last scheduled backup changed).
  const b = next.lastBackup;
  if (prev && b && b.at !== prev.lastBackup?.at) mine(backupEvent(b).kind, backupEvent(b).reason, backupEvent(b));

  return {
    events,
    tracked: {
      ...next,
      ...(next.dcsOk || !prev ? {} : { leader: prev.leader, failover: prev.failover, config: prev.config }),
      leads,
      lastLeader,
      promoteCause,
      busySince,
      busyReason,
      dcsLostAt,
      removal: actions.includes('remove_dead_leader') ? summary : null,
    },
  };
}
