/**
 * `pgkeel mesh status` and the `mesh` object of `pgkeel status --json`: each site's leader and members, and per
 * link (provider → subscriber) the lag in bytes (the provider's `pg_current_wal_lsn() − confirmed_flush_lsn` of the
 * link's slot), the subscription's state on the subscriber, and the WAL the slot keeps on the provider.
 * `mesh status --json` adds per link the lag in seconds (the provider's `pg_stat_replication.replay_lag` of the
 * link's walsender, whose application_name is the subscription; PostgreSQL shows NULL once a link is idle and caught
 * up, read as 0 when no byte is outstanding) and the subscriber's last apply error when the link is not
 * replicating (the last ERROR of a background worker in the tail of its server log, read with pg_read_file), and per
 * site the leader's clock offset against this host's (offset.ts).
 * A site that cannot be reached shows its links with null numbers and state "unknown", never an exception.
 */
import { formatHostPort } from '../lib/net.js';
import type { MeshEngine } from './engine.js';
import type { MeshRecord } from './plan.js';
import type { Site } from './site.js';
import { type ClockOffset, measureOffset } from './offset.js';
import type { Sql } from './engine.js';

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

/** `mesh status --json`: the same, each link with its slot, the WAL it retains, lag in seconds, apply error;
 *  each site with its leader's clock offset (null: not measured). */
export interface MeshStatusDetail {
  readonly sites: ReadonlyArray<MeshStatusSite & { readonly clock?: ClockOffset | null }>;
  readonly links: ReadonlyArray<
    MeshStatusLink & {
      readonly slot: string;
      readonly retained_bytes: number | null;
      readonly lag_seconds?: number | null;
      readonly apply_error?: string | null;
    }
  >;
}

/** The last ERROR a background worker (pglogical's apply) logged in the last 64 kB of the server's log. */
async function lastApplyError(db: Sql): Promise<string | null> {
  const r = await db.query<{ tail: string | null }>(
    `WITH f AS (SELECT regexp_replace(current_setting('data_directory'), '/[^/]+/?$', '') || '/postgresql.log' AS p),
          s AS (SELECT p, (pg_stat_file(p, true)).size AS size FROM f)
     SELECT CASE WHEN size IS NULL THEN NULL
                 ELSE pg_read_file(p, greatest(size - 65536, 0), least(size, 65536), true) END AS tail FROM s`,
  );
  const lines = (r[0]?.tail ?? '').split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /\[\d+\] \[unknown\]@\S* ERROR: {2}(.*)$/.exec(lines[i] as string);
    if (m) return (m[1] as string).slice(0, 300);
  }
  return null;
}

const hp = (h: { host: string; port: number }) => formatHostPort(h.host, h.port);

export async function meshStatus(
  record: MeshRecord,
  sites: readonly Site[],
  engine: MeshEngine,
  /** Epoch ms (fractional) for clock offsets; without it none are measured. */
  clock?: () => number,
): Promise<MeshStatusDetail> {
  const byScope = new Map(sites.map((s) => [s.scope, s]));
  const outSites: MeshStatusDetail['sites'][number][] = [];
  for (const s of sites) {
    const t = await s.topology().catch(() => null);
    const leader = t?.members.find((m) => m.name === t.leader);
    const base = { scope: s.scope, leader: leader ? hp(leader) : null, members: (t?.members ?? []).map(hp) };
    if (!clock) outSites.push(base);
    else
      outSites.push({
        ...base,
        clock: await s
          .sql()
          .then((db) => measureOffset(db, clock))
          .catch(() => null),
      });
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
            db.query<{ lag: string | null; retained: string | null; secs: string | null }>(
              `SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::text AS lag,
                      (pg_current_wal_lsn() - restart_lsn)::text AS retained,
                      (SELECT extract(epoch FROM r.replay_lag)::text FROM pg_stat_replication r
                        WHERE r.pid = s.active_pid) AS secs
                 FROM pg_replication_slots s WHERE slot_name = $1`,
              [l.slot],
            ),
          )
          .catch(() => [])
      : [];
    const num = (v: string | null | undefined) => (v === null || v === undefined ? null : Math.max(0, Number(v)));
    const lagBytes = num(slot[0]?.lag);
    const state = states.get(l.to)?.get(l.subscription) ?? 'unknown';
    const secs = slot[0]?.secs;
    const subscriber = byScope.get(l.to);
    const applyError =
      state === 'replicating' || state === 'unknown' || !subscriber
        ? null
        : await subscriber
            .sql()
            .then(lastApplyError)
            .catch(() => null);
    links.push({
      from: l.from,
      to: l.to,
      lag_bytes: lagBytes,
      state,
      slot: l.slot,
      retained_bytes: num(slot[0]?.retained),
      lag_seconds: secs !== null && secs !== undefined ? Number(secs) : lagBytes === 0 ? 0 : null,
      apply_error: applyError,
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
  for (const s of d.sites as MeshStatusDetail['sites']) {
    const c =
      s.clock === undefined
        ? ''
        : s.clock === null
          ? '; clock ?'
          : `; clock ${signed(s.clock.offset_ms)} ms (±${s.clock.rtt_ms / 2})`;
    lines.push(`  ${s.scope}: leader ${s.leader ?? '(none)'}; members ${s.members.join(', ')}${c}`);
  }
  lines.push('links (provider → subscriber):');
  for (const l of d.links as ReadonlyArray<MeshStatusLink & Partial<MeshStatusDetail['links'][number]>>) {
    const slot = l.slot === undefined ? '' : `, slot ${l.slot} retains ${l.retained_bytes ?? '?'} bytes`;
    const secs = l.lag_seconds === undefined ? '' : ` (${l.lag_seconds ?? '?'} s)`;
    lines.push(`  ${l.from} → ${l.to}: ${l.state}, lag ${l.lag_bytes ?? '?'} bytes${secs}${slot}`);
    if (l.apply_error) lines.push(`    last apply error on ${l.to}: ${l.apply_error}`);
  }
  return lines;
}

const signed = (n: number) => (n >= 0 ? `+${n}` : String(n));
