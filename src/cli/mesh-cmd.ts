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
// --- mesh conflicts (issue 14)
import { conflictsText } from '../mesh/conflicts-label.js';
import { checkConflicts, historyText, readHistory } from '../mesh/conflicts-report.js';
import { parseSince } from '../observe/events/since.js';
// --- end mesh conflicts
// --- pre-flight, sequences and DDL (issue 14 deliverables 2 and 3) ---
import { DEFAULT_MAX_CLOCK_OFFSET_MS } from '../mesh/clock.js';
import { meshDdl, unblockWrites } from '../mesh/ddl.js';
import { preflight, preflightText } from '../mesh/preflight.js';
import { schemaDiffText } from '../mesh/schema.js';
import { planText } from '../mesh/sequences.js';
import { meshSequences } from '../mesh/sequences-sql.js';
// --- end pre-flight, sequences and DDL ---

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
  table: { type: 'string', doc: 'check, conflicts: only this table', placeholder: 'T' },
  since: {
    type: 'string',
    doc: 'conflicts, check: the conflict history from then on: a duration back (1h, 30m, 2d) or an ISO time (default 24h)',
    placeholder: 'WHEN',
  },
  json: { type: 'boolean', doc: 'status, check: print JSON' },
  timeout: {
    type: 'number',
    doc: 'seconds each wait may take: restart, initial copy, barrier (default 120)',
    placeholder: 'S',
  },
  // --- pre-flight, sequences and DDL ---
  'max-clock-offset-ms': {
    type: 'number',
    doc: `create, preflight: the largest clock difference allowed between sites (default ${DEFAULT_MAX_CLOCK_OFFSET_MS})`,
    placeholder: 'MS',
  },
  scheme: { type: 'string', doc: 'sequences: offset (default) or snowflake', placeholder: 'offset|snowflake' },
  apply: { type: 'boolean', doc: 'sequences: change every site (without it: print the plan)' },
  unblock: { type: 'boolean', doc: 'ddl: only reset the write block a dead `mesh ddl` left behind' },
  // --- end pre-flight, sequences and DDL ---
  ...SITE_FLAGS,
  help: { type: 'boolean', short: 'h', doc: 'show this help' },
};

const SUBCOMMANDS = [
  'create',
  'check',
  'status',
  'conflicts',
  'preflight',
  'sequences',
  'ddl',
  'add-site',
  'remove-site',
];

const HELP = `Usage: pgkeel mesh create|check|status|conflicts|preflight|sequences|ddl|add-site|remove-site [--dir D | --site X --site Y ...] [options]

  create   join the sites' leaders into a full pglogical mesh (settings + one restart, extension, nodes,
           replication sets, the first site's data copied to the others, the remaining links, barrier, check);
           idempotent: on a complete mesh it changes nothing and says so
  check    barrier on every site, then per table row count and row hash on every site; names the tables (and keys)
           that differ. Exit 0 converged, 1 diverged
  status   per link: lag in bytes, subscription state, WAL the slot retains
  conflicts  the conflict history of every site (from pglogical's log, kept by each site's agent), newest first
  preflight  refuse unsafe schemas and clocks (schema hash per table, primary keys / replica identity, deferrable
           uniques, sequences without a per-site scheme, clock offsets); exit 0 ok, 1 refused. create runs it too
  sequences [--scheme offset|snowflake] [--apply]   per-site sequence values (prints the plan without --apply)
  ddl "SQL"  block writes on every site, barrier, pglogical.replicate_ddl_command, barrier, schema hash equal,
           unblock; name objects schema-qualified. ddl --unblock: reset a block left by a dead run
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

function maxClock(flags: Record<string, unknown>): { maxClockOffsetMs?: number } {
  const v = flags['max-clock-offset-ms'] as number | undefined;
  if (v === undefined) return {};
  if (!(v >= 0)) throw new UsageError('--max-clock-offset-ms is a number of milliseconds, 0 or more');
  return { maxClockOffsetMs: v };
}

export async function runMeshCommand(args: string[]): Promise<number> {
  const { flags, positional } = parseArgs(args, SPEC);
  const sub = positional[0];
  if (flags['help'] || sub === undefined || sub === 'help') {
    out(`${HELP}\n\n${usage(SPEC)}`);
    return sub === undefined && !flags['help'] ? 2 : 0;
  }
  if (!SUBCOMMANDS.includes(sub))
    throw new UsageError(`unknown mesh command "${sub}"; expected ${SUBCOMMANDS.join(', ')}`);
  const ddlSql = sub === 'ddl' && !flags['unblock'] ? positional[1] : undefined;
  if (sub === 'ddl' && !flags['unblock'] && !ddlSql?.trim())
    throw new UsageError('mesh ddl needs the SQL: mesh ddl "ALTER TABLE …"');
  if (positional.length > (ddlSql !== undefined ? 2 : 1))
    throw new UsageError(`unexpected argument "${positional[ddlSql !== undefined ? 2 : 1]}"`);
  const scheme = (flags['scheme'] as string | undefined) ?? 'offset';
  if (scheme !== 'offset' && scheme !== 'snowflake') throw new UsageError('--scheme is offset or snowflake');
  if (flags['table'] !== undefined && sub !== 'check' && sub !== 'conflicts')
    throw new UsageError('--table is for `mesh check` and `mesh conflicts`');
  // --- mesh conflicts (issue 14): --since
  const sinceArg = (flags['since'] as string | undefined) ?? '24h';
  if (flags['since'] !== undefined && sub !== 'check' && sub !== 'conflicts')
    throw new UsageError('--since is for `mesh conflicts` and `mesh check`');
  const since = parseSince(sinceArg, Date.now());
  if (since === null) throw new UsageError(`--since: expected a duration like 1h or an ISO time, got "${sinceArg}"`);
  // --- end mesh conflicts
  const timeoutMs = ((flags['timeout'] as number | undefined) ?? 120) * 1000;
  let opened: Site[] = [];
  try {
    if (sub === 'add-site' || sub === 'remove-site') return await runSiteCommand(sub, flags, positional);
    const { sites, database } = sitesFromFlags(flags);
    opened = sites;
    if (sub === 'create') {
      const r = await createMesh(sites, pglogical, database, {
        progress: (l) => out(`  ${l}`),
        timeoutMs,
        preflight: { ...maxClock(flags), now: Date.now },
      });
      out(r.changes.length ? `mesh created: ${r.changes.length} change(s)` : 'mesh complete: nothing changed');
      for (const l of checkText(r.check)) out(l);
      return r.check.converged ? 0 : 1;
    }
    // --- pre-flight, sequences and DDL ---
    if (sub === 'preflight' || sub === 'sequences' || sub === 'ddl') {
      const conns = await Promise.all(sites.map(async (s) => ({ scope: s.scope, db: await s.sql() })));
      if (sub === 'preflight') {
        const r = await preflight(conns, {
          maxClockOffsetMs: maxClock(flags).maxClockOffsetMs ?? DEFAULT_MAX_CLOCK_OFFSET_MS,
          now: Date.now,
        });
        out(flags['json'] ? JSON.stringify(r, null, 2) : preflightText(r).join('\n'));
        return r.ok ? 0 : 1;
      }
      if (sub === 'sequences') {
        const apply = flags['apply'] === true;
        const plan = await meshSequences(conns, scheme, apply, (l) => out(`  ${l}`));
        out(planText(plan, apply).join('\n'));
        if (!apply && plan.actions.length) out('(a plan: run again with --apply to change every site)');
        return plan.refused.length ? 1 : 0;
      }
      if (flags['unblock']) {
        const failed = await unblockWrites(conns, database);
        for (const f of failed) err(`pgkeel mesh: could not unblock ${f}`);
        if (!failed.length) out('writes unblocked on every site');
        return failed.length ? 1 : 0;
      }
      await meshDdl(conns, pglogical, ddlSql as string, { progress: (l) => out(`  ${l}`), timeoutMs, database });
      out('mesh ddl: done');
      return 0;
    }
    // --- end pre-flight, sequences and DDL ---
    const record = await sites[0]?.readRecord();
    if (!record)
      throw new MeshError(
        'MESH_NOT_CREATED',
        `site ${sites[0]?.scope} has no mesh record in its DCS; run \`pgkeel mesh create\` first`,
      );
    if (sub === 'status') {
      const s = await meshStatus(record, sites, pglogical, () => performance.timeOrigin + performance.now());
      out(flags['json'] ? JSON.stringify(s, null, 2) : meshStatusText(s).join('\n'));
      return s.links.every((l) => l.state === 'replicating') ? 0 : 1;
    }
    const conns = await Promise.all(sites.map(async (s) => ({ scope: s.scope, db: await s.sql() })));
    const table = flags['table'] as string | undefined;
    // --- mesh conflicts (issue 14)
    if (sub === 'conflicts') {
      const h = await readHistory(conns, since, table);
      out(flags['json'] ? JSON.stringify(h, null, 2) : historyText(h).join('\n'));
      return 0;
    }
    // --- end mesh conflicts
    const r = await checkMesh(conns, pglogical, {
      ...(table !== undefined ? { table } : {}),
      barrierTimeoutMs: timeoutMs,
    });
    // --- mesh conflicts (issue 14): the history's section after the convergence lines; exit code unchanged
    const c = await checkConflicts(conns, r, since, table);
    const { rows, ...conflicts } = c;
    if (flags['json']) out(JSON.stringify({ ...r, conflicts }, null, 2));
    else
      out(
        [
          ...checkText(r),
          ...schemaDiffText(r.schemaDiffers),
          ...conflictsText(c.since, rows, c.keys, c.unreachable),
        ].join('\n'),
      );
    // --- end mesh conflicts
    return r.converged && r.schemaDiffers.length === 0 ? 0 : 1;
  } catch (e) {
    if (!(e instanceof MeshError)) throw e;
    err(`pgkeel mesh: ${e.code}: ${e.message}`);
    if (e.context.detail) err(e.context.detail);
    return e.code === 'MESH_USAGE' ? 2 : 1;
  } finally {
    for (const s of opened) await s[Symbol.asyncDispose]();
  }
}
