/**
 * WAL file names and the arithmetic behind them (PostgreSQL's xlog_internal.h: XLogFileName, XLByteToSeg,
 * IsXLogFileName, IsTLHistoryFileName, IsPartialXLogFileName, IsBackupHistoryFileName). Pure.
 *
 *   000000010000000A000000FF                    segment: timeline, log id, segment within the log id (8 hex each)
 *   000000010000000A000000FF.partial            the last, incomplete segment of a timeline left at promotion
 *   000000010000000A000000FF.00000028.backup    a backup history file (start offset in the segment)
 *   00000002.history                            a timeline history file
 *
 * A log id holds 4 GiB of WAL: 0x100000000 / wal_segment_size segments (256 with the default 16 MB), so the
 * segment number is `log * segmentsPerLogId + seg`. LSNs are byte positions as numbers (src/postgres/lsn.ts; exact
 * up to 2^53 bytes of WAL).
 */
import { formatLsn, parseLsn } from '../postgres/lsn.js';

export const DEFAULT_WAL_SEGMENT_SIZE = 16 * 1024 * 1024;
const LOG_ID_BYTES = 0x1_0000_0000;

export type WalKind = 'segment' | 'partial' | 'backup' | 'history';

export interface WalName {
  readonly name: string;
  readonly kind: WalKind;
  readonly timeline: number;
  /** Log id and segment within it; absent for history files. */
  readonly log?: number;
  readonly seg?: number;
}

const HEX8 = '([0-9A-F]{8})';
const SEGMENT_RE = new RegExp(`^${HEX8}${HEX8}${HEX8}(\\.partial|\\.[0-9A-F]{8}\\.backup)?$`);
const HISTORY_RE = new RegExp(`^${HEX8}\\.history$`);

/** Parses a WAL file name (upper-case hex, as PostgreSQL writes them); null for anything else. */
export function parseWalName(name: string): WalName | null {
  const h = HISTORY_RE.exec(name);
  if (h) {
    const timeline = parseInt(h[1] as string, 16);
    return timeline >= 1 ? { name, kind: 'history', timeline } : null;
  }
  const m = SEGMENT_RE.exec(name);
  if (!m) return null;
  const timeline = parseInt(m[1] as string, 16);
  if (timeline < 1) return null;
  const suffix = m[4];
  const kind: WalKind = suffix === undefined ? 'segment' : suffix === '.partial' ? 'partial' : 'backup';
  return { name, kind, timeline, log: parseInt(m[2] as string, 16), seg: parseInt(m[3] as string, 16) };
}

export function isWalFileName(name: string): boolean {
  return parseWalName(name) !== null;
}

function hex8(n: number): string {
  return n.toString(16).toUpperCase().padStart(8, '0');
}

/** Checks a wal_segment_size: a power of two from 1 MB to 1 GB (initdb --wal-segsize). */
export function checkSegmentSize(segSize: number): number {
  if (!Number.isInteger(segSize) || segSize < 1 << 20 || segSize > 1 << 30 || (segSize & (segSize - 1)) !== 0)
    throw new Error(`invalid wal_segment_size ${segSize}: a power of two from 1 MB to 1 GB`);
  return segSize;
}

function segmentsPerLogId(segSize: number): number {
  return LOG_ID_BYTES / checkSegmentSize(segSize);
}

/** The name of segment number `segNo` on `timeline` (XLogFileName). */
export function segmentName(timeline: number, segNo: number, segSize = DEFAULT_WAL_SEGMENT_SIZE): string {
  const per = segmentsPerLogId(segSize);
  return hex8(timeline) + hex8(Math.floor(segNo / per)) + hex8(segNo % per);
}

/** The segment number of a segment (or .partial / .backup) name; throws for history files and foreign names. */
export function segmentNumber(name: string, segSize = DEFAULT_WAL_SEGMENT_SIZE): number {
  const w = parseWalName(name);
  if (!w || w.log === undefined || w.seg === undefined) throw new Error(`"${name}" is not a WAL segment name`);
  const per = segmentsPerLogId(segSize);
  if (w.seg >= per) throw new Error(`"${name}" is not a segment name for wal_segment_size ${segSize}`);
  return w.log * per + w.seg;
}

/** The segment holding the byte at `lsn` (a number or "X/Y") on `timeline` (XLByteToSeg + XLogFileName). */
export function segmentOfLsn(timeline: number, lsn: number | string, segSize = DEFAULT_WAL_SEGMENT_SIZE): string {
  return segmentName(timeline, Math.floor(lsnValue(lsn) / checkSegmentSize(segSize)), segSize);
}

/** The LSN of a segment's first byte. */
export function segmentStartLsn(name: string, segSize = DEFAULT_WAL_SEGMENT_SIZE): number {
  return segmentNumber(name, segSize) * segSize;
}

/** The segment after `name` on the same timeline. */
export function nextSegment(name: string, segSize = DEFAULT_WAL_SEGMENT_SIZE): string {
  const w = parseWalName(name) as WalName;
  return segmentName(w.timeline, segmentNumber(name, segSize) + 1, segSize);
}

/**
 * The segments from the one holding `start` to the one holding `end`, inclusive, on one timeline. With
 * `endExclusive`, `end` is the first byte past the range (as pg_backup_stop's stop LSN is): a range ending exactly at
 * a segment boundary then stops at the segment before it (XLByteToPrevSeg).
 */
export function segmentRange(
  timeline: number,
  start: number | string,
  end: number | string,
  opts: { segSize?: number; endExclusive?: boolean } = {},
): string[] {
  const segSize = checkSegmentSize(opts.segSize ?? DEFAULT_WAL_SEGMENT_SIZE);
  const s = Math.floor(lsnValue(start) / segSize);
  const endPos = lsnValue(end);
  const e = opts.endExclusive ? Math.floor((endPos - 1) / segSize) : Math.floor(endPos / segSize);
  const out: string[] = [];
  for (let n = s; n <= e; n++) out.push(segmentName(timeline, n, segSize));
  return out;
}

/** The history file name of a timeline ("00000002.history"). */
export function historyFileName(timeline: number): string {
  return `${hex8(timeline)}.history`;
}

/**
 * Where a WAL file lives in the repository, without compression suffix (store.ts layout):
 * `wal/<timeline + log id, 16 hex>/<name>` for segments, .partial and .backup files; `wal/history/<name>` for history.
 */
export function walRepoPath(name: string): string {
  const w = parseWalName(name);
  if (!w) throw new Error(`"${name}" is not a WAL file name`);
  return w.kind === 'history' ? `wal/history/${name}` : `wal/${name.slice(0, 16)}/${name}`;
}

/**
 * Archiving order: history files first (a new timeline's history must be in the repository before its segments, so a
 * restore that sees the segments can follow the switch), then by name, which is timeline then position.
 */
export function compareWalNames(a: string, b: string): number {
  const ha = a.endsWith('.history');
  const hb = b.endsWith('.history');
  if (ha !== hb) return ha ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface HistoryEntry {
  /** The parent timeline that ended at `switchpoint`. */
  readonly timeline: number;
  readonly switchpoint: number;
  /** The switchpoint as PostgreSQL prints it ("0/3000158"). */
  readonly switchpointText: string;
  readonly reason: string;
}

/**
 * Parses a timeline history file: one `parentTLI<TAB>switchpoint<TAB>reason` line per ancestor, oldest first;
 * blank lines and `#` comments skipped (readTimeLineHistory). Throws on a malformed line or timelines not increasing.
 */
export function parseHistory(content: string): HistoryEntry[] {
  const out: HistoryEntry[] = [];
  for (const [i, raw] of content.split('\n').entries()) {
    const line = raw.replace(/\r$/, '');
    if (/^\s*(#|$)/.test(line)) continue;
    const m = /^\s*(\d+)\s+([0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8})(?:\s+(.*))?$/.exec(line);
    if (!m) throw new Error(`timeline history line ${i + 1} is malformed: ${JSON.stringify(line)}`);
    const timeline = Number(m[1]);
    const prev = out[out.length - 1];
    if (timeline < 1 || (prev && timeline <= prev.timeline))
      throw new Error(`timeline history line ${i + 1}: timeline ${timeline} does not increase`);
    const switchpoint = lsnValue(m[2] as string);
    out.push({ timeline, switchpoint, switchpointText: formatLsn(switchpoint), reason: (m[3] ?? '').trim() });
  }
  return out;
}

function lsnValue(lsn: number | string): number {
  if (typeof lsn === 'number') {
    if (!Number.isSafeInteger(lsn) || lsn < 0) throw new Error(`invalid LSN ${lsn}`);
    return lsn;
  }
  const v = parseLsn(lsn);
  if (v === null) throw new Error(`invalid LSN "${lsn}"`);
  return v;
}
