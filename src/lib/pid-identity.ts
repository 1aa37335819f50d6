/**
 * Is the pid in a pid file still the process pgkeel started? A pid is reused after its process exits, and a pid
 * file can be edited; signalling whatever now has that number could stop an unrelated (root) process. A pid file
 * therefore records the process's start time (field 22 of /proc/<pid>/stat, clock ticks since boot — unique per
 * pid for a boot), and the caller says which command line it expects. Both are checked before any signal.
 *
 * Pid file format: "<pid>\n<starttime>\n". Files written by older pgkeel hold only the pid; they are judged by the
 * command line alone.
 */
import { readFileSync } from 'node:fs';

export interface PidRecord {
  readonly pid: number;
  /** Start time in clock ticks since boot, or null for a pid file from an older pgkeel. */
  readonly startTime: string | null;
}

export interface ProcInfo {
  readonly startTime: string;
  readonly zombie: boolean;
  readonly argv: readonly string[];
}

export type PidVerdict =
  | { readonly kind: 'none' }
  | { readonly kind: 'dead'; readonly pid: number }
  | { readonly kind: 'ours'; readonly pid: number }
  | { readonly kind: 'foreign'; readonly pid: number; readonly reason: string };

export function parsePidFile(text: string): PidRecord | null {
  const [first, second] = text.split('\n').map((l) => l.trim());
  const pid = Number(first);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  return { pid, startTime: second && /^\d+$/.test(second) ? second : null };
}

export function formatPidFile(pid: number, startTime: string | null): string {
  return `${pid}\n${startTime ?? ''}\n`;
}

/**
 * Fields of /proc/<pid>/stat after the command name: the name is in parentheses and may itself hold spaces and
 * parentheses, so counting starts after the last ')'. Field 3 is the state, field 22 the start time.
 */
export function parseProcStat(stat: string): { state: string; startTime: string } | null {
  const close = stat.lastIndexOf(')');
  if (close < 0) return null;
  const rest = stat.slice(close + 2).split(' ');
  const state = rest[0];
  const startTime = rest[22 - 3];
  if (!state || !startTime || !/^\d+$/.test(startTime)) return null;
  return { state, startTime };
}

/** /proc/<pid>/cmdline: NUL-separated arguments (with a trailing NUL). */
export function parseCmdline(raw: string): string[] {
  const parts = raw.split('\0');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/** What /proc says about a pid now, or null when there is no such process. */
export function procInfo(pid: number): ProcInfo | null {
  try {
    const st = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    if (!st) return null;
    const argv = parseCmdline(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
    return { startTime: st.startTime, zombie: st.state === 'Z', argv };
  } catch {
    return null;
  }
}

/** The start time to record for a process pgkeel just started (null where there is no /proc). */
export function startTimeOf(pid: number): string | null {
  return procInfo(pid)?.startTime ?? null;
}

/** Pure: the verdict on a pid file's record given what /proc shows for that pid. */
export function judgePid(
  rec: PidRecord | null,
  proc: ProcInfo | null,
  expected: (argv: readonly string[]) => boolean,
  what: string,
): PidVerdict {
  if (!rec) return { kind: 'none' };
  if (!proc || proc.zombie) return { kind: 'dead', pid: rec.pid };
  if (rec.startTime !== null && rec.startTime !== proc.startTime) {
    return {
      kind: 'foreign',
      pid: rec.pid,
      reason: `process ${rec.pid}, which is not ${what}: it started at tick ${proc.startTime}, not at tick ${rec.startTime} as recorded (it runs: ${shortCmd(proc.argv)})`,
    };
  }
  if (!expected(proc.argv))
    return {
      kind: 'foreign',
      pid: rec.pid,
      reason: `process ${rec.pid}, which is not ${what} (it runs: ${shortCmd(proc.argv)})`,
    };
  return { kind: 'ours', pid: rec.pid };
}

const shortCmd = (argv: readonly string[]) => {
  const s = argv.join(' ');
  return s.length > 120 ? `${s.slice(0, 117)}...` : s || '(no command line)';
};

/** Reads a pid file and judges it against /proc. */
export function checkPidFile(file: string, expected: (argv: readonly string[]) => boolean, what: string): PidVerdict {
  let rec: PidRecord | null;
  try {
    rec = parsePidFile(readFileSync(file, 'utf8'));
  } catch {
    rec = null;
  }
  return judgePid(rec, rec ? procInfo(rec.pid) : null, expected, what);
}

/** True when argv has `flag value` or `flag=value`. */
export function hasOption(argv: readonly string[], flag: string, value: string): boolean {
  return argv.some((a, i) => (a === flag && argv[i + 1] === value) || a === `${flag}=${value}`);
}
