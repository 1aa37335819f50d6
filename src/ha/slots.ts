/**
 * The leader's replication slot policy, pure: one physical slot per member; the slots pgkeel manages are listed in
 * `/status` `retain_slots` (as Patroni 4 does) so a new leader knows them; a managed slot whose member has been gone
 * for `ttlMs` is dropped, so a removed node does not make the leader keep WAL forever. Slots pgkeel did not create
 * (absent from retain_slots and not named after a member) are never touched.
 */
import { slotNameFor } from '../postgres/conf.js';

export interface SlotInput {
  readonly me: string;
  readonly members: Iterable<string>;
  /** Physical slots on the leader now. */
  readonly existing: ReadonlySet<string>;
  /** `/status` retain_slots as last published. */
  readonly retainSlots: readonly string[];
  /** Managed slots whose member is gone, and since when (the caller keeps this map between cycles). */
  readonly absentSince: ReadonlyMap<string, number>;
  readonly now: number;
  readonly ttlMs: number;
  /** Slots PostgreSQL invalidated (wal_status 'lost': their member fell more than max_slot_wal_keep_size behind). */
  readonly lost?: ReadonlySet<string>;
}

export interface SlotPlan {
  readonly create: readonly string[];
  readonly drop: readonly string[];
  /** A member's slot that was invalidated: drop and create it again, so the member streams once it is re-cloned
   *  (an invalidated slot can never be used again). */
  readonly recreate: readonly string[];
  /** The next absentSince map. */
  readonly absentSince: ReadonlyMap<string, number>;
  /** What to publish as retain_slots. */
  readonly retain: readonly string[];
}

export function planSlots(i: SlotInput): SlotPlan {
  const mine = slotNameFor(i.me);
  const wanted = new Set([...i.members].filter((m) => m !== i.me).map(slotNameFor));
  const create = [...wanted].filter((s) => !i.existing.has(s)).sort();
  const absent = new Map<string, number>();
  const drop: string[] = [];
  for (const slot of new Set([...i.retainSlots, ...i.absentSince.keys()])) {
    if (wanted.has(slot) || slot === mine || !i.existing.has(slot)) continue;
    const since = i.absentSince.get(slot) ?? i.now;
    if (i.now - since >= i.ttlMs) drop.push(slot);
    else absent.set(slot, since);
  }
  const retain = [...new Set([...wanted, ...absent.keys()])].sort();
  const recreate = [...wanted].filter((s) => i.existing.has(s) && i.lost?.has(s) === true).sort();
  return { create, drop: drop.sort(), recreate, absentSince: absent, retain };
}
