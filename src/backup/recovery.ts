/**
 * Recovery targets and the settings a restored data directory gets: what `pgkeel restore --target-*` means, checked
 * before anything is touched, and rendered as the lines appended to postgresql.auto.conf (read after postgresql.conf
 * and any file it includes, so these win over a backed-up pgkeel member's own settings). Pure.
 *
 * PostgreSQL 15 (runtime-config-wal.html#RUNTIME-CONFIG-WAL-RECOVERY-TARGET): at most one recovery_target_* is set;
 * none means "replay all archived WAL" (latest). recovery_target_action applies only when a target is reached, so
 * `latest` promotes at the end of the archive whatever the action — asking it to pause or shut down is refused here
 * rather than silently ignored by the server. recovery_target_timeline is 'latest' so a target after a failover
 * (timeline 2 and its history file in the archive) is reachable from a backup taken on timeline 1.
 */
import { hasControlChar } from '../config/schema.js';
import { formatLsn, parseLsn } from './catalog.js';

export type RecoveryTarget =
  | { readonly kind: 'time'; readonly time: string }
  | { readonly kind: 'lsn'; readonly lsn: string }
  | { readonly kind: 'xid'; readonly xid: string }
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: 'immediate' }
  | { readonly kind: 'latest' };

export const RECOVERY_ACTIONS = ['promote', 'pause', 'shutdown'] as const;
export type RecoveryAction = (typeof RECOVERY_ACTIONS)[number];

/** A checked recovery request: the target normalized (LSN upper-case, time with its zone spelled out). */
export interface Recovery {
  readonly target: RecoveryTarget;
  readonly action: RecoveryAction;
  /** Stop just after the target (true, PostgreSQL's default) or just before it; time, LSN and xid only. */
  readonly inclusive: boolean;
}

/** A recovery request that cannot work: the message says what was wrong and what is expected. */
export class RecoveryTargetError extends Error {
  override readonly name = 'RecoveryTargetError';
  readonly code = 'RECOVERY_TARGET_INVALID';
}

/** PostgreSQL's restore point names are at most MAXFNAMELEN - 1 bytes. */
const MAX_NAME_BYTES = 63;
const TIME_RE =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?\s*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)$/;

export interface ParsedTime {
  /** The instant, to the millisecond (for choosing a backup). */
  readonly at: Date;
  /** The text PostgreSQL gets: microseconds and the zone exactly as given, ISO-spelled. */
  readonly text: string;
}

/**
 * A recovery target time: ISO 8601 (`T` or a space), seconds and up to 6 fractional digits optional, and a zone
 * required (`Z`, `UTC`, `+02`, `+05:30`, `-0800`). A time without a zone would be read in the restored server's
 * TimeZone setting — at 3 a.m. nobody should have to guess which one — so it is refused with an example.
 */
export function parseTargetTime(s: string): ParsedTime {
  const m = TIME_RE.exec(s.trim());
  const example = 'e.g. "2026-12-03 14:03:00+00" or "2026-12-03T15:03:00.250+01:00"';
  if (!m) {
    const noZone = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(s.trim());
    throw new RecoveryTargetError(
      noZone
        ? `recovery target time "${s}" has no time zone; add one (Z, +00, +01:00), ${example}`
        : `recovery target time "${s}" is not an ISO 8601 time with a zone, ${example}`,
    );
  }
  const [ys, mos, ds, hs, mis] = m.slice(1, 6) as [string, string, string, string, string];
  const sec = m[6] ?? '00';
  const frac = m[7] ?? '';
  const [y, mo, d, h, mi, se] = [ys, mos, ds, hs, mis, sec].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const offsetMin = zoneMinutes(m[8] ?? 'Z');
  const utc = Date.UTC(y, mo - 1, d, h, mi, se, Number(frac.padEnd(3, '0').slice(0, 3)));
  const check = new Date(Date.UTC(y, mo - 1, d, h, mi, se));
  const valid =
    check.getUTCFullYear() === y &&
    check.getUTCMonth() === mo - 1 &&
    check.getUTCDate() === d &&
    check.getUTCHours() === h &&
    check.getUTCMinutes() === mi &&
    check.getUTCSeconds() === se;
  if (!valid) throw new RecoveryTargetError(`recovery target time "${s}" is not a valid date and time, ${example}`);
  if (Math.abs(offsetMin) > 15 * 60)
    throw new RecoveryTargetError(`recovery target time "${s}" has a zone offset beyond ±15:00`);
  const sign = offsetMin < 0 ? '-' : '+';
  const abs = Math.abs(offsetMin);
  const zoneText = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return {
    at: new Date(utc - offsetMin * 60_000),
    text: `${ys}-${mos}-${ds} ${hs}:${mis}:${sec}${frac ? `.${frac}` : ''}${zoneText}`,
  };
}

function zoneMinutes(zone: string): number {
  if (/^(z|utc)$/i.test(zone)) return 0;
  const m = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone) as RegExpExecArray;
  const v = Number(m[2]) * 60 + Number(m[3] ?? '0');
  return m[1] === '-' ? -v : v;
}

/** Checks and normalizes a target; throws RecoveryTargetError naming the problem. */
export function checkTarget(t: RecoveryTarget): RecoveryTarget {
  switch (t.kind) {
    case 'time':
      return { kind: 'time', time: parseTargetTime(t.time).text };
    case 'lsn':
      try {
        return { kind: 'lsn', lsn: formatLsn(parseLsn(t.lsn.trim())) };
      } catch {
        throw new RecoveryTargetError(`recovery target LSN "${t.lsn}" is not an LSN (two hex numbers, e.g. 0/3000060)`);
      }
    case 'xid': {
      const x = t.xid.trim();
      // recovery_target_xid reads 64 bits (pg_current_xact_id()'s epoch-qualified form works too); 0-2 are special.
      if (!/^\d{1,20}$/.test(x) || BigInt(x) < 3n || BigInt(x) > 0xffff_ffff_ffff_ffffn)
        throw new RecoveryTargetError(
          `recovery target xid "${t.xid}" is not a transaction id (a decimal number ≥ 3, as pg_current_xact_id() shows it)`,
        );
      return { kind: 'xid', xid: BigInt(x).toString() };
    }
    case 'name': {
      if (t.name === '') throw new RecoveryTargetError('recovery target name is empty');
      if (Buffer.byteLength(t.name) > MAX_NAME_BYTES)
        throw new RecoveryTargetError(
          `recovery target name "${t.name}" is longer than ${MAX_NAME_BYTES} bytes (PostgreSQL's limit for restore points)`,
        );
      if (hasControlChar(t.name))
        throw new RecoveryTargetError(`recovery target name ${JSON.stringify(t.name)} has a control character`);
      return t;
    }
    case 'immediate':
    case 'latest':
      return t;
  }
}

/** A checked Recovery from its parts (action default promote, inclusive default true). */
export function recoveryOf(target: RecoveryTarget, action: string = 'promote', inclusive = true): Recovery {
  if (!(RECOVERY_ACTIONS as readonly string[]).includes(action))
    throw new RecoveryTargetError(`recovery target action "${action}" is not one of ${RECOVERY_ACTIONS.join(', ')}`);
  const t = checkTarget(target);
  if (t.kind === 'latest' && action !== 'promote')
    throw new RecoveryTargetError(
      `recovery target action "${action}" needs a target (time, LSN, xid, name or immediate): without one, recovery replays all archived WAL and then promotes`,
    );
  return { target: t, action: action as RecoveryAction, inclusive };
}

/** What selectBackup needs to pick a backup that ends before the target. */
export function selectionOf(target: RecoveryTarget): { time?: Date; lsn?: bigint } {
  if (target.kind === 'time') return { time: parseTargetTime(target.time).at };
  if (target.kind === 'lsn') return { lsn: parseLsn(target.lsn) };
  return {};
}

/** A single-quoted postgresql.conf string, read back by PostgreSQL's GUC_scanstr exactly as given. */
export function confString(v: string): string {
  // A quoted value cannot span lines: a newline would end it and start a new (attacker-chosen) setting.
  if (hasControlChar(v))
    throw new RecoveryTargetError(`refusing a setting value with a control character: ${JSON.stringify(v)}`);
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

export interface RecoveryConfOptions {
  /** The shell command PostgreSQL runs to fetch a WAL file (%f, %p). */
  readonly restoreCommand: string;
  /** Keep archiving in the restored copy (default false: archive_mode = off, so it never writes to the repo). */
  readonly archiving?: boolean;
  /** A comment line naming what was restored (backup id, time); free text, control characters refused. */
  readonly comment?: string;
}

/** The recovery settings as [name, rendered value] pairs, in the order written. */
export function recoverySettings(r: Recovery, opts: RecoveryConfOptions): [string, string][] {
  if (opts.restoreCommand.trim() === '') throw new RecoveryTargetError('restore_command is empty');
  const out: [string, string][] = [['restore_command', confString(opts.restoreCommand)]];
  const t = r.target;
  if (t.kind === 'time') out.push(['recovery_target_time', confString(t.time)]);
  else if (t.kind === 'lsn') out.push(['recovery_target_lsn', confString(t.lsn)]);
  else if (t.kind === 'xid') out.push(['recovery_target_xid', confString(t.xid)]);
  else if (t.kind === 'name') out.push(['recovery_target_name', confString(t.name)]);
  else if (t.kind === 'immediate') out.push(['recovery_target', confString('immediate')]);
  if (t.kind === 'time' || t.kind === 'lsn' || t.kind === 'xid')
    out.push(['recovery_target_inclusive', r.inclusive ? 'on' : 'off']);
  if (t.kind !== 'latest') out.push(['recovery_target_action', confString(r.action)]);
  out.push(['recovery_target_timeline', confString('latest')]);
  if (!opts.archiving) out.push(['archive_mode', 'off']);
  return out;
}

/** The block appended to postgresql.auto.conf (starts and ends with a newline). */
export function renderRecoveryConf(r: Recovery, opts: RecoveryConfOptions): string {
  const head =
    '# Added by pgkeel restore: recovery from the backup repository. Remove these lines once recovery is done.';
  if (opts.comment !== undefined && hasControlChar(opts.comment))
    throw new RecoveryTargetError(`refusing a comment with a control character: ${JSON.stringify(opts.comment)}`);
  const lines = [head, ...(opts.comment ? [`# ${opts.comment}`] : [])];
  for (const [k, v] of recoverySettings(r, opts)) lines.push(`${k} = ${v}`);
  return `\n${lines.join('\n')}\n`;
}

/** A one-line description of a target for messages and progress ("time 2026-12-03 14:03:00+00:00"). */
export function describeTarget(t: RecoveryTarget): string {
  switch (t.kind) {
    case 'time':
      return `time ${t.time}`;
    case 'lsn':
      return `LSN ${t.lsn}`;
    case 'xid':
      return `xid ${t.xid}`;
    case 'name':
      return `restore point "${t.name}"`;
    case 'immediate':
      return 'the end of the backup (immediate)';
    case 'latest':
      return 'the end of the archived WAL (latest)';
  }
}
