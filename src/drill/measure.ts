/**
 * What `pgkeel drill` measures, as pure functions of what it observed (docs/drill.md):
 *
 * - RTO: the longest gap between two consecutive acknowledged probe writes that ends after the fault started —
 *   how long clients could not write. No acknowledged write after the fault: no RTO (the round did not recover).
 * - RPO: the acknowledged writes the (new) leader does not have after the round — their count, and the window of
 *   writes lost: from the last acknowledgement the leader kept before the earliest lost one (the point the data
 *   went back to) until the fault, or until the last lost acknowledgement when that came later (a write the old
 *   leader acknowledged while the fault was being injected).
 * - healed: one leader whose PostgreSQL is writable, every other member of the drill running and streaming from it.
 */

/** One acknowledged probe write: its id and when the acknowledgement arrived (epoch ms). */
export interface Ack {
  readonly id: number;
  readonly at: number;
}

export interface RoundMeasure {
  /** ms; null when no write was acknowledged after the fault. */
  readonly rtoMs: number | null;
  readonly acked: number;
  readonly lost: number;
  /** ms of acknowledged writes lost (see above); 0 when none were. */
  readonly rpoMs: number;
  readonly lostIds: readonly number[];
}

/** RTO from the acknowledgement timeline (in order of `at`) and the fault's start. */
export function rtoMs(acks: readonly Ack[], faultAt: number): number | null {
  let worst: number | null = null;
  for (let i = 1; i < acks.length; i++) {
    const prev = acks[i - 1] as Ack;
    const cur = acks[i] as Ack;
    if (cur.at <= faultAt) continue;
    const gap = cur.at - prev.at;
    if (worst === null || gap > worst) worst = gap;
  }
  // The first ack after the fault may be the first ack of all (nothing acked before): measure from the fault.
  const first = acks[0];
  if (first && first.at > faultAt && (worst === null || first.at - faultAt > worst)) worst = first.at - faultAt;
  return worst;
}

/** Counts what a round lost: the acked ids missing from `present` (ids read back from the leader). */
export function measureRound(acks: readonly Ack[], faultAt: number, present: ReadonlySet<number>): RoundMeasure {
  const lost = acks.filter((a) => !present.has(a.id));
  let rpo = 0;
  const firstLost = lost[0];
  if (firstLost) {
    const kept = acks.filter((a) => a.at < firstLost.at && present.has(a.id)).at(-1);
    const last = Math.max(...lost.map((a) => a.at));
    rpo = Math.max(faultAt, last) - (kept ?? firstLost).at;
  }
  return {
    rtoMs: rtoMs(acks, faultAt),
    acked: acks.length,
    lost: lost.length,
    rpoMs: rpo,
    lostIds: lost.map((a) => a.id),
  };
}

/** What the drill reads of one member's GET /patroni (null: it did not answer). */
export interface MemberHealth {
  readonly state: string;
  readonly role: string;
  /** A replica's `replication_state` ('streaming', 'in archive recovery'). */
  readonly replicationState: string | null;
  /** A primary's standbys that stream from it (application_name = member name). */
  readonly streaming: readonly string[];
}

/** GET /patroni's JSON → MemberHealth; anything unreadable → null. */
export function memberHealth(text: string): MemberHealth | null {
  let b: Record<string, unknown>;
  try {
    b = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (typeof b !== 'object' || b === null) return null;
  const rep = Array.isArray(b['replication']) ? (b['replication'] as Array<Record<string, unknown>>) : [];
  return {
    state: String(b['state'] ?? 'unknown'),
    role: b['role'] === 'master' ? 'primary' : String(b['role'] ?? 'unknown'),
    replicationState: typeof b['replication_state'] === 'string' ? b['replication_state'] : null,
    streaming: rep.filter((r) => r['state'] === 'streaming').map((r) => String(r['application_name'] ?? '')),
  };
}

export interface HealVerdict {
  readonly healed: boolean;
  /** Why not, in plain words ('' when healed). */
  readonly why: string;
}

/**
 * Healed: the DCS names a leader, which answers as a running primary (so its PostgreSQL takes writes), and every
 * other member of `members` (the old leader included) answers as a running replica streaming from that leader.
 */
export function healVerdict(
  members: readonly string[],
  leader: string | undefined,
  health: ReadonlyMap<string, MemberHealth | null>,
): HealVerdict {
  const no = (why: string): HealVerdict => ({ healed: false, why });
  if (!leader) return no('no member holds the leader key');
  const l = health.get(leader);
  if (!l) return no(`the leader ${leader} does not answer on its REST API`);
  if (l.role !== 'primary' || l.state !== 'running')
    return no(`the leader ${leader} is not a running primary (role ${l.role}, state ${l.state})`);
  for (const m of members) {
    if (m === leader) continue;
    const h = health.get(m);
    if (!h) return no(`member ${m} does not answer on its REST API`);
    if (h.role !== 'replica' || h.state !== 'running')
      return no(`member ${m} is not a running replica (role ${h.role}, state ${h.state})`);
    if (h.replicationState !== 'streaming' || !l.streaming.includes(m))
      return no(`member ${m} is not streaming from ${leader}`);
  }
  return { healed: true, why: '' };
}

export interface RoundResult extends RoundMeasure {
  readonly round: number;
  readonly scenario: string;
  readonly oldLeader: string;
  readonly newLeader: string | null;
  readonly healed: boolean;
  /** ms from the fault's start until healed (null: not healed within the timeout). */
  readonly healMs: number | null;
  /** Why the round did not heal, or what failed ('' otherwise). */
  readonly note: string;
}

export interface Summary {
  readonly rounds: number;
  readonly healed: number;
  readonly medianRtoMs: number | null;
  readonly maxRtoMs: number | null;
  readonly lost: number;
  readonly maxRpoMs: number;
}

export function median(xs: readonly number[]): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : Math.round(((s[mid - 1] as number) + (s[mid] as number)) / 2);
}

export function summarize(rounds: readonly RoundResult[]): Summary {
  const rtos = rounds.map((r) => r.rtoMs).filter((x): x is number => x !== null);
  return {
    rounds: rounds.length,
    healed: rounds.filter((r) => r.healed).length,
    medianRtoMs: median(rtos),
    maxRtoMs: rtos.length ? Math.max(...rtos) : null,
    lost: rounds.reduce((n, r) => n + r.lost, 0),
    maxRpoMs: rounds.reduce((n, r) => Math.max(n, r.rpoMs), 0),
  };
}

/** 0 when every round healed (and, under synchronous_mode, lost no acknowledged write); else 1. */
export function exitCode(rounds: readonly RoundResult[], synchronous: boolean): 0 | 1 {
  if (!rounds.length || rounds.some((r) => !r.healed || r.rtoMs === null)) return 1;
  if (synchronous && rounds.some((r) => r.lost > 0)) return 1;
  return 0;
}
