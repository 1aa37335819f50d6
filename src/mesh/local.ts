/**
 * The local demo mesh: `pgkeel up --dir D --mesh 2|3 [--nodes N]` makes N sites, each a local cluster of its own
 * (own scope `siteK`, etcd, proxy and ports) in D/siteK, and joins them (create.ts); `status --dir D` adds the
 * `mesh` object, `down --dir D` stops every site. Layout:
 *
 *   D/mesh.json     {sites, nodes, portBase, database[, detached]}: what later `up`/`status`/`down` read;
 *                   `mesh add-site --dir D` adds site K+1, `mesh remove-site` lists a site in `detached`
 *   D/site1/ …      one `pgkeel up` cluster each (layout.ts); site K uses ports P+40(K−1) … P+40(K−1)+29
 *
 * Each site's node.yml lists shared_preload_libraries in postgresql.allow_dynamic_parameters, so the mesh settings
 * go through the DCS like any other (settings.ts); nothing else differs from a plain `up` cluster.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { createLocalCluster, DEFAULT_PORT_BASE, paths, readLocalCluster } from '../local/layout.js';
import { localEtcdClientSection } from '../local/etcd-security.js';
import { localStatus, type StatusJson } from '../local/status.js';
import { up } from '../local/up.js';
import { down } from '../local/down.js';
import { createMesh, type CreateResult } from './create.js';
import { MeshError } from './errors.js';
import { pglogical } from './pglogical.js';
import { Site, siteFrom } from './site.js';
import { meshStatus, stableMeshStatus, type MeshStatus } from './status.js';

export const MESH_FILE = 'mesh.json';
export const SITE_PORT_SPAN = 40;
export const MAX_SITES = 3;

export interface LocalMesh {
  readonly dir: string;
  readonly sites: number;
  readonly nodes: number;
  readonly portBase: number;
  readonly database: string;
  /** Sites taken out by `mesh remove-site` (standalone clusters now; `up`/`down --dir D` still start and stop them). */
  readonly detached?: readonly number[];
}

export const siteDir = (m: Pick<LocalMesh, 'dir'>, k: number) => join(m.dir, `site${k}`);
/** The directories of the mesh's sites (detached ones left out). */
export const siteDirs = (m: LocalMesh) =>
  Array.from({ length: m.sites }, (_, i) => i + 1)
    .filter((k) => !m.detached?.includes(k))
    .map((k) => siteDir(m, k));
/** Every site directory, detached ones too (`up`, `down`). */
export const allSiteDirs = (m: LocalMesh) => Array.from({ length: m.sites }, (_, i) => siteDir(m, i + 1));

export function readLocalMesh(dirArg: string): LocalMesh | null {
  const dir = resolve(dirArg);
  const file = join(dir, MESH_FILE);
  if (!existsSync(file)) return null;
  const saved = JSON.parse(readFileSync(file, 'utf8')) as Omit<LocalMesh, 'dir'>;
  return { ...saved, dir };
}

export interface UpMeshOptions {
  readonly dir: string;
  readonly sites: number;
  readonly nodes?: number;
  readonly portBase?: number;
  readonly timeoutMs?: number;
  readonly progress: (line: string) => void;
}

function prepareMesh(o: UpMeshOptions): LocalMesh {
  const dir = resolve(o.dir);
  const grown = readLocalMesh(dir)?.sites === o.sites;
  if (!Number.isInteger(o.sites) || o.sites < 2 || (o.sites > MAX_SITES && !grown))
    throw new MeshError('MESH_USAGE', `--mesh takes 2 or ${MAX_SITES} sites, got ${o.sites}`);
  if (existsSync(paths.clusterFile(dir)))
    throw new MeshError(
      'MESH_USAGE',
      `${dir} holds a plain cluster; a mesh needs its own directory (\`pgkeel up --dir NEW --mesh ${o.sites}\`), or join existing clusters with \`pgkeel mesh create --site DIR1 --site DIR2\``,
    );
  const existing = readLocalMesh(dir);
  if (existing) {
    if (
      existing.sites !== o.sites ||
      (o.nodes !== undefined && o.nodes !== existing.nodes) ||
      (o.portBase !== undefined && o.portBase !== existing.portBase)
    )
      throw new MeshError(
        'MESH_USAGE',
        `${dir} holds a ${existing.sites}-site mesh of ${existing.nodes} node(s) each from port ${existing.portBase}; run \`pgkeel up --dir ${o.dir}\` without --mesh, --nodes or --port-base, or use another --dir`,
      );
    return existing;
  }
  const m: LocalMesh = {
    dir,
    sites: o.sites,
    nodes: o.nodes ?? 1,
    portBase: o.portBase ?? DEFAULT_PORT_BASE,
    database: 'postgres',
  };
  // Readable by `postgres` on the way to each site's data directories (secure.ts explains the modes).
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  for (let k = 1; k <= m.sites; k++) makeSiteDir(m, k);
  saveLocalMesh(m);
  return m;
}

/** D/siteK: a local cluster of scope siteK on its port range, ready for the mesh settings. */
function makeSiteDir(m: LocalMesh, k: number): string {
  const d = siteDir(m, k);
  mkdirSync(d, { recursive: true, mode: 0o755 });
  const lc = createLocalCluster(d, {
    nodes: m.nodes,
    portBase: m.portBase + SITE_PORT_SPAN * (k - 1),
    scope: `site${k}`,
    etcdClient: localEtcdClientSection(d, false),
  });
  for (const n of lc.nodes) {
    const file = paths.nodeConfig(d, n.name);
    const doc = parseDocument(readFileSync(file, 'utf8'));
    doc.setIn(['postgresql', 'allow_dynamic_parameters'], doc.createNode(['shared_preload_libraries']));
    writeFileSync(file, doc.toString(), { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  return d;
}

function saveLocalMesh(m: LocalMesh): void {
  const { dir: _dir, ...saved } = m;
  writeFileSync(join(m.dir, MESH_FILE), `${JSON.stringify(saved, null, 2)}\n`, { mode: 0o644 });
}

/** Opens every site of a local mesh (dispose each). */
export function openLocalSites(m: LocalMesh): Site[] {
  return siteDirs(m).map((d) => new Site(siteFrom(d), m.database));
}

export async function upMesh(o: UpMeshOptions): Promise<{ mesh: LocalMesh; created: CreateResult }> {
  const m = prepareMesh(o);
  for (const [i, d] of allSiteDirs(m).entries()) {
    o.progress(`site${i + 1}: starting ${d}`);
    await up({
      dir: d,
      timeoutMs: o.timeoutMs ?? 120_000,
      // The sites' first backups go on in the background; the mesh does not wait for them.
      firstBackupTimeoutMs: 0,
      progress: (l) => o.progress(`site${i + 1}: ${l}`),
    });
  }
  const sites = openLocalSites(m);
  try {
    const created = await createMesh(sites, pglogical, m.database, {
      progress: o.progress,
      timeoutMs: o.timeoutMs ?? 120_000,
    });
    return { mesh: m, created };
  } finally {
    for (const s of sites) await s[Symbol.asyncDispose]();
  }
}

export async function downMesh(m: LocalMesh, progress: (l: string) => void): Promise<void> {
  for (const [i, d] of allSiteDirs(m).entries()) {
    const lc = readLocalCluster(d);
    if (lc) await down(lc, (l) => progress(`site${i + 1}: ${l}`));
  }
}

/** `status --dir D` of a mesh: the first site's status (the usual fields) plus `mesh` (status.ts, stable fields). */
export async function localMeshStatus(m: LocalMesh): Promise<StatusJson & { mesh: MeshStatus | null }> {
  const first = readLocalCluster(siteDir(m, 1));
  if (!first) throw new MeshError('MESH_USAGE', `${siteDir(m, 1)} holds no cluster`);
  const base = await localStatus(first);
  const sites = openLocalSites(m);
  try {
    const record = await sites[0]?.readRecord().catch(() => null);
    if (!record) return { ...base, mesh: null };
    return { ...base, mesh: stableMeshStatus(await meshStatus(record, sites, pglogical)) };
  } finally {
    for (const s of sites) await s[Symbol.asyncDispose]();
  }
}

// ---- add-site / remove-site on a local mesh (`pgkeel mesh add-site|remove-site --dir D`) ----

/** How many sites `mesh add-site --dir D` grows a local mesh to (ports: P + 40(K−1) … for each). */
export const MAX_GROWN_SITES = 5;

/** Makes and starts D/site(K+1), a new local cluster of the mesh's shape, and counts it in mesh.json; the join
 *  itself is join.ts's. Returns the new site's directory. */
export async function growLocalMesh(
  m: LocalMesh,
  o: { timeoutMs: number; progress: (l: string) => void },
): Promise<{ mesh: LocalMesh; dir: string }> {
  const k = m.sites + 1;
  if (k > MAX_GROWN_SITES)
    throw new MeshError(
      'MESH_USAGE',
      `a local mesh grows to at most ${MAX_GROWN_SITES} sites (${m.dir} has ${m.sites})`,
    );
  const grown: LocalMesh = { ...m, sites: k };
  const d = existsSync(paths.clusterFile(siteDir(m, k))) ? siteDir(m, k) : makeSiteDir(grown, k);
  saveLocalMesh(grown);
  o.progress(`site${k}: starting ${d}`);
  await up({ dir: d, timeoutMs: o.timeoutMs, firstBackupTimeoutMs: 0, progress: (l) => o.progress(`site${k}: ${l}`) });
  return { mesh: grown, dir: d };
}

/** Marks site `scope` (siteK) of a local mesh as detached in mesh.json: no longer a mesh site, still started and
 *  stopped with the directory. */
export function detachLocalSite(m: LocalMesh, scope: string): void {
  const k = Number(/^site(\d+)$/.exec(scope)?.[1]);
  if (!Number.isInteger(k) || k < 1 || k > m.sites || m.detached?.includes(k)) return;
  saveLocalMesh({ ...m, detached: [...(m.detached ?? []), k] });
}
