/**
 * `pgkeel report [--dir DIR | -c node.yml] [--since 24h] [--out report.html]`: pgBadger over the members' PostgreSQL
 * logs (src/observe/report/). Exit codes: 0 report written, 1 failed (a ReportError, printed with its code),
 * 2 invalid usage or configuration.
 */
import { parseDuration } from '../backup/cron.js';
import { DEFAULT_DIR, LocalClusterError, readLocalCluster } from '../local/layout.js';
import { ReportError } from '../observe/report/errors.js';
import { localClusterLogs, logLinePrefix, type MemberLog, nodeLogs } from '../observe/report/logs.js';
import { existingLogs, runPgbadger } from '../observe/report/pgbadger.js';
import { type FlagSpec, parseArgs, UsageError, usage } from './args.js';

const out = (s: string) => process.stdout.write(`${s}\n`);
const err = (s: string) => process.stderr.write(`${s}\n`);

const SPEC: Record<string, FlagSpec> = {
  dir: {
    type: 'string',
    doc: `local cluster directory (default ./${DEFAULT_DIR}): every node's log`,
    placeholder: 'DIR',
  },
  config: { type: 'string', short: 'c', doc: "a node's config: this node's log only", placeholder: 'FILE' },
  since: {
    type: 'string',
    doc: 'only log lines this recent: a duration (90m, 24h, 7d) or an ISO time (default 24h; "all": everything)',
    placeholder: 'WHEN',
  },
  out: { type: 'string', short: 'o', doc: 'the HTML report to write (default report.html)', placeholder: 'FILE' },
  prefix: {
    type: 'string',
    doc: "the logs' log_line_prefix (default: read from the data directory's postgresql.pgkeel.conf)",
    placeholder: 'P',
  },
  help: { type: 'boolean', short: 'h', doc: 'show this help' },
};

const HELP = `Usage: pgkeel report [--dir DIR | -c node.yml] [--since 24h] [--out report.html]

Runs pgBadger (apt-get install pgbadger) over the PostgreSQL logs and writes one HTML report: slowest and most
frequent queries (statements over log_min_duration_statement, default 1 s), lock waits, temporary files,
checkpoints, autovacuum, errors. With --dir: every node of a local cluster; with -c: this node only (run it on
each host for the others). docs/observe.md describes the logging defaults behind it.`;

/** --since: a duration back from now, an ISO-8601 time, or "all" (undefined). */
export function sinceMs(v: string, now: number): number | undefined {
  if (v === 'all') return undefined;
  if (/^\d+\s*[smhdw]$/.test(v.trim())) return now - parseDuration(v) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new UsageError(`--since expects a duration (24h), an ISO time or "all", got "${v}"`);
  return t;
}

export async function runReportCommand(args: string[]): Promise<number> {
  const { flags, positional } = parseArgs(args, SPEC);
  if (flags['help']) {
    out(`${HELP}\n\n${usage(SPEC)}`);
    return 0;
  }
  if (positional.length > 0) throw new UsageError(`unexpected argument "${positional[0]}"`);
  const config = flags['config'] as string | undefined;
  const dirFlag = flags['dir'] as string | undefined;
  if (config && dirFlag) throw new UsageError('give --dir or -c, not both');
  const since = sinceMs((flags['since'] as string | undefined) ?? '24h', Date.now());
  try {
    let logs: MemberLog[];
    if (config) {
      logs = nodeLogs(config);
      out(`this node's log only (${logs[0]?.member}); run \`pgkeel report -c\` on the other members' hosts for theirs`);
    } else {
      const dir = dirFlag ?? DEFAULT_DIR;
      const lc = readLocalCluster(dir);
      if (!lc)
        throw new LocalClusterError(`no pgkeel cluster in ${dir} (no cluster.json); give --dir DIR or -c node.yml`);
      logs = localClusterLogs(lc);
    }
    const found = existingLogs(logs);
    const prefix = (flags['prefix'] as string | undefined) ?? logLinePrefix(found[0]?.dataDir ?? '');
    const file = await runPgbadger({
      logs: found.map((l) => l.file),
      prefix,
      since,
      out: (flags['out'] as string | undefined) ?? 'report.html',
    });
    for (const l of found) out(`read ${l.member}: ${l.file}`);
    out(`report: ${file}`);
    return 0;
  } catch (e) {
    if (!(e instanceof ReportError)) throw e;
    err(`pgkeel report: ${e.code}: ${e.message}`);
    if (e.context.detail) err(e.context.detail);
    return 1;
  }
}
