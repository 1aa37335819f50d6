/**
 * `pgkeel dump [list|expire]`: logical backups (src/backup/dump.ts) — argv in, tables and JSON out. Exit codes: 0 ok,
 * 1 failed (a BackupError, printed with its code), 2 invalid usage or configuration.
 */
import { backupContext } from '../backup/context.js';
import { expireDumps, listDumps, runDump } from '../backup/dump.js';
import { extractDump } from '../backup/dump-extract.js';
import { isBackupError } from '../backup/errors.js';
import { humanBytes } from '../backup/report.js';
import { openStore } from '../backup/run.js';
import { DEFAULT_DIR } from '../local/layout.js';
import { SPECS as BACKUP_SPECS, common } from './backup-cmd.js';
import { type FlagSpec, parseArgs, UsageError, usage } from './args.js';
import { renderTable } from './table.js';

const out = (s: string) => process.stdout.write(`${s}\n`);
const err = (s: string) => process.stderr.write(`${s}\n`);

const SPECS: Record<string, Record<string, FlagSpec>> = {
  run: {
    ...common,
    from: BACKUP_SPECS['run']?.['from'] as FlagSpec,
    jobs: { type: 'number', doc: 'parallel pg_dump jobs per database (default 2)', placeholder: 'N' },
  },
  list: common,
  extract: {
    ...common,
    to: { type: 'string', doc: 'directory to unpack into (created if missing)', placeholder: 'DIR' },
    db: { type: 'list', doc: 'only this database (repeatable; default all)', placeholder: 'NAME' },
  },
  expire: BACKUP_SPECS['expire'] as Record<string, FlagSpec>,
};

const HELP = `Usage: pgkeel dump [--from auto|leader|replica|NAME] [--jobs N] [--json] [--dir D | -c node.yml]
       pgkeel dump list [--json]
       pgkeel dump extract ID --to DIR [--db NAME]...
       pgkeel dump expire [--dry-run]

A dump is pg_dumpall --globals-only plus pg_dump -Fd of every database that accepts connections, read as the
superuser from a replica (backup.from), stored in the backup repository under dumps/<id>/. Expiry keeps the newest
backup.retention.full dumps. pg_dump connects over TCP: pgkeel's pg_hba admits the superuser from 127.0.0.1 only.

Restore: unpack (decrypted and decompressed) with \`pgkeel dump extract ID --to /tmp/d\` — /tmp/d/globals.sql and
one pg_dump directory per database (a name with characters outside A-Za-z0-9_.- is escaped: "odd name" → odd+20name;
\`--json\` maps them) — then:
  psql -h HOST -p PORT -U postgres -f /tmp/d/globals.sql          # roles and tablespaces, on a new cluster
  createdb -h HOST -p PORT -U postgres app
  pg_restore -h HOST -p PORT -U postgres -d app -j 4 /tmp/d/app
Without pgkeel (an unencrypted repository, lz4): lz4 -dc REPO/dumps/ID/app.tar.lz4 | tar -xf - -C /tmp/d`;

export async function runDumpCommand(args: string[]): Promise<number> {
  try {
    return await dumpCommand(args);
  } catch (e) {
    if (!isBackupError(e)) throw e;
    err(`pgkeel dump: ${e.code}: ${e.message}`);
    return 1;
  }
}

async function dumpCommand(args: string[]): Promise<number> {
  const sub = args[0] && !args[0].startsWith('-') ? args[0] : 'run';
  const spec = SPECS[sub];
  if (!spec) throw new UsageError(`unknown dump command "${sub}"; run \`pgkeel dump --help\``);
  const { flags, positional } = parseArgs(sub === 'run' ? args : args.slice(1), spec);
  if (positional.length > (sub === 'extract' ? 1 : 0))
    throw new UsageError(`unexpected argument "${positional.at(-1)}"`);
  if (flags['help']) {
    out(`${HELP}\n\n${usage(spec)}`);
    return 0;
  }
  const jobs = flags['jobs'] as number | undefined;
  if (jobs !== undefined && (!Number.isInteger(jobs) || jobs < 1 || jobs > 64))
    throw new UsageError(`--jobs expects a whole number from 1 to 64, got ${jobs}`);
  const json = flags['json'] === true;
  await using ctx = await backupContext({
    dir: (flags['dir'] as string | undefined) ?? DEFAULT_DIR,
    config: flags['config'] as string | undefined,
  });
  if (sub === 'run') {
    const rec = await runDump(
      {
        settings: ctx.settings,
        superuser: ctx.cfg.postgresql.authentication.superuser,
        dcs: ctx.dcs,
        leaseKey: ctx.keys.backup,
        readView: () => ctx.readView(),
        now: () => new Date(),
        progress: json ? undefined : err,
        who: 'pgkeel dump (cli)',
        binDir: ctx.cfg.postgresql.bin_dir,
      },
      { from: flags['from'] as string | undefined, jobs },
    );
    if (json) out(JSON.stringify(rec, null, 2));
    else {
      err(
        `dump ${rec.id} done: ${rec.databases.length} database(s), ${humanBytes(rec.bytes)} dumped, ${humanBytes(rec.repo_bytes)} stored, ${rec.duration_s} s, from ${rec.member}`,
      );
      out(rec.id);
    }
    return 0;
  }
  const store = await openStore(ctx.settings, false);
  if (sub === 'list') {
    const dumps = await listDumps(store);
    if (json) {
      out(
        JSON.stringify(
          { repo: store.repo.location, dumps: dumps.map((d) => ({ ...d, path: `dumps/${d.id}` })) },
          null,
          2,
        ),
      );
      return 0;
    }
    out(`Repository ${store.repo.location}`);
    out(
      renderTable([
        ['Id', 'Status', 'Member', 'Databases', 'Stop', 'Dumped', 'Stored', 'Took'],
        ...dumps.map((d) => [
          d.id,
          d.status,
          d.member,
          d.databases.map((db) => db.name).join(', '),
          d.stop_time ?? '',
          humanBytes(d.bytes),
          humanBytes(d.repo_bytes),
          d.duration_s === null ? '' : `${d.duration_s} s`,
        ]),
      ]),
    );
    return 0;
  }
  if (sub === 'extract') {
    const id = positional[0];
    const to = flags['to'] as string | undefined;
    if (!id || !to) throw new UsageError('pgkeel dump extract needs a dump id and --to DIR');
    const x = await extractDump(store, id, to, flags['db'] as string[] | undefined);
    if (json) out(JSON.stringify(x, null, 2));
    else for (const d of x.databases) out(`${d.name}\t${d.dir}`);
    if (!json) err(`globals: ${x.globals}; restore a database with pg_restore -d NAME -j 4 DIR`);
    return 0;
  }
  const dry = flags['dry-run'] === true;
  const plan = await expireDumps(store, ctx.settings.retention.full, dry);
  if (json) out(JSON.stringify({ ...plan, dry_run: dry }, null, 2));
  else {
    out(`retention: ${plan.reason}`);
    out(`${dry ? 'would remove' : 'removed'} dumps: ${plan.remove.join(', ') || 'none'}`);
    out(`kept dumps: ${plan.keep.join(', ') || 'none'}`);
  }
  return 0;
}
