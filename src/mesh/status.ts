/**
 * `pgkeel mesh status` and the `mesh` object of `pgkeel status --json`: each site's leader and members, and per
 * link (provider → subscriber) the lag in bytes (the provider's `pg_current_wal_lsn() − confirmed_flush_lsn` of the
 * link's slot), the subscription's state on the subscriber, and the WAL the slot keeps on the provider.
 * A site that cannot be reached shows its links with null numbers and state "unknown", never an exception.
 */
import { formatHostPort } from '../lib/net.js';
import type { MeshEngine } from './engine.js';
import type { MeshRecord } from './plan.js';
import type { Site } from './site.js';

export interface MeshStatusSite {
  readonly scope: string;
  /** "host:port" of the leader; null while the site has none (or its DCS cannot be read). */
  readonly leader: string | null;
  /** "host:port" of every member. */
  readonly members: readonly string[];
}

export interface MeshStatusLink {
  readonly from: string;
  readonly to: string;
  readonly lag_bytes: number | null;
  readonly state: string;
}

/** The stable shape `pgkeel status --json` prints under `mesh`. */
export interface MeshStatus {
  readonly sites: readonly MeshStatusSite[];
  readonly links: readonly MeshStatusLink[];
}

/** `mesh status --json`: the same, each link with its slot and the WAL it retains. */
export interface MeshStatusDetail {
  readonly sites: readonly MeshStatusSite[];
  readonly links: ReadonlyArray<MeshStatusLink & { readonly slot: string; readonly retained_bytes: number | null }>;
}

const hp = (h: { host: string; port: number }) => formatHostPort(h.host, h.port);

export async function meshStatus(
  record: MeshRecord,
  sites: readonly Site[],
  engine: MeshEngine,
): Promise<MeshStatusDetail> {
  const byScope = new Map(sites.map((s) => [s.scope, s]));
  const outSites: MeshStatusSite[] = [];
  for (const s of sites) {
    const t = await s.topology().catch(() => null);
    const leader = t?.members.find((m) => m.name === t.leader);
    outSites.push({ scope: s.scope, leader: leader ? hp(leader) : null, members: (t?.members ?? []).map(hp) });
  }
  const states = new Map<string, Map<string, string>>();
  for (const s of sites) {
    const subs = await s
      .sql()
      .then((db) => engine.subscriptions(db))
      .catch(() => null);
    if (subs) states.set(s.scope, new Map(subs.map((x) => [x.name, x.status])));
  }
  const links = [];
  for (const l of record.links) {
    const provider = byScope.get(l.from);
    const slot = provider
      ? await provider
          .sql()
          .then((db) =>
            db.query<{ lag: string | null; retained: string | null }>(
              `SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::text AS lag,
                      (pg_current_wal_lsn() - restart_lsn)::text AS retained
                 FROM pg_replication_slots WHERE slot_name = $1`,
              [l.slot],
            ),
          )
          .catch(() => [])
      : [];
    const num = (v: string | null | undefined) => (v === null || v === undefined ? null : Math.max(0, Number(v)));
    links.push({
      from: l.from,
      to: l.to,
      lag_bytes: num(slot[0]?.lag),
      state: states.get(l.to)?.get(l.subscription) ?? 'unknown',
      slot: l.slot,
      retained_bytes: num(slot[0]?.retained),
    });
  }
  return { sites: outSites, links };
}

/** The stable `status --json` form: only the documented fields. */
export function stableMeshStatus(d: MeshStatusDetail): MeshStatus {
  return {
    sites: d.sites.map((s) => ({ scope: s.scope, leader: s.leader, members: [...s.members] })),
    links: d.links.map((l) => ({ from: l.from, to: l.to, lag_bytes: l.lag_bytes, state: l.state })),
  };
}

export function meshStatusText(d: MeshStatus | MeshStatusDetail): string[] {
  const lines = ['sites:'];
  for (const s of d.sites) lines.push(`  ${s.scope}: leader ${s.leader ?? '(none)'}; members ${s.members.join(', ')}`);
  lines.push('links (provider → subscriber):');
  for (const l of d.links as ReadonlyArray<MeshStatusLink & Partial<MeshStatusDetail['links'][number]>>) {
    const slot = l.slot === undefined ? '' : `, slot ${l.slot} retains ${l.retained_bytes ?? '?'} bytes`;
    lines.push(`  ${l.from} → ${l.to}: ${l.state}, lag ${l.lag_bytes ?? '?'} bytes${slot}`);
  }
  return lines;
}
