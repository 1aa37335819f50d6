/**
 * Adding and removing a site, pure: which links a join creates and in which phase, which a removal drops, and the
 * record before and after. join.ts / leave.ts act on it; docs/multi-master.md "Adding and removing a site" explains
 * why the phases are in this order (forward_origins = '{}' means a new site must get every existing site's changes
 * from that site itself, so the links from the non-seed sites must start before the seed's copy is taken).
 */
import { MeshError } from './errors.js';
import { checkSites, nodeNameFor, subscriptionName, type Link, type MeshRecord } from './plan.js';

/** A replication set that never exists on a provider: a subscription asking for it is created (its slot too) but its
 *  apply worker cannot start streaming, so nothing is applied and the slot does not move until it is removed. */
export const HOLD_SET = 'pgkeel_mesh_join_hold';

export interface JoinPlan {
  /** The existing site whose rows are copied (the record's first site). */
  readonly seed: string;
  /** Phase 1, before the copy: every other existing site → the new site, created held (HOLD_SET). */
  readonly held: readonly Link[];
  /** Phase 2: the seed → the new site, copying the seed's rows. */
  readonly seedLink: Link;
  /** Phase 4, once the new site is caught up: the new site → every existing site, no copy. */
  readonly outgoing: readonly Link[];
}

/** The links a site `joining` needs to join the mesh of `existing` sites (in the record's order; the first seeds). */
export function joinPlan(existing: readonly string[], joining: string): JoinPlan {
  if (existing.length < 2)
    throw new MeshError('MESH_USAGE', `a site joins a mesh of two or more sites, got ${existing.join(', ')}`);
  if (existing.includes(joining))
    throw new MeshError('MESH_USAGE', `site ${joining} is already a site of the mesh`, { site: joining });
  checkSites([...existing, joining]);
  const [seed, ...rest] = existing as [string, ...string[]];
  const link = (from: string, to: string, syncData: boolean): Link => ({
    from,
    to,
    subscription: subscriptionName(from, to),
    syncData,
  });
  return {
    seed,
    held: rest.map((from) => link(from, joining, false)),
    seedLink: link(seed, joining, true),
    outgoing: existing.map((to) => link(joining, to, false)),
  };
}

/** Every link to or from `removed` among `sites` (whether or not a record lists them: a failed join leaves some). */
export function leaveLinks(sites: readonly string[], removed: string): Link[] {
  const out: Link[] = [];
  for (const s of sites)
    if (s !== removed)
      out.push(
        { from: removed, to: s, subscription: subscriptionName(removed, s), syncData: false },
        { from: s, to: removed, subscription: subscriptionName(s, removed), syncData: false },
      );
  return out;
}

/** The record with `site` added (its links after the existing ones; slots as the engine reported them). */
export function recordWith(
  r: MeshRecord,
  site: { scope: string; dsn: string },
  links: readonly Link[],
  slotOf: (l: Link) => string,
): MeshRecord {
  return {
    ...r,
    sites: [...r.sites, { scope: site.scope, node: nodeNameFor(site.scope), dsn: site.dsn }],
    links: [
      ...r.links,
      ...links.map((l) => {
        const slot = slotOf(l);
        return { from: l.from, to: l.to, subscription: l.subscription, slot, origin: slot };
      }),
    ],
  };
}

/** The record without `scope` and its links. */
export function recordWithout(r: MeshRecord, scope: string): MeshRecord {
  return {
    ...r,
    sites: r.sites.filter((s) => s.scope !== scope),
    links: r.links.filter((l) => l.from !== scope && l.to !== scope),
  };
}
