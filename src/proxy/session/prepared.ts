/**
 * Named prepared statements in transaction pooling (pgBouncer 1.21's scheme, src/prepare.c):
 *
 * - A client's Parse of a named statement is renamed to a proxy-global name derived from the statement's
 *   definition (query text + parameter types): the same statement has the same name on every server connection.
 * - Each server connection remembers which global names it has. Parse of one it has is not sent; Bind/Describe of
 *   one it lacks gets the client's Parse injected first.
 * - Responses stay in order without a model of every message: an injected Parse's ParseComplete is swallowed
 *   (FIFO of expected ParseCompletes), and a Parse answered locally is replaced by a Close of a statement name that
 *   never exists — PostgreSQL answers CloseComplete, "not an error" (protocol-flow.html, Extended Query) — whose
 *   CloseComplete is translated into the ParseComplete the client expects, at exactly the right place in the stream.
 *   A client's Close of a named statement becomes that same no-op Close (the server keeps the statement for others).
 * - After an ErrorResponse the server skips to the next Sync: expectations queued in that segment are dropped, and
 *   statements they were preparing are forgotten.
 * - A server connection keeps at most max_prepared_statements (server-statements.ts): preparing one more closes the
 *   least recently used with a Close whose CloseComplete is swallowed; a client needing it later gets it prepared
 *   again on demand. If an error makes the server skip that Close, the statement is known to be there again.
 * - max_prepared_statements 0: a named Parse passes through unchanged (pgBouncer before 1.21), so the statement
 *   exists only on the server connection that happened to run it.
 *
 * Unnamed statements and portals are per transaction and pass through untouched.
 */
import { createHash } from 'node:crypto';
import {
  buildClose,
  buildCloseComplete,
  buildParseComplete,
  buildReadyForQuery,
  TxStatus,
  type Frame,
  parseParse,
  rewriteBindStatement,
  rewriteBindStatementHead,
  rewriteDescribeName,
  rewriteParseName,
  FrontendCode,
  TargetKind,
} from '../../protocol/index.js';
import type { OutBuffer } from '../out-buffer.js';
import type { ServerStatements } from '../server/server-statements.js';

export const SERVER_NAME_PREFIX = 'pgkeel_';
/** Never created by anyone: Close of it is a no-op that still yields one CloseComplete. */
export const NOOP_CLOSE = buildClose('S', `${SERVER_NAME_PREFIX}noop`);
export const PARSE_COMPLETE = buildParseComplete();
const CLOSE_COMPLETE = buildCloseComplete();
const READY_IDLE = buildReadyForQuery(TxStatus.Idle);

export interface ClientStatement {
  /** The global name on servers. */
  readonly serverName: string;
  /** The client's Parse renamed to serverName: injected on servers that lack it. A copy, owned here. */
  readonly parse: Buffer;
}

/** The proxy-global name for a statement definition (Parse payload after the name). */
export function serverNameFor(definition: Buffer): string {
  return SERVER_NAME_PREFIX + createHash('sha1').update(definition).digest('base64url').slice(0, 20);
}

/** What to do with one expected response. */
export const Expect = { Forward: 0, Skip: 1, AsParseComplete: 2 } as const;
export type Expect = (typeof Expect)[keyof typeof Expect];

/**
 * A FIFO of expectations for one response type ('1' or '3'), each tagged with the sync segment it belongs to.
 * A ring of parallel arrays: no allocation per entry once grown.
 */
export class ResponseQueue {
  private kinds: Uint8Array = new Uint8Array(16);
  private segs: Float64Array = new Float64Array(16);
  private added: (string | null)[] = new Array<string | null>(16).fill(null);
  private head = 0;
  private count = 0;
  /**
   * The statement the last shifted expectation concerned (null if none): in the Parse queue the one it was
   * preparing, in the Close queue the one an eviction Close removes.
   */
  lastAdded: string | null = null;

  get length(): number {
    return this.count;
  }

  push(kind: Expect, seg: number, added: string | null): void {
    if (this.count === this.kinds.length) this.grow();
    const i = (this.head + this.count) % this.kinds.length;
    this.kinds[i] = kind;
    this.segs[i] = seg;
    this.added[i] = added;
    this.count++;
  }

  /** The expectation for the response that just arrived; Forward when none was queued (client's own message). */
  shift(): Expect {
    this.lastAdded = null;
    if (this.count === 0) return Expect.Forward;
    const k = this.kinds[this.head] as Expect;
    this.lastAdded = this.added[this.head] ?? null;
    this.added[this.head] = null;
    this.head = (this.head + 1) % this.kinds.length;
    this.count--;
    return k;
  }

  /**
   * After an ErrorResponse in segment `seg`: drops its remaining expectations (the server skips their messages),
   * reporting the statement of each (not prepared, or not closed).
   */
  dropSegment(seg: number, forget: (name: string) => void): void {
    while (this.count > 0 && this.segs[this.head] === seg) {
      const a = this.added[this.head];
      if (a) forget(a);
      this.shift();
    }
  }

  clear(): void {
    while (this.count > 0) this.shift();
  }

  private grow(): void {
    const n = this.kinds.length * 2;
    const kinds = new Uint8Array(n);
    const segs = new Float64Array(n);
    const added = new Array<string | null>(n).fill(null);
    for (let j = 0; j < this.count; j++) {
      const i = (this.head + j) % this.kinds.length;
      kinds[j] = this.kinds[i] as number;
      segs[j] = this.segs[i] as number;
      added[j] = this.added[i] ?? null;
    }
    this.kinds = kinds;
    this.segs = segs;
    this.added = added;
    this.head = 0;
  }
}

/** What prepared-statement handling needs from a server connection. */
export interface StatementServer {
  readonly prepared: ServerStatements;
  readonly parseQueue: ResponseQueue;
  readonly closeQueue: ResponseQueue;
  /** Sync points (Sync, Query, FunctionCall) sent so far: the segment new messages belong to. */
  readonly syncsSent: number;
}

/**
 * Client messages answered without a server, in transaction mode while the client holds none (between
 * transactions): Parse of a statement some server already accepted (its text is known to parse), Close, and Sync.
 * A server is only linked for what needs one; the statement is prepared on it on demand. Without this, a client
 * that prepares synchronously (libpq PQprepare: Parse+Sync, as pgbench -M prepared does at its first transaction)
 * would hold up its thread waiting for a pool slot while that thread's other clients hold slots in open
 * transactions — a deadlock whenever the pool is smaller than the client count.
 * Returns false when a server is needed.
 */
export function answerUnlinked(
  frame: Frame,
  stmts: ClientStatements,
  knownGood: ReadonlySet<string>,
  out: OutBuffer,
): boolean {
  switch (frame.type) {
    case FrontendCode.Parse: {
      const payload = frame.payload;
      if (payload[0] === 0) return false;
      const msg = parseParse(payload);
      const serverName = serverNameFor(msg.definition);
      if (!knownGood.has(serverName)) return false;
      const known = stmts.byName.get(msg.name);
      stmts.byName.set(
        msg.name,
        known?.serverName === serverName ? known : { serverName, parse: rewriteParseName(frame.raw, serverName) },
      );
      out.addBuffer(PARSE_COMPLETE);
      return true;
    }
    case FrontendCode.Close: {
      // Close: tracked statements are forgotten; unnamed ones and portals do not outlive a transaction anyway. An
      // untracked name (max_prepared_statements 0) was prepared on some server: the Close goes to one.
      const payload = frame.payload;
      if (payload[0] === TargetKind.Statement && payload[1] !== 0 && !stmts.byName.delete(nameAt(payload, 1)))
        return false;
      out.addBuffer(CLOSE_COMPLETE);
      return true;
    }
    case FrontendCode.Sync: // everything since the last one was answered here, and no transaction is open
      out.addBuffer(READY_IDLE);
      return true;
    default:
      return false;
  }
}

/** Per-client map of statement names to global statements. */
export class ClientStatements {
  /** Created on first use: most clients never name a statement, and every idle client costs memory. */
  private map: Map<string, ClientStatement> | null = null;

  get byName(): Map<string, ClientStatement> {
    return (this.map ??= new Map());
  }

  get size(): number {
    return this.map === null ? 0 : this.map.size;
  }

  clear(): void {
    this.map?.clear();
  }
}

function ensureOn(server: StatementServer, st: ClientStatement, out: OutBuffer): void {
  if (server.prepared.has(st.serverName)) server.prepared.use(st.serverName, server.syncsSent);
  else prepareOn(server, st, Expect.Skip, out);
}

/** Sends `st`'s Parse (its ParseComplete handled as `kind`), then Closes of statements beyond the limit. */
function prepareOn(server: StatementServer, st: ClientStatement, kind: Expect, out: OutBuffer): void {
  const seg = server.syncsSent;
  // An eviction Close of this name is unanswered and may yet be skipped by an error: close it again first, in this
  // segment, so the Parse never meets a surviving copy ("prepared statement already exists").
  if (server.prepared.isClosing(st.serverName)) {
    out.addBuffer(buildClose('S', st.serverName));
    server.closeQueue.push(Expect.Skip, seg, null);
  }
  out.addBuffer(st.parse);
  server.prepared.use(st.serverName, seg);
  server.parseQueue.push(kind, seg, st.serverName);
  for (let v = server.prepared.takeVictim(seg); v !== null; v = server.prepared.takeVictim(seg)) {
    out.addBuffer(buildClose('S', v));
    server.closeQueue.push(Expect.Skip, seg, v);
  }
}

/** Client Parse 'P' in transaction mode. */
export function onParse(frame: Frame, stmts: ClientStatements, server: StatementServer, out: OutBuffer): void {
  const payload = frame.payload;
  if (payload[0] === 0 || server.prepared.limit <= 0) {
    out.addFrame(frame); // unnamed: lives within this transaction only; or not tracked
    server.parseQueue.push(Expect.Forward, server.syncsSent, null);
    return;
  }
  const msg = parseParse(payload);
  const serverName = serverNameFor(msg.definition);
  const known = stmts.byName.get(msg.name);
  const st = known?.serverName === serverName ? known : { serverName, parse: rewriteParseName(frame.raw, serverName) };
  stmts.byName.set(msg.name, st);
  if (server.prepared.has(serverName)) {
    server.prepared.use(serverName, server.syncsSent);
    out.addBuffer(NOOP_CLOSE);
    server.closeQueue.push(Expect.AsParseComplete, server.syncsSent, null);
    return;
  }
  prepareOn(server, st, Expect.Forward, out);
}

/** Reads the C string at `offset` of `payload` without decoding when it is empty. */
function nameAt(payload: Buffer, offset: number): string {
  if (payload[offset] === 0) return '';
  const end = payload.indexOf(0, offset);
  return payload.toString('utf8', offset, end < 0 ? payload.length : end);
}

/** Client Bind 'B' in transaction mode. */
export function onBind(frame: Frame, stmts: ClientStatements, server: StatementServer, out: OutBuffer): void {
  const payload = frame.payload;
  const portalEnd = payload.indexOf(0);
  const name = portalEnd < 0 ? '' : nameAt(payload, portalEnd + 1);
  const st = name === '' ? undefined : stmts.byName.get(name);
  if (!st) return out.addFrame(frame); // unnamed, or unknown: the server reports "does not exist"
  ensureOn(server, st, out);
  out.addBuffer(rewriteBindStatement(frame.raw, st.serverName));
}

/**
 * The statement name in the first piece of a streamed Bind (header, portal name, statement name…); null when the
 * piece does not hold both names — then the Bind is read whole instead.
 */
export function bindHeadStatement(head: Buffer): string | null {
  const portalEnd = head.indexOf(0, 5);
  const end = portalEnd < 0 ? -1 : head.indexOf(0, portalEnd + 1);
  return end < 0 ? null : head.toString('utf8', portalEnd + 1, end);
}

/** The first piece of a streamed Bind in transaction mode: as onBind, rewriting only the head (the rest follows). */
export function onBindHead(
  head: Buffer,
  name: string,
  stmts: ClientStatements,
  server: StatementServer,
  out: OutBuffer,
): void {
  const st = name === '' ? undefined : stmts.byName.get(name);
  if (!st) return out.addBuffer(head);
  ensureOn(server, st, out);
  out.addBuffer(rewriteBindStatementHead(head, st.serverName));
}

/** A streamed Parse in transaction mode: unnamed or untracked (a tracked one is read whole), so forwarded. */
export function onStreamedParse(server: StatementServer): void {
  server.parseQueue.push(Expect.Forward, server.syncsSent, null);
}

/** Client Describe 'D' in transaction mode. */
export function onDescribe(frame: Frame, stmts: ClientStatements, server: StatementServer, out: OutBuffer): void {
  const payload = frame.payload;
  const st = payload[0] === TargetKind.Statement ? stmts.byName.get(nameAt(payload, 1)) : undefined;
  if (!st) return out.addFrame(frame);
  ensureOn(server, st, out);
  out.addBuffer(rewriteDescribeName(frame.raw, st.serverName));
}

/** Client Close 'C' in transaction mode. */
export function onClose(frame: Frame, stmts: ClientStatements, server: StatementServer, out: OutBuffer): void {
  const payload = frame.payload;
  const name = payload[0] === TargetKind.Statement ? nameAt(payload, 1) : '';
  if (name === '' || !stmts.byName.has(name)) {
    out.addFrame(frame);
    server.closeQueue.push(Expect.Forward, server.syncsSent, null);
    return;
  }
  stmts.byName.delete(name);
  out.addBuffer(NOOP_CLOSE);
  server.closeQueue.push(Expect.Forward, server.syncsSent, null);
}
