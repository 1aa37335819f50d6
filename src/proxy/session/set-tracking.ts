/**
 * search_path changed with SQL inside a session, kept like the other tracked parameters (params.ts) so that in
 * transaction mode it follows the client to whichever server connection runs its next transaction.
 *
 * PostgreSQL before 18 does not report search_path with ParameterStatus, so the proxy recognises, in simple Query
 * messages only, one statement on its own: `SET [SESSION] search_path {TO|=} value[, ...]`, `SET search_path TO
 * DEFAULT`, `RESET search_path` or `RESET ALL` (keywords in any case, whitespace and comments around it, an optional
 * `;`).
 * The value counts once the server confirmed it: CommandComplete "SET" for that query, then the transaction it ran
 * in ending committed (ReadyForQuery 'I' without a ROLLBACK since; a SET in a rolled-back transaction is undone).
 * SET LOCAL lasts one transaction and is not recognised, nor are SETs in the extended protocol, in a function, in a
 * string of several statements, or search_path changed by set_config().
 *
 * Cost: a Query is decoded and tokenised only when its first bytes (after whitespace and comments) spell SET or
 * RESET and it is short enough to be one of these statements.
 */
import { type Frame, TxStatus } from '../../protocol/index.js';
import type { ParamSet } from './params.js';
import { trackedName } from './params.js';

/** Tracked parameters PostgreSQL (before 18) does not report: only SQL shows their changes. */
const UNREPORTED: ReadonlySet<string> = new Set(['search_path']);
/** "RESET ALL": shorter queries cannot be a tracked SET. */
const MIN_CHARS = 9;
/** Longer queries are not looked at (a search_path of 100 schemas still fits). */
const MAX_BYTES = 8192;

/** A recognised SET: `value` null means back to the server's default (RESET, TO DEFAULT). */
export interface TrackedSet {
  readonly name: string;
  readonly value: string | null;
}

/** Whitespace as PostgreSQL's scanner has it (space, \t, \n, \r, \f, \v). */
function isSpace(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d);
}

/** Index after whitespace and comments (`--` to end of line, nested `/* *\/`) from `i`; -1 in an unclosed comment. */
function skipBlank(buf: Buffer, i: number, end: number): number {
  while (i < end) {
    const b = buf[i] as number;
    if (isSpace(b)) i++;
    else if (b === 0x2d && buf[i + 1] === 0x2d) {
      while (i < end && buf[i] !== 0x0a) i++;
    } else if (b === 0x2f && buf[i + 1] === 0x2a) {
      let depth = 1;
      i += 2;
      while (depth > 0) {
        if (i + 1 >= end) return -1;
        if (buf[i] === 0x2a && buf[i + 1] === 0x2f) depth--, (i += 2);
        else if (buf[i] === 0x2f && buf[i + 1] === 0x2a) depth++, (i += 2);
        else i++;
      }
    } else break;
  }
  return i;
}

/** Whether `buf` at `i` holds `word` (lower-case ASCII) in any case, followed by whitespace or a comment. */
function keywordAt(buf: Buffer, i: number, end: number, word: string): boolean {
  if (i + word.length >= end) return false;
  for (let k = 0; k < word.length; k++) if (((buf[i + k] as number) | 0x20) !== word.charCodeAt(k)) return false;
  const next = buf[i + word.length] as number;
  return isSpace(next) || next === 0x2d || next === 0x2f;
}

type Token = { readonly kind: 'word' | 'ident' | 'string' | 'punct'; readonly text: string };

const WORD = /[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/y;

/** Tokens of `sql` (words lower-cased as the scanner does: ASCII only), or null for anything this does not handle. */
function tokenize(sql: string): Token[] | null {
  const out: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i] as string;
    if (isSpace(sql.charCodeAt(i))) {
      i++;
    } else if (sql.startsWith('--', i)) {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? sql.length : nl + 1;
    } else if (sql.startsWith('/*', i)) {
      i += 2;
      for (let depth = 1; depth > 0; ) {
        if (i >= sql.length) return null;
        if (sql.startsWith('*/', i)) depth--, (i += 2);
        else if (sql.startsWith('/*', i)) depth++, (i += 2);
        else i++;
      }
    } else if (ch === '"' || ch === "'") {
      let text = '';
      let j = i + 1;
      for (;;) {
        const close = sql.indexOf(ch, j);
        if (close < 0) return null;
        text += sql.slice(j, close);
        if (sql[close + 1] !== ch) {
          i = close + 1;
          break;
        }
        text += ch;
        j = close + 2;
      }
      // A backslash means something else with standard_conforming_strings off; an empty "" is an error anyway.
      if (ch === "'" ? text.includes('\\') : text === '') return null;
      out.push({ kind: ch === '"' ? 'ident' : 'string', text });
    } else if (ch === ',' || ch === '=' || ch === ';') {
      out.push({ kind: 'punct', text: ch });
      i++;
    } else {
      WORD.lastIndex = i;
      const m = WORD.exec(sql);
      if (!m) return null;
      out.push({ kind: 'word', text: m[0].replace(/[A-Z]+/g, (s) => s.toLowerCase()) });
      i += m[0].length;
    }
  }
  return out;
}

/** One search_path element as the server keeps it (quote_identifier: bare only when that reads back the same). */
function listElement(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

function trackedSetting(t: Token | undefined): string | null {
  if (t === undefined || (t.kind !== 'word' && t.kind !== 'ident')) return null;
  const name = trackedName(t.text);
  return name !== undefined && UNREPORTED.has(name) ? name : null;
}

/** The statement in `tokens`, or null when it is not exactly one tracked SET/RESET. */
function parseSet(tokens: Token[]): TrackedSet | null {
  let n = tokens.length;
  if (tokens[n - 1]?.text === ';' && tokens[n - 1]?.kind === 'punct') n--;
  const first = tokens[0];
  if (first?.kind !== 'word') return null;
  if (first.text === 'reset') {
    // RESET ALL resets every unreported one too (the reported ones come back as ParameterStatus).
    if (n === 2 && tokens[1]?.kind === 'word' && tokens[1].text === 'all') return { name: 'search_path', value: null };
    const name = trackedSetting(tokens[1]);
    return name !== null && n === 2 ? { name, value: null } : null;
  }
  if (first.text !== 'set') return null;
  let i = 1;
  if (tokens[i]?.kind === 'word' && tokens[i]?.text === 'session') i++;
  const name = trackedSetting(tokens[i++]);
  const op = tokens[i++];
  if (
    name === null ||
    op === undefined ||
    !((op.kind === 'word' && op.text === 'to') || (op.kind === 'punct' && op.text === '='))
  )
    return null;
  if (n === i + 1 && tokens[i]?.kind === 'word' && tokens[i]?.text === 'default') return { name, value: null };
  const items: string[] = [];
  for (; i < n; i += 2) {
    const t = tokens[i] as Token;
    if (t.kind === 'punct' || (t.kind === 'word' && t.text === 'default')) return null;
    items.push(listElement(t.text));
    const sep = tokens[i + 1];
    if (i + 1 < n && (sep?.kind !== 'punct' || sep.text !== ',')) return null;
  }
  return items.length > 0 && tokens[n - 1]?.kind !== 'punct' ? { name, value: items.join(', ') } : null;
}

/** The tracked SET a simple Query's payload (query text and its NUL) holds, or null. */
export function recogniseSet(payload: Buffer): TrackedSet | null {
  return recogniseIn(payload, 0, payload.length - 1);
}

/** The query text is buf[start, end). A few byte comparisons for any query that does not start with SET or RESET. */
function recogniseIn(buf: Buffer, start: number, end: number): TrackedSet | null {
  if (end - start < MIN_CHARS || end - start > MAX_BYTES) return null;
  const first = buf[start] as number;
  const b = first | 0x20;
  if (b !== 0x73 && b !== 0x72 && b !== 0x2d && b !== 0x2f && !isSpace(first)) return null; // s r - / or blank
  const i = skipBlank(buf, start, end);
  if (i < 0 || !(keywordAt(buf, i, end, 'set') || keywordAt(buf, i, end, 'reset'))) return null;
  const tokens = tokenize(buf.toString('utf8', i, end));
  return tokens === null ? null : parseSet(tokens);
}

/** A recognised SET sent to a server connection, waiting for the server to confirm it. */
export class PendingSet {
  /** CommandComplete "SET" arrived for the query. */
  confirmed = false;

  constructor(
    readonly set: TrackedSet,
    /** The Query's sync segment: its responses arrive while zReceived === seg. */
    readonly seg: number,
  ) {}
}

/** What SET tracking needs from a server connection. */
export interface SetTrackingServer {
  pendingSet: PendingSet | null;
  /** Sync points sent (the segment the next message belongs to) and ReadyForQuery messages received. */
  readonly syncsSent: number;
  readonly zReceived: number;
  readonly txStatus: number;
  /** Tracked parameters as this server has them. */
  readonly params: ParamSet;
}

/** client-request.ts, a simple Query about to be sent on `server` (before its sync is counted): watch a tracked SET. */
export function watchQuery(f: Frame, server: SetTrackingServer): void {
  // Text between the header and the terminating NUL, read in place: no view allocated per query.
  const set = recogniseIn(f.source, f.offset + 5, f.offset + f.length);
  if (set !== null) server.pendingSet = new PendingSet(set, server.syncsSent);
}

function tagIs(payload: Buffer, tag: string): boolean {
  if (payload.length !== tag.length + 1) return false;
  for (let k = 0; k < tag.length; k++) if (payload[k] !== tag.charCodeAt(k)) return false;
  return true;
}

/** server-conn.ts, CommandComplete while a SET is pending. */
export function onSetCommandComplete(server: SetTrackingServer, payload: Buffer): void {
  const p = server.pendingSet as PendingSet;
  if (server.zReceived === p.seg) {
    if (tagIs(payload, 'SET') || tagIs(payload, 'RESET')) p.confirmed = true;
  } else if (server.zReceived > p.seg && tagIs(payload, 'ROLLBACK')) {
    // ROLLBACK, ROLLBACK TO SAVEPOINT (which may or may not undo it: assume it does) or COMMIT of a failed block.
    server.pendingSet = null;
  }
}

/** server-conn.ts, after a ReadyForQuery (zReceived and txStatus updated) while a SET is pending. */
export function onSetReady(server: SetTrackingServer, client: { readonly params: ParamSet } | null): void {
  const p = server.pendingSet as PendingSet;
  if (server.zReceived <= p.seg) return; // a response to an earlier query
  if (!p.confirmed || server.txStatus === TxStatus.Failed) {
    server.pendingSet = null;
    return;
  }
  if (server.txStatus !== TxStatus.Idle) return; // in a transaction block: counts when it commits
  server.pendingSet = null;
  apply(p.set, server.params);
  if (client !== null) apply(p.set, client.params);
}

function apply(s: TrackedSet, params: ParamSet): void {
  if (s.value === null) params.delete(s.name);
  else params.set(s.name, s.value);
}
