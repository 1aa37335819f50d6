/**
 * `pgkeel mesh add-site` and `pgkeel mesh remove-site` (src/mesh/join.ts, leave.ts; docs/multi-master.md "Adding
 * and removing a site"). On a local mesh (`--dir D`) add-site makes and starts D/site(K+1) first, remove-site marks
 * the site detached in D/mesh.json (still started and stopped with D). Errors are printed by mesh-cmd.ts.
 */
import { DEFAULT_MAX_CLOCK_OFFSET_MS } from '../mesh/clock.js';
import { addSite } from '../mesh/join.js';
import { preflight } from '../mesh/preflight.js';
import { removeSite } from '../mesh/leave.js';
import { detachLocalSite, growLocalMesh, readLocalMesh, siteDir } from '../mesh/local.js';
import { pglogical } from '../mesh/pglogical.js';
import { Site, siteFrom } from '../mesh/site.js';
import { type FlagSpec, UsageError } from './args.js';
import { sitesFromFlags } from './mesh-cmd.js';

const out = (s: string) => process.stdout.write(`${s}\n`);

export const SITE_FLAGS: Record<string, FlagSpec> = {
  'new-site': {
    type: 'string',
    doc: "add-site: the joining site, a local cluster directory or a member's node config (with --dir: made as D/siteK+1 when not given)",
    placeholder: 'DIR|FILE',
  },
  remove: { type: 'string', doc: 'remove-site: the scope of the site to take out', placeholder: 'SCOPE' },
};

export const SITE_HELP = `  add-site    a new site joins under write load: held links from the other sites, the first site's rows
              copied, the held links released, then the links from the new site (docs: "Adding and removing a
              site"); with --dir D and no --new-site it makes and starts D/site(K+1) first. Rerun to resume
  remove-site --remove SCOPE: drops every link and slot to and from the site; it keeps its data, standalone`;

export async function runSiteCommand(
  sub: 'add-site' | 'remove-site',
  flags: Record<string, unknown>,
  positional: readonly string[],
): Promise<number> {
  if (positional.length > 1) throw new UsageError(`unexpected argument "${positional[1]}"`);
  const timeoutMs = ((flags['timeout'] as number | undefined) ?? 120) * 1000;
  const dir = flags['dir'] as string | undefined;
  const newSite = flags['new-site'] as string | undefined;
  const removeScope = flags['remove'] as string | undefined;
  if (sub === 'add-site' && removeScope !== undefined) throw new UsageError('--remove is for `mesh remove-site`');
  if (sub === 'remove-site' && newSite !== undefined) throw new UsageError('--new-site is for `mesh add-site`');
  if (sub === 'remove-site' && removeScope === undefined) throw new UsageError('remove-site needs --remove SCOPE');
  if (sub === 'add-site' && newSite === undefined && dir === undefined)
    throw new UsageError('add-site needs --new-site DIR|FILE (or --dir D of a local mesh)');
  const progress = (l: string) => out(`  ${l}`);
  let opened: Site[] = [];
  try {
    const { sites, database } = sitesFromFlags(flags);
    opened = [...sites];
    if (sub === 'remove-site') {
      const r = await removeSite(sites, removeScope as string, { progress, timeoutMs });
      const local = dir !== undefined ? readLocalMesh(dir) : null;
      if (local) detachLocalSite(local, removeScope as string);
      out(
        r.changes.length
          ? `${removeScope} removed: ${r.changes.length} change(s); the mesh is ${r.record.sites.map((s) => s.scope).join(', ')}`
          : `${removeScope} is not in the mesh: nothing changed`,
      );
      return 0;
    }
    let joiningSpec = newSite;
    const local = dir !== undefined ? readLocalMesh(dir) : null;
    if (joiningSpec === undefined && local) {
      // Resume a join that stopped: the last site of mesh.json is not in the record yet.
      const record = await sites[0]?.readRecord();
      const last = `site${local.sites}`;
      const pending = record && !record.sites.some((s) => s.scope === last) && !local.detached?.includes(local.sites);
      if (pending) joiningSpec = siteDir(local, local.sites);
      else joiningSpec = (await growLocalMesh(local, { timeoutMs, progress })).dir;
    }
    const joining = new Site(siteFrom(joiningSpec as string), database);
    opened.push(joining);
    const existing = sites.filter((s) => s.scope !== joining.scope);
    const again =
      dir !== undefined
        ? `--dir ${dir}`
        : ((flags['site'] as string[] | undefined) ?? []).map((s) => `--site ${s}`).join(' ');
    const r = await addSite(existing, joining, pglogical, {
      progress,
      timeoutMs,
      resume: `pgkeel mesh add-site ${again}${newSite !== undefined ? ` --new-site ${newSite}` : ''}`,
      rollback: `pgkeel mesh remove-site ${again}${dir !== undefined ? '' : ' --site <new site>'} --remove ${joining.scope}`,
    });
    out(
      r.changes.length
        ? `${joining.scope} joined: ${r.changes.length} change(s); the mesh is ${r.record.sites.map((s) => s.scope).join(', ')}`
        : `${joining.scope} is already a site of the mesh: nothing changed`,
    );
    out('run `pgkeel mesh check` once writes pause to compare every site');
    // The new site's sequences came with the schema but not with a value of their own (found walking the docs).
    const all = [...existing, joining];
    const report = await preflight(await Promise.all(all.map(async (s) => ({ scope: s.scope, db: await s.sql() }))), {
      maxClockOffsetMs: DEFAULT_MAX_CLOCK_OFFSET_MS,
      now: Date.now,
    });
    if (!report.ok) {
      out(
        `pre-flight on the grown mesh: ${report.problems.length} problem(s) to fix before ${joining.scope} takes writes`,
      );
      for (const p of report.problems) out(`  ${p.code}: ${p.message}`);
    }
    return 0;
  } finally {
    for (const s of opened) await s[Symbol.asyncDispose]();
  }
}
