/**
 * `pgkeel report`: pgBadger (https://github.com/darold/pgbadger) over the members' PostgreSQL logs → one HTML file.
 * The arguments are built by a pure function; finding and running the program is the thin shell around it.
 * pgBadger reads stderr logs given the log_line_prefix that wrote them (`--prefix`); `--begin` keeps only lines at or
 * after the given local time of the log (pgkeel logs in UTC: log_timezone, postgres/conf.ts).
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { run } from '../../lib/proc.js';
import type { MemberLog } from './logs.js';
import { ReportError } from './errors.js';

export const INSTALL_HINT =
  'install it with `apt-get install pgbadger` (Debian/Ubuntu; `dnf install pgbadger` on RHEL)';

export interface ReportPlan {
  readonly logs: readonly string[];
  readonly prefix: string;
  /** Only log lines at or after this moment (ms since the epoch); undefined: everything. */
  readonly since?: number;
  readonly out: string;
}

/** "2026-12-03 07:15:00": pgBadger's --begin format, in UTC like the logs. */
export function pgbadgerTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

export function pgbadgerArgs(p: ReportPlan): string[] {
  return [
    '--format',
    'stderr',
    '--prefix',
    p.prefix,
    ...(p.since !== undefined ? ['--begin', pgbadgerTime(p.since)] : []),
    '--outfile',
    p.out,
    '--quiet',
    '--',
    ...p.logs,
  ];
}

/** The first executable `name` on `path` (a PATH value), or null. */
export function findOnPath(name: string, path: string | undefined): string | null {
  for (const dir of (path ?? '').split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      if (statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** The logs that exist (a member never started has none); REPORT_NO_LOGS when none does. */
export function existingLogs(logs: readonly MemberLog[]): MemberLog[] {
  const found = logs.filter((l) => existsSync(l.file) && statSync(l.file).size > 0);
  if (found.length === 0)
    throw new ReportError(
      'REPORT_NO_LOGS',
      `no PostgreSQL log to analyse: looked for ${logs.map((l) => l.file).join(', ') || 'nothing'}`,
      { files: logs.map((l) => l.file) },
    );
  return found;
}

/** Runs pgBadger; the report's absolute path. REPORT_PGBADGER_MISSING / REPORT_PGBADGER_FAILED otherwise. */
export async function runPgbadger(
  plan: ReportPlan,
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 600_000,
): Promise<string> {
  const bin = findOnPath('pgbadger', env['PATH']);
  if (!bin)
    throw new ReportError(
      'REPORT_PGBADGER_MISSING',
      `pgBadger is not installed (no pgbadger on PATH): ${INSTALL_HINT}`,
    );
  const out = resolve(plan.out);
  const r = await run(bin, pgbadgerArgs({ ...plan, out }), { env, asPostgres: false, timeoutMs });
  if (r.code !== 0 || !existsSync(out)) {
    const detail = (r.stderr || r.stdout).trim().split('\n').slice(-10).join('\n');
    throw new ReportError(
      'REPORT_PGBADGER_FAILED',
      `pgbadger ${r.code !== 0 ? `exited with ${r.code ?? r.signal}` : `wrote no ${out}`}`,
      { detail },
    );
  }
  return out;
}
