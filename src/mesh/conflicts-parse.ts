/**
 * pglogical 2.4.2's conflict reports, read from PostgreSQL's server log (stderr, `log_line_prefix = '%m [%p] %q%u@%d '`,
 * src/postgres/conf.ts). pglogical writes a conflict nowhere else (pglogical_conflict.c `pglogical_report_conflict`):
 *
 *   2026-12-03 14:36:03.149 UTC [29976] [unknown]@postgres LOG:  CONFLICT: remote INSERT on relation public.t (local index t_pkey). Resolution: apply_remote.
 *   2026-12-03 14:36:03.149 UTC [29976] [unknown]@postgres DETAIL:  existing local tuple {id[int4]:2 n[int4]:10 v[text]:from site1} xid=756,origin=0,timestamp=2026-12-03 14:36:01.685571+00; remote tuple {id[int4]:2 n[int4]:20 v[text]:from site2} in xact origin=1,timestamp=2026-12-03 14:36:02.190609+00,commit_lsn=0/4146CD0
 *   … LOG:  CONFLICT: remote UPDATE on relation public.t replica identity index t_pkey (tuple not found). Resolution: skip.
 *   … DETAIL:  remote tuple {id[int4]:500 n[int4]:5 v[text]:ud} in xact origin=1,timestamp=2026-12-03 14:36:44.969952+00,commit_lsn=0/414D3A8
 *
 * (lines captured from a 3-site mesh, conflicts-parse.test.ts). `origin` numbers are the logging node's replication
 * origin ids (0: written on this node); the collector maps them to sites. Types use pglogical's words: a remote
 * INSERT meeting a row is insert_insert, a remote UPDATE meeting a row update_update, missing it update_delete, a
 * remote DELETE missing its row delete_delete. Pure: text in, conflicts out.
 */

export const CONFLICT_TYPES = ['insert_insert', 'update_update', 'update_delete', 'delete_delete'] as const;
export type ConflictType = (typeof CONFLICT_TYPES)[number];

export interface TupleColumn {
  readonly name: string;
  readonly type: string;
  /** The value as pglogical printed it; null for `(null)`. */
  readonly value: string | null;
}

export interface ParsedConflict {
  /** When the line was logged, ms since the epoch (null when the prefix's time could not be read). */
  readonly at: number | null;
  readonly pid: number;
  /** Schema-qualified as pglogical prints it (`public.t`). */
  readonly table: string;
  readonly index: string;
  readonly type: ConflictType;
  /** pglogical's words: apply_remote, keep_local, skip, … */
  readonly resolution: string;
  /** The row's key (see conflictKey); without a known primary key, the remote tuple's text. */
  readonly key: string;
  readonly local: {
    readonly tuple: string;
    readonly xid: number;
    readonly origin: number;
    readonly commitTs: string | null;
  } | null;
  readonly remote: {
    readonly tuple: string;
    readonly origin: number;
    readonly commitTs: string;
    readonly commitLsn: string;
  };
  /** The CONFLICT and DETAIL lines as logged. */
  readonly raw: string;
}

/** Primary key columns of a table (as pglogical names it), when known. */
export type PkLookup = (table: string) => readonly string[] | undefined;

const PREFIX = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)(?: (UTC|GMT|[A-Z]{3,5}|[+-]\d\d(?::?\d\d)?))? \[(\d+)\] /;
const CONFLICT =
  /[A-Z0-9]+: {2}CONFLICT: remote (INSERT|UPDATE|DELETE) on relation (\S+) (?:\(local index (\S+)\)|replica identity index (\S+) \(tuple not found\))\. Resolution: (\w+)\.\s*$/;
const DETAIL = /DETAIL: {2}(.*)$/;
const LOCAL = /^existing local tuple \{(.*?)\} xid=(\d+),origin=(\d+)(?:,timestamp=([^;]*))?; (.*)$/;
const REMOTE = /^remote tuple \{(.*)\} in xact origin=(\d+),timestamp=(.*?),commit_lsn=(\S+)$/;

function timeOf(stamp: string, zone: string | undefined): number | null {
  const z = !zone || zone === 'UTC' || zone === 'GMT' ? 'Z' : /^[+-]\d\d$/.test(zone) ? `${zone}:00` : zone;
  const t = Date.parse(`${stamp.replace(' ', 'T')}${z}`);
  return Number.isFinite(t) ? t : null;
}

/** `id[int4]:2 v[text]:from site1` → columns. A value runs to the next ` name[type]:` (values may hold spaces). */
export function parseTuple(text: string): TupleColumn[] {
  const re = /(?:^|\s)("(?:[^"]|"")+"|[^\s[\]]+)\[([^\]]+)\]:/g;
  const marks: { name: string; type: string; start: number; end: number }[] = [];
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const name = (m[1] as string).startsWith('"')
      ? (m[1] as string).slice(1, -1).replace(/""/g, '"')
      : (m[1] as string);
    marks.push({ name, type: m[2] as string, start: m.index, end: m.index + m[0].length });
  }
  return marks.map((mk, i) => {
    const v = text.slice(mk.end, i + 1 < marks.length ? (marks[i + 1] as { start: number }).start : text.length);
    return { name: mk.name, type: mk.type, value: v === '(null)' ? null : v };
  });
}

/** A field as PostgreSQL's record output quotes it (row(…)::text), so keys match `mesh check`'s. */
function recordField(v: string): string {
  return v === '' || /[(),"\\\s]/.test(v) ? `"${v.replace(/(["\\])/g, '$1$1')}"` : v;
}

/**
 * The key the way `mesh check` lists it — one column: its value (`(t.id)::text`), several: `row(a, b)::text` —
 * when every primary key column is in the tuple; otherwise the tuple's text.
 */
export function conflictKey(tuple: string, pk: readonly string[] | undefined): string {
  if (!pk || pk.length === 0) return tuple;
  const cols = new Map(parseTuple(tuple).map((c) => [c.name, c.value]));
  const vals = pk.map((c) => cols.get(c));
  if (vals.some((v) => v === undefined || v === null)) return tuple;
  return vals.length === 1 ? (vals[0] as string) : `(${(vals as string[]).map(recordField).join(',')})`;
}

function typeOf(op: string, found: boolean): ConflictType {
  if (op === 'INSERT') return 'insert_insert';
  if (op === 'UPDATE') return found ? 'update_update' : 'update_delete';
  return 'delete_delete';
}

/**
 * Parses the conflicts in `text` (whole lines of the server log). `consumed` is how many characters were fully read:
 * a CONFLICT line at the very end whose DETAIL may still be on its way is left for the next read.
 */
export function parseConflicts(
  text: string,
  pk: PkLookup = () => undefined,
): { conflicts: ParsedConflict[]; consumed: number } {
  const lines = text.split('\n');
  // The last element is an unfinished line (or '' after a final newline): never read.
  const whole = lines.length - 1;
  const conflicts: ParsedConflict[] = [];
  let pos = 0;
  let consumed = 0;
  for (let i = 0; i < whole; i++) {
    const line = lines[i] as string;
    const start = pos;
    pos += line.length + 1;
    consumed = pos;
    const p = PREFIX.exec(line);
    const c = p ? CONFLICT.exec(line.slice(p[0].length)) : null;
    if (!p || !c) continue;
    const pid = Number(p[3]);
    // Its DETAIL is the same process's next line (pglogical emits both in one ereport).
    let detail: string | null = null;
    let j = i + 1;
    for (; j < whole; j++) {
      const n = lines[j] as string;
      const np = PREFIX.exec(n);
      if (!np) continue; // a continuation line of something else
      if (Number(np[3]) !== pid) continue;
      detail = DETAIL.exec(n.slice(np[0].length))?.[1] ?? null;
      break;
    }
    if (j >= whole) {
      // Nothing after the CONFLICT line yet: read it again next time, with its DETAIL.
      consumed = start;
      break;
    }
    if (detail === null) continue;
    let rest = detail;
    let local: ParsedConflict['local'] = null;
    const l = LOCAL.exec(detail);
    if (l) {
      local = { tuple: l[1] as string, xid: Number(l[2]), origin: Number(l[3]), commitTs: l[4] ?? null };
      rest = l[5] as string;
    }
    const r = REMOTE.exec(rest);
    if (!r) continue;
    const table = c[2] as string;
    const remote = { tuple: r[1] as string, origin: Number(r[2]), commitTs: r[3] as string, commitLsn: r[4] as string };
    const detailLine = lines[j] as string;
    conflicts.push({
      at: timeOf(p[1] as string, p[2]),
      pid,
      table,
      index: (c[3] ?? c[4]) as string,
      type: typeOf(c[1] as string, c[3] !== undefined),
      resolution: c[5] as string,
      key: conflictKey(remote.tuple, pk(table)),
      local,
      remote,
      raw: `${line}\n${detailLine}`,
    });
  }
  return { conflicts, consumed };
}
