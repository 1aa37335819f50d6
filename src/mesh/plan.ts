/**
 * The mesh's shape, pure: node and subscription names, the order links are made in, each provider site's DSN, the
 * settings a site needs for N sites, and the record kept in the DCS. No I/O here; create.ts acts on it.
 *
 * A site is one pgkeel cluster (its own scope). Its pglogical node lives in its leader's database and moves with it
 * through physical failover; so every subscription reaches its provider site by a libpq multi-host DSN over all the
 * site's members with `target_session_attrs=read-write`, which lands on whoever leads (no re-pointing after failover).
 */
import { conninfo } from '../postgres/conf.js';
import { MeshError } from './errors.js';

export interface SiteMember {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

/** A site as its DCS shows it now. */
export interface SiteTopology {
  readonly scope: string;
  /** The leader's member name; null while the site has none. */
  readonly leader: string | null;
  readonly members: readonly SiteMember[];
}

export interface Link {
  /** Provider site (scope). */
  readonly from: string;
  /** Subscriber site (scope). */
  readonly to: string;
  /** The subscription's name on the subscriber. */
  readonly subscription: string;
  /** Copy the provider's existing rows: only on links from the seed (first) site. */
  readonly syncData: boolean;
}

/** What `mesh create` records under the DCS key `/<namespace>/<scope>/mesh` of every site (docs/multi-master.md). */
export interface MeshRecord {
  readonly version: 1;
  readonly engine: string;
  readonly database: string;
  readonly sites: ReadonlyArray<{ readonly scope: string; readonly node: string; readonly dsn: string }>;
  readonly links: ReadonlyArray<{
    readonly from: string;
    readonly to: string;
    readonly subscription: string;
    /** The provider's logical slot; the subscriber's replication origin has the same name (pglogical). */
    readonly slot: string;
    readonly origin: string;
  }>;
}

const NAME_MAX = 24;

/** The engine's node name for a site: its scope in lower case, other characters as `_` (a SQL-safe identifier). */
export function nodeNameFor(scope: string): string {
  const n = scope
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, NAME_MAX);
  return /^[a-z_]/.test(n) ? n : `s_${n}`.slice(0, NAME_MAX);
}

export function subscriptionName(from: string, to: string): string {
  return `mesh_${nodeNameFor(from)}_${nodeNameFor(to)}`;
}

/** Refuses fewer than two sites and two sites whose node names collide (`a-b` and `a_b`). */
export function checkSites(scopes: readonly string[]): void {
  if (scopes.length < 2)
    throw new MeshError('MESH_USAGE', `a mesh needs at least two sites, got ${scopes.length}: ${scopes.join(', ')}`);
  const seen = new Map<string, string>();
  for (const s of scopes) {
    const n = nodeNameFor(s);
    const other = seen.get(n);
    if (other !== undefined)
      throw new MeshError(
        'MESH_USAGE',
        `sites "${other}" and "${s}" would both be mesh node "${n}"; every site needs its own scope`,
      );
    seen.set(n, s);
  }
}

/**
 * The full mesh's links in the order they are made: first the seed site (the first) to every other — these copy
 * its rows — then every remaining ordered pair, which only stream new changes.
 */
export function linkPlan(scopes: readonly string[]): Link[] {
  checkSites(scopes);
  const [seed, ...rest] = scopes as [string, ...string[]];
  const links: Link[] = rest.map((to) => ({
    from: seed,
    to,
    subscription: subscriptionName(seed, to),
    syncData: true,
  }));
  for (const from of rest)
    for (const to of scopes)
      if (to !== from) links.push({ from, to, subscription: subscriptionName(from, to), syncData: false });
  return links;
}

/**
 * The DSN a subscriber uses to reach site `t`: every member, the leader first (libpq tries hosts in order), and
 * `target_session_attrs=read-write`, so the connection lands on the site's primary whichever member it is.
 * The password is given only for the copy stored in the engine's catalog; the DCS record gets none.
 */
export function siteDsn(t: SiteTopology, database: string, user: string, password?: string): string {
  const members = [...t.members].sort((a, b) => Number(b.name === t.leader) - Number(a.name === t.leader));
  if (members.length === 0) throw new MeshError('MESH_NO_LEADER', `site ${t.scope} has no members`, { site: t.scope });
  return conninfo([
    ['host', members.map((m) => m.host).join(',')],
    ['port', members.map((m) => String(m.port)).join(',')],
    ['dbname', database],
    ['user', user],
    ...(password !== undefined ? ([['password', password]] as const) : []),
    ['target_session_attrs', 'read-write'],
    ['connect_timeout', 5],
  ]);
}

/** Settings every site of an N-site mesh needs; numbers are minimums (a larger value already set is kept). */
export function meshSettings(
  sites: number,
  preload: string,
): {
  exact: Record<string, string>;
  atLeast: Record<string, number>;
  preload: string;
} {
  return {
    exact: {
      wal_level: 'logical',
      track_commit_timestamp: 'on',
    },
    // Per node: a supervisor and a manager per database, one apply worker per peer, a table-sync worker per peer
    // while copying; one walsender and one slot per peer, on top of the physical replicas' (pgkeel defaults 10).
    atLeast: {
      max_worker_processes: 8 + 2 * sites,
      max_replication_slots: 10 + sites,
      max_wal_senders: 10 + sites,
    },
    preload,
  };
}

/** A shared_preload_libraries value with `lib` added (kept in order, no duplicates, blanks dropped). */
export function withPreload(current: string | undefined, lib: string): string {
  const libs = (current ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!libs.includes(lib)) libs.push(lib);
  return libs.join(',');
}

/**
 * The postgresql.parameters patch that brings a site's dynamic config (`current`) to the mesh settings; empty when
 * nothing is missing. `engineParams` are the engine's own GUCs (exact values).
 */
export function settingsPatch(
  current: Readonly<Record<string, unknown>>,
  wanted: ReturnType<typeof meshSettings>,
  engineParams: Readonly<Record<string, string>>,
): Record<string, string | number> {
  const cur = Object.fromEntries(Object.entries(current).map(([k, v]) => [k.toLowerCase(), v]));
  const patch: Record<string, string | number> = {};
  for (const [k, v] of Object.entries({ ...wanted.exact, ...engineParams }))
    if (String(cur[k] ?? '').toLowerCase() !== v.toLowerCase()) patch[k] = v;
  for (const [k, v] of Object.entries(wanted.atLeast)) {
    const have = Number(cur[k]);
    if (!(Number.isFinite(have) && have >= v)) patch[k] = v;
  }
  const spl = cur['shared_preload_libraries'];
  const preload = withPreload(typeof spl === 'string' ? spl : undefined, wanted.preload);
  if (preload !== spl) patch['shared_preload_libraries'] = preload;
  return patch;
}

/**
 * Which running settings (as `SHOW` answers on the leader) still miss the mesh settings: these need the restart.
 * Returns `name: have → want` lines; empty when the leader runs with all of them.
 */
export function missingRunning(
  running: Readonly<Record<string, string>>,
  wanted: ReturnType<typeof meshSettings>,
  engineParams: Readonly<Record<string, string>>,
): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(wanted.exact))
    if ((running[k] ?? '').toLowerCase() !== v) out.push(`${k}: ${running[k] ?? '(unset)'} → ${v}`);
  for (const [k, v] of Object.entries(wanted.atLeast))
    if (!(Number(running[k]) >= v)) out.push(`${k}: ${running[k] ?? '(unset)'} → at least ${v}`);
  const libs = (running['shared_preload_libraries'] ?? '').split(',').map((s) => s.trim());
  if (!libs.includes(wanted.preload))
    out.push(`shared_preload_libraries: "${running['shared_preload_libraries'] ?? ''}" lacks ${wanted.preload}`);
  for (const [k, v] of Object.entries(engineParams))
    if (libs.includes(wanted.preload) && (running[k] ?? '').toLowerCase() !== v) out.push(`${k}: ${running[k]} → ${v}`);
  return out;
}

/** True when two records describe the same mesh (key order aside). */
export function sameRecord(a: MeshRecord | null, b: MeshRecord): boolean {
  return a !== null && JSON.stringify(normalise(a)) === JSON.stringify(normalise(b));
}

function normalise(r: MeshRecord): unknown {
  return {
    version: r.version,
    engine: r.engine,
    database: r.database,
    sites: r.sites.map((s) => [s.scope, s.node, s.dsn]),
    links: r.links.map((l) => [l.from, l.to, l.subscription, l.slot, l.origin]),
  };
}
