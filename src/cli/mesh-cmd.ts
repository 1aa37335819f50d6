/**
 * `pgkeel mesh create|check|status`: a multi-master mesh of pgkeel clusters (src/mesh/, docs/multi-master.md).
 * Sites come from `--dir D` (a mesh made by `pgkeel up --mesh`) or from `--site X` given twice or more (a local
 * cluster directory or a member's node config). Exit codes: 0 ok (check: converged), 1 failed (check: diverged),
 * 2 invalid usage.
 */
import { checkMesh } from '../mesh/check.js';
import { checkText } from '../mesh/compare.js';
import { createMesh } from '../mesh/create.js';
import { MeshError } from '../mesh/errors.js';
import { openLocalSites, readLocalMesh } from '../mesh/local.js';
import { pglogical } from '../mesh/pglogical.js';
import { checkSites } from '../mesh/plan.js';
import { Site, siteFrom } from '../mesh/site.js';
import { meshStatus, meshStatusText } from '../mesh/status.js';
import { runSiteCommand, SITE_FLAGS, SITE_HELP } from './mesh-site-cmd.js';
import { type FlagSpec, parseArgs, UsageError, usage } from './args.js';

const out = (s: string) => process.stdout.write(`${s}\n`);
const err = (s: string) => process.stderr.write(`${s}\n`);

const SPEC: Record<string, FlagSpec> = {
  dir: { type: 'string', doc: 'a mesh directory made by `pgkeel up --mesh N`', placeholder: 'DIR' },
  site: {
    type: 'list',
    doc: "a site: a local cluster directory or a member's node config (give two or more; the first seeds the data)",
    placeholder: 'DIR|FILE',
  },
  database: { type: 'string', doc: 'the database to replicate (default postgres)', placeholder: 'DB' },
  table: { type: 'string', doc: 'check: only this table', placeholder: 'T' },
  json: { type: 'boolean', doc: 'status, check: print JSON' },
  timeout: {
    type: 'number',
    doc: 'seconds each wait may take: restart, initial copy, barrier (default 120)',
    placeholder: 'S',
  },
  ...SITE_FLAGS,
  help: { type: 'boolean', short: 'h', doc: 'show this help' },
};

const HELP = `Usage: pgkeel mesh create|check|status|add-site|remove-site [--dir D | --site X --site Y ...] [options]

  create   join the sites' leaders into a full pglogical mesh (settings + one restart, extension, nodes,
           replication sets, the first site's data copied to the others, the remaining links, barrier, check);
           idempotent: on a complete mesh it changes nothing and says so
  check    barrier on every site, then per table row count and row hash on every site; names the tables (and keys)
           that differ. Exit 0 converged, 1 diverged
  status   per link: lag in bytes, subscription state, WAL the slot retains
${SITE_HELP}

docs/multi-master.md says when a mesh is the right tool and which conflicts it cannot resolve.`;

export function sitesFromFlags(flags: Record<string, unknown>): { sites: Site[]; database: string } {
  const dir = flags['dir'] as string | undefined;
  const specs = (flags['site'] as string[] | undefined) ?? [];
  if (dir !== undefined && specs.length) throw new UsageError('give --dir or --site, not both');
  const db = flags['database'] as string | undefined;
  if (dir !== undefined) {
    const m = readLocalMesh(dir);
    if (!m)
      throw new UsageError(`${dir} holds no mesh (no mesh.json); make one with \`pgkeel up --dir ${dir} --mesh 2\``);
    if (db !== undefined && db !== m.database) throw new UsageError(`${dir}'s mesh replicates database ${m.database}`);
    return { sites: openLocalSites(m), database: m.database };
  }
  if (specs.length < 2)
    throw new UsageError('give the sites: --dir D (a mesh made by `up --mesh`) or --site X twice or more');
  const database = db ?? 'postgres';
  const sites = specs.map((s) => new Site(siteFrom(s), database));
  checkSites(sites.map((s) => s.scope));
  return { sites, database };
}

export async function runMeshCommand(args: string[]): Promise<number> {
  const { flags, positional } = parseArgs(args, SPEC);
  const sub = positional[0];
  if (flags['help'] || sub === undefined || sub === 'help') {
    out(`${HELP}\n\n${usage(SPEC)}`);
    return sub === undefined && !flags['help'] ? 2 : 0;
  }
  if (!['add-site', 'remove-site', 'create', 'check', 'status'].includes(sub))
    throw new UsageError(`unknown mesh command "${sub}"; expected create, check, status, add-site or remove-site`);
  if (positional.length > 1) throw new UsageError(`unexpected argument "${positional[1]}"`);
  if (flags['table'] !== undefined && sub !== 'check') throw new UsageError('--table is for `mesh check`');
  const timeoutMs = ((flags['timeout'] as number | undefined) ?? 120) * 1000;
  let opened: Site[] = [];
  try {
    if (sub === 'add-site' || sub === 'remove-site') return await runSiteCommand(sub, flags, positional);
    const { sites, database } = sitesFromFlags(flags);
    opened = sites;
    if (sub === 'create') {
      const r = await createMesh(sites, pglogical, database, { progress: (l) => out(`  ${l}`), timeoutMs });
      out(r.changes.length ? `mesh created: ${r.changes.length} change(s)` : 'mesh complete: nothing changed');
      for (const l of checkText(r.check)) out(l);
      return r.check.converged ? 0 : 1;
    }
    const record = await sites[0]?.readRecord();
    if (!record)
      throw new MeshError(
        'MESH_NOT_CREATED',
        `site ${sites[0]?.scope} has no mesh record in its DCS; run \`pgkeel mesh create\` first`,
      );
    if (sub === 'status') {
      const s = await meshStatus(record, sites, pglogical);
      out(flags['json'] ? JSON.stringify(s, null, 2) : meshStatusText(s).join('\n'));
      return s.links.every((l) => l.state === 'replicating') ? 0 : 1;
    }
    const conns = await Promise.all(sites.map(async (s) => ({ scope: s.scope, db: await s.sql() })));
    const table = flags['table'] as string | undefined;
    const r = await checkMesh(conns, pglogical, {
      ...(table !== undefined ? { table } : {}),
      barrierTimeoutMs: timeoutMs,
    });
    out(flags['json'] ? JSON.stringify(r, null, 2) : checkText(r).join('\n'));
    return r.converged ? 0 : 1;
  } catch (e) {
    if (!(e instanceof MeshError)) throw e;
    err(`pgkeel mesh: ${e.code}: ${e.message}`);
    if (e.context.detail) err(e.context.detail);
    return e.code === 'MESH_USAGE' ? 2 : 1;
  } finally {
    for (const s of opened) await s[Symbol.asyncDispose]();
  }
}
