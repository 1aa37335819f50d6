/**
 * `pgkeel backup [list|verify|expire]`: argv → src/backup/, printing tables and JSON. Exit codes: 0 ok, 1 failed
 * (a BackupError, printed with its code), 2 invalid usage or configuration.
 */
import { backupContext } from '../backup/context.js';
import { isBackupError } from '../backup/errors.js';
import { BACKUP_TYPES, type BackupType, listRecords } from '../backup/catalog.js';
import { expire } from '../backup/expire.js';
import { connectSource, superuserSession, switchWal } from '../backup/pg-source.js';
import { backupReport, humanAge, humanBytes } from '../backup/report.js';
import { openStore, runBackup } from '../backup/run.js';
import { verifyRepository } from '../backup/verify.js';
import { verifyByRestore } from '../backup/verify-restore.js';
import { DEFAULT_DIR } from '../local/layout.js';
import { type FlagSpec, parseArgs, UsageError, usage } from './args.js';
import { renderTable } from './table.js';

const out = (s: string) => process.stdout.write(`${s}\n`);
const err = (s: string) => process.stderr.write(`${s}\n`);

export const common: Record<string, FlagSpec> = {
  dir: { type: 'string', doc: `local cluster made by \`pgkeel up\` (default ./${DEFAULT_DIR})`, placeholder: 'DIR' },
  config: { type: 'string', short: 'c', doc: 'node config (its backup section and the DCS)', placeholder: 'FILE' },
  json: { type: 'boolean', doc: 'print JSON' },
  help: { type: 'boolean', short: 'h', doc: 'show this help' },
};

export const SPECS: Record<string, Record<string, FlagSpec>> = {
  run: {
    ...common,
    type: { type: 'string', doc: 'full, incr or diff (default full)', placeholder: 'TYPE' },
    from: { type: 'string', doc: 'auto, leader, replica or a member name (default: backup.from)', placeholder: 'WHO' },
    delta: { type: 'boolean', doc: 'compare files by checksum, not size + mtime (incr/diff)' },
  },
  list: common,
  expire: { ...common, 'dry-run': { type: 'boolean', doc: 'only print what would be removed' } },
  verify: {
    ...common,
    restore: {
      type: 'boolean',
      doc: 'also restore the newest backup with the archived WAL on a private port, run pg_amcheck on every database and report the restore time',
    },
  },
};

const HELP = `Usage: pgkeel backup [--type full|incr|diff] [--from auto|leader|replica|NAME] [--delta] [--json] [--dir D | -c node.yml]
       pgkeel backup list [--json]
       pgkeel backup expire [--dry-run]
       pgkeel backup verify [ID] [--restore]

Backups and WAL go to the repository in the cluster's backup settings (docs/backup.md).`;

export async function runBackupCommand(args: string[]): Promise<number> {
  try {
    return await backupCommand(args);
  } catch (e) {
    if (!isBackupError(e)) throw e;
    err(`pgkeel backup: ${e.code}: ${e.message}`);
    return 1;
  }
}

async function backupCommand(args: string[]): Promise<number> {
  const sub = args[0] && !args[0].startsWith('-') ? args[0] : 'run';
  const rest = sub === 'run' ? args : args.slice(1);
  const spec = SPECS[sub];
  if (!spec) throw new UsageError(`unknown backup command "${sub}"; run \`pgkeel backup --help\``);
  const { flags, positional } = parseArgs(rest, spec);
  if (positional.length > (sub === 'verify' ? 1 : 0))
    throw new UsageError(`unexpected argument "${positional.at(-1)}"`);
  if (flags['help']) {
    out(`${HELP}\n\n${usage(spec)}`);
    return 0;
  }
  const where = {
    dir: (flags['dir'] as string | undefined) ?? DEFAULT_DIR,
    config: flags['config'] as string | undefined,
  };
  const json = flags['json'] === true;
  await using ctx = await backupContext(where);
  switch (sub) {
    case 'run': {
      const type = (flags['type'] as string | undefined) ?? 'full';
      if (!(BACKUP_TYPES as readonly string[]).includes(type))
        throw new UsageError(`--type expects full, incr or diff, got "${type}"`);
      const rec = await runBackup(
        {
          settings: ctx.settings,
          dcs: ctx.dcs,
          leaseKey: ctx.keys.backup,
          readView: () => ctx.readView(),
          connectSource: (m) => connectSource(ctx.cfg, m),
          switchWal: (m, point) => switchWal(ctx.cfg, m, point),
          connectSql: (m) => superuserSession(ctx.cfg, m),
          now: () => new Date(),
          progress: json ? undefined : (l) => err(l),
          who: 'pgkeel backup (cli)',
        },
        { type: type as BackupType, from: flags['from'] as string | undefined, delta: flags['delta'] === true },
      );
      if (json) out(JSON.stringify(rec, null, 2));
      else {
        err(
          `backup ${rec.id} done: ${humanBytes(rec.bytes)} of data, ${humanBytes(rec.repo_bytes)} stored, ${rec.duration_s} s, from ${rec.member}`,
        );
        out(rec.id);
      }
      return 0;
    }
    case 'list': {
      const store = await openStore(ctx.settings, false);
      const r = await backupReport(store);
      if (json) {
        out(JSON.stringify(r, null, 2));
        return 0;
      }
      out(`Repository ${r.repo}`);
      out(
        renderTable([
          ['Id', 'Type', 'Status', 'Member', 'TL', 'Start LSN', 'Stop', 'Data', 'Stored', 'Took'],
          ...r.backups.map((b) => [
            b.id,
            b.type,
            b.status,
            b.member,
            String(b.timeline),
            b.start_lsn,
            b.stop_time ?? '',
            humanBytes(b.bytes),
            humanBytes(b.repo_bytes),
            b.duration_s === null ? '' : `${b.duration_s} s`,
          ]),
        ]),
      );
      out(`WAL archived: ${r.wal.count} segments, ${r.wal.first ?? '-'} .. ${r.wal.last ?? '-'}`);
      out(
        r.recoverable_from
          ? `Recoverable: ${r.recoverable_from} .. ${r.recoverable_to} (last archived ${humanAge(Date.now() - new Date(r.wal.last_archived_time ?? 0).getTime())} ago)`
          : 'Recoverable: nothing yet (no usable backup)',
      );
      return 0;
    }
    case 'verify': {
      const store = await openStore(ctx.settings, false);
      const id = positional[0];
      const report = await verifyRepository(store, { id });
      const restored =
        flags['restore'] === true && report.problems.length === 0
          ? await verifyByRestore(store, ctx.settings.encryption_key_file, err)
          : null;
      const problems = [...report.problems, ...(restored?.problems ?? [])];
      if (json) out(JSON.stringify({ ...report, restore: restored, problems, ok: problems.length === 0 }, null, 2));
      else {
        out(
          `checked ${report.backups.length} backup(s): ${report.files} stored files (${humanBytes(report.bytes)}), ${report.walChecked} WAL segments`,
        );
        if (restored) out(restored.summary);
        for (const p of problems) out(`PROBLEM: ${p.problem}`);
        out(problems.length ? `verify FAILED: ${problems.length} problem(s)` : 'verify OK');
      }
      return problems.length ? 1 : 0;
    }
    case 'expire': {
      const store = await openStore(ctx.settings, false);
      const dry = flags['dry-run'] === true;
      const res = await expire(store, await listRecords(store), ctx.settings.retention, new Date(), dry);
      if (json) out(JSON.stringify(res, null, 2));
      else {
        out(`retention: ${res.reason}`);
        out(`${dry ? 'would remove' : 'removed'} backups: ${res.remove.join(', ') || 'none'}`);
        out(`${dry ? 'would remove' : 'removed'} WAL files: ${res.walRemoved.length}`);
        out(`kept backups: ${res.keep.join(', ') || 'none'}`);
      }
      return 0;
    }
  }
  return 2;
}
