/**
 * Why PostgreSQL is not doing what the agent expects, read from the end of its log: a replica that does not stream
 * (its WAL receiver fails every wal_retrieve_retry_interval and says why only there) or a postmaster that keeps
 * stopping soon after it started. The agent shows the line in its cycle summary, `/patroni` and the log — a full
 * disk must not look like "starting" with no error.
 *
 * `lastProblem` is pure (text and `now` in, verdict out); `readLogTail` is the one read, bounded in bytes.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export type ProblemKind =
  /** ENOSPC: the data directory's filesystem is full. */
  | 'disk_full'
  /** The upstream no longer has the WAL this replica needs (its slot passed max_slot_wal_keep_size, or no slot and
   *  wal_keep_size was exceeded): streaming can never resume; the replica must be re-cloned (or use an archive). */
  | 'wal_removed'
  /** The upstream refused the login or the connection (authentication, pg_hba, TLS). */
  | 'connection'
  | 'other';

export interface LogProblem {
  readonly kind: ProblemKind;
  /** The log line's message, without the prefix ("could not write to file …: No space left on device"). */
  readonly message: string;
  /** When it was logged (ms since the epoch), or null when the line's time could not be read. */
  readonly at: number | null;
}

/** `log_line_prefix = '%m [%p] %q%u@%d '`: "2026-12-02 19:47:57.118 UTC [3758] FATAL:  message". */
const LINE =
  /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) ?(UTC|GMT|[+-]\d\d(?::?\d\d)?)? .*?\b(PANIC|FATAL|ERROR):\s+(.*)$/;

function classify(message: string): ProblemKind {
  if (/No space left on device|could not extend file|disk full/i.test(message)) return 'disk_full';
  if (
    /requested WAL segment \S+ has already been removed|replication slot .* (?:has been invalidated|cannot be advanced)|can no longer get changes from replication slot/i.test(
      message,
    )
  )
    return 'wal_removed';
  if (
    /could not connect to the primary server|password authentication failed|no pg_hba\.conf entry|SSL|certificate/i.test(
      message,
    )
  )
    return 'connection';
  return 'other';
}

function timeOf(stamp: string, zone: string | undefined): number | null {
  const iso = `${stamp.replace(' ', 'T')}${!zone || zone === 'UTC' || zone === 'GMT' ? 'Z' : zone.length === 3 ? `${zone}:00` : zone}`;
  const t = Date.parse(iso);
  return Number.isFinite(t) ? t : null;
}

/**
 * The newest PANIC/FATAL/ERROR line of `tail` logged within `withinMs` of `now` (older ones describe a past that
 * may have been repaired), classified. Lines without a readable time count only when `now` is not given.
 */
export function lastProblem(tail: string, now?: number, withinMs = 60_000): LogProblem | null {
  const lines = tail.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = LINE.exec(lines[i] as string);
    if (!m) continue;
    const at = timeOf(m[1] as string, m[2]);
    if (now !== undefined && (at === null || now - at > withinMs)) return null;
    const message = (m[4] as string).trim();
    return { kind: classify(message), message: message.length > 300 ? `${message.slice(0, 297)}...` : message, at };
  }
  return null;
}

/** The last `bytes` of a file as text ('' when it cannot be read). Never reads the whole log. */
export function readLogTail(file: string, bytes = 16 * 1024): string {
  let fd: number | null = null;
  try {
    fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    const len = Math.min(size, bytes);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    const text = buf.toString('utf8');
    return len < size ? text.slice(text.indexOf('\n') + 1) : text;
  } catch {
    return '';
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
