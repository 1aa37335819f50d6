/**
 * Step 1 of `mesh create`: the mesh settings through a site's dynamic configuration (PATCH /config on its leader,
 * as `ctl edit-config` does), then the one restart they need through the agents' REST API (as `ctl restart`
 * does): replicas first — a hot standby refuses to run with max_worker_processes / max_wal_senders below its
 * primary's — the leader last, which keeps its leader key through the restart.
 *
 * shared_preload_libraries is local-only in pgkeel (src/config/pg-params.ts): the agents accept it from the DCS
 * only when their node config lists it in postgresql.allow_dynamic_parameters (`up --mesh` writes that). Otherwise
 * the PATCH is refused (MESH_SETTINGS_REFUSED) or, when a node's own file sets the library list, the restart
 * leaves pglogical unloaded (MESH_PRELOAD_MISSING); both messages give the fix.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster } from '../dcs/layout.js';
import type { MeshEngine } from './engine.js';
import { MeshError } from './errors.js';
import { meshSettings, missingRunning, settingsPatch } from './plan.js';
import type { Site } from './site.js';

const SHOWN = [
  'wal_level',
  'track_commit_timestamp',
  'shared_preload_libraries',
  'max_worker_processes',
  'max_replication_slots',
  'max_wal_senders',
];

export interface SettingsIo {
  readonly progress: (line: string) => void;
  /** How long a site may take to show the change and come back after its restart. */
  readonly timeoutMs: number;
}

async function running(site: Site, engine: MeshEngine): Promise<Record<string, string>> {
  const db = await site.sql();
  const names = [...SHOWN, ...Object.keys(engine.parameters)];
  const rows = await db.query<{ name: string; setting: string | null }>(
    `SELECT n AS name, current_setting(n, true) AS setting FROM unnest($1::text[]) AS n`,
    [names],
  );
  return Object.fromEntries(rows.map((r) => [r.name, r.setting ?? '']));
}

function dcsParameters(c: Cluster): Record<string, unknown> {
  const pg = c.config?.value['postgresql'];
  const p = pg && typeof pg === 'object' ? (pg as Record<string, unknown>)['parameters'] : undefined;
  return p && typeof p === 'object' ? (p as Record<string, unknown>) : {};
}

/** Brings one site to the mesh settings for `sites` sites; returns the changes made (empty: none needed). */
export async function applySettings(site: Site, engine: MeshEngine, sites: number, io: SettingsIo): Promise<string[]> {
  const wanted = meshSettings(sites, engine.preload);
  const changes: string[] = [];
  const cluster = await site.client.cluster();
  const patch = settingsPatch(dcsParameters(cluster), wanted, engine.parameters);
  if (Object.keys(patch).length) {
    const leader = cluster.leader ? cluster.members.get(cluster.leader.name) : undefined;
    if (!leader)
      throw new MeshError('MESH_NO_LEADER', `site ${site.scope} has no leader to change its configuration through`, {
        site: site.scope,
      });
    const a = await site.client.rest(leader, 'PATCH', '/config', { postgresql: { parameters: patch } });
    if (a.code !== 200)
      throw new MeshError(
        'MESH_SETTINGS_REFUSED',
        `site ${site.scope}: member ${leader.name} refused the mesh settings (HTTP ${a.code})`,
        { site: site.scope, detail: a.text.trim() },
      );
    const set = Object.entries(patch).map(([k, v]) => `${k}=${v}`);
    changes.push(`${site.scope}: dynamic configuration ${set.join(', ')}`);
    io.progress(changes.at(-1) as string);
    // The agents write the DCS settings into PostgreSQL's config on reload (or restart), not on their own.
    for (const m of cluster.members.values())
      await site.client.rest(m, 'POST', '/reload', {}, io.timeoutMs).catch(() => undefined);
  }
  const missing = missingRunning(await running(site, engine), wanted, engine.parameters);
  if (missing.length === 0) return changes;
  io.progress(`${site.scope}: restart needed (${missing.join('; ')})`);
  await restartSite(site, io);
  changes.push(`${site.scope}: restarted`);
  const still = missingRunning(await running(site, engine), wanted, engine.parameters);
  if (still.length)
    throw new MeshError(
      'MESH_PRELOAD_MISSING',
      `site ${site.scope} still runs without the mesh settings after its restart: ${still.join('; ')}. A node's own postgresql.parameters win over the DCS: set shared_preload_libraries there (including ${engine.preload}), or list shared_preload_libraries in postgresql.allow_dynamic_parameters of every node's config file and restart its agent`,
      { site: site.scope },
    );
  return changes;
}

/** Restarts replicas first and the leader last (each agent writes the DCS settings into its PostgreSQL config as it
 *  starts it), and waits until the leader answers again. */
async function restartSite(site: Site, io: SettingsIo): Promise<void> {
  const deadline = Date.now() + io.timeoutMs;
  const c = await site.client.cluster();
  const leaderName = c.leader?.name;
  const order = [...c.members.values()].sort((a, b) => Number(a.name === leaderName) - Number(b.name === leaderName));
  for (const m of order) {
    io.progress(`${site.scope}: restarting ${m.name}${m.name === leaderName ? ' (the leader, last)' : ''}`);
    const a = await site.client.rest(m, 'POST', '/restart', {}, io.timeoutMs);
    if (a.code !== 200)
      throw new MeshError('MESH_TIMEOUT', `site ${site.scope}: restart of ${m.name} failed (HTTP ${a.code})`, {
        site: site.scope,
        detail: a.text.trim(),
      });
  }
  await site.reconnect();
  for (;;) {
    const view = await site.topology().catch(() => null);
    const ok = view?.leader
      ? await site
          .sql()
          .then((db) => db.query('SELECT 1'))
          .then(() => true)
          .catch(() => site.reconnect().then(() => false))
      : false;
    if (ok) return;
    if (Date.now() > deadline)
      throw new MeshError('MESH_TIMEOUT', `site ${site.scope} did not come back after its restart`, {
        site: site.scope,
      });
    await sleep(500);
  }
}

// --- permanent slots (issue 14, deliverable 6): the pglogical slots survive a failover inside a site. ---
/**
 * Registers `slots` (the pglogical slots this site provides to its peers) as permanent logical slots in the site's
 * dynamic configuration (PATCH /config on its leader), so its replicas copy and advance them
 * (src/ha/logical-slots.ts). Returns the change made (empty: already registered).
 */
export async function registerPermanentSlots(
  site: Site,
  slots: readonly string[],
  database: string,
  plugin: string,
): Promise<string[]> {
  const cluster = await site.client.cluster();
  const have = cluster.config?.value['slots'];
  const current = have && typeof have === 'object' ? (have as Record<string, Record<string, unknown>>) : {};
  const patch: Record<string, unknown> = {};
  for (const name of slots) {
    const c = current[name];
    if (c?.['type'] !== 'logical' || c['database'] !== database || c['plugin'] !== plugin)
      patch[name] = { type: 'logical', database, plugin };
  }
  if (!Object.keys(patch).length) return [];
  const leader = cluster.leader ? cluster.members.get(cluster.leader.name) : undefined;
  if (!leader)
    throw new MeshError('MESH_NO_LEADER', `site ${site.scope} has no leader to change its configuration through`, {
      site: site.scope,
    });
  const a = await site.client.rest(leader, 'PATCH', '/config', { slots: patch });
  if (a.code !== 200)
    throw new MeshError(
      'MESH_SETTINGS_REFUSED',
      `site ${site.scope}: member ${leader.name} refused the permanent slots (HTTP ${a.code})`,
      { site: site.scope, detail: a.text.trim() },
    );
  return [`${site.scope}: permanent logical slots ${Object.keys(patch).sort().join(', ')}`];
}
// --- end permanent slots ---
