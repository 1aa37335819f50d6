/**
 * One connection from the proxy to a PostgreSQL server: its state, the socket and how it is read, the response
 * pump, and its end. The login (SSLRequest/TLS, StartupMessage, authentication) is in server-login.ts, as functions
 * of this ServerConn; members marked @internal are for it only.
 *
 * The pump looks at a message's type byte only, and further only for: ReadyForQuery (transaction status: the
 * release point), ParseComplete/CloseComplete (prepared-statement bookkeeping, prepared.ts), ErrorResponse (drop
 * expectations of the failed segment), ParameterStatus (session parameters) and CommandComplete (DISCARD ALL and
 * DEALLOCATE ALL, compared in place — or any tag while a client's SET search_path awaits confirmation,
 * set-tracking.ts). Everything else is forwarded as the slices the framer returns, batched into one write per read.
 *
 * Internal queries (parameter SETs before a client's transaction, server_reset_query) are answered in order before
 * anything the client sent after them, so their responses are simply swallowed until their ReadyForQuery.
 *
 * The connection owns its transaction bookkeeping (server-tx.ts, its base class): the session tells it what it
 * forwards (`sentSync`, `sentUnsynced`, `inboundPiece`) and links it (`link`, `unlink`, `releaseAtIdle`); the pump
 * counts the ReadyForQuery messages and keeps their status; `clean` says whether it may serve another client.
 *
 * TLS (server_tls_sslmode): once the server accepts SSLRequest `socket` is the TLS socket, read through 'data'
 * events (fresh buffers: `onread` does not apply to TLS sockets). Plain connections keep the `onread` path.
 */
import { connect, type Socket } from 'node:net';
import {
  BACKEND_CODES,
  BackendCode,
  buildCancelRequest,
  buildQuery,
  buildTerminate,
  commandTagIs,
  type Frame,
  FramePiece,
  Framer,
  parseNoticeFields,
  parseParameterStatus,
  readyStatus,
  type ScramClient,
  streamTable,
} from '../../protocol/index.js';
import type { ProxyClock } from '../clock.js';
import type { Logger } from '../../lib/log.js';
import { ProxyError, ProxyErrorCode } from '../errors.js';
import type { OutBuffer } from '../out-buffer.js';
import { ParamSet, trackedName } from '../session/params.js';
import type { PooledServer } from '../pool/pool.js';
import type { PoolStats } from '../pool/stats.js';
import { Expect, PARSE_COMPLETE, ResponseQueue, type StatementServer } from '../session/prepared.js';
import { ServerStatements } from './server-statements.js';
import { ServerTransaction } from './server-tx.js';
import type { LinkedClient, ServerEvents } from './server-ports.js';
import { loginData, loginError, onConnect, type ServerLogin } from './server-login.js';
import { onSetCommandComplete, onSetReady, type PendingSet } from '../session/set-tracking.js';
import type { NodeAddr } from '../pool/router.js';
import { SERVER_TLS_DISABLED, sendCancelRequest } from '../tls.js';

export type { ServerLogin } from './server-login.js';
export type { LinkedClient, ServerEvents } from './server-ports.js';

/**
 * Rows and COPY data longer than this are forwarded to the client as they arrive, never held whole: the pump
 * inspects neither (see the file comment).
 */
const STREAM_ABOVE_BYTES = 64 * 1024;
const STREAMED_BACKEND = streamTable([BackendCode.DataRow, BackendCode.CopyData, BackendCode.FunctionCallResponse]);

/** Per server connection; a larger response takes more reads (pgBouncer's pkt_buf is 4 KiB). */
const READ_BUFFER_BYTES = 16 * 1024;

export const ServerState = { Login: 'login', Idle: 'idle', Active: 'active', Closed: 'closed' } as const;
export type ServerState = (typeof ServerState)[keyof typeof ServerState];

let nextId = 1;

export class ServerConn extends ServerTransaction implements PooledServer, StatementServer {
  readonly id = nextId++;
  state: ServerState = ServerState.Login;
  closeNeeded = false;
  idleSince = 0;
  readonly createdAt: number;
  readonly connectTime: Date;
  /** Wall-clock milliseconds when the current client linked (SHOW SERVERS request_time). */
  requestTime: number;
  /** The linked client (link/unlink). */
  client: LinkedClient | null = null;
  /** Every ParameterStatus seen (server_version…): what clients of this pool are told at login. */
  readonly reported = new Map<string, string>();
  /** Tracked session parameters as this server has them now. */
  readonly params = new ParamSet();
  readonly prepared = new ServerStatements();
  readonly parseQueue = new ResponseQueue();
  readonly closeQueue = new ResponseQueue();
  /** A client's SET search_path waiting for the server to confirm it (set-tracking.ts). */
  pendingSet: PendingSet | null = null;
  /** Called once the last internal query completes (session reset before returning to the pool). */
  afterInternal: (() => void) | null = null;
  backendPid = 0;
  /** @internal BackendKeyData's secret, for cancel(). */
  backendSecret: Buffer | null = null;
  /** The TCP socket, replaced by the TLS socket when the server accepts SSLRequest (then never again). */
  socket: Socket;
  /** @internal SSLRequest sent: the next read is the server's one-byte answer. */
  sslRequested = false;
  /** @internal One per connection: the login (server-login.ts) reads through it too. */
  readonly framer = new Framer({ allowedTypes: BACKEND_CODES });
  private readsPaused = false;
  private readBuf: Buffer | null = null;
  /** The last read's bytes may still be referenced by a pending write: the next read needs a fresh buffer. */
  private readBufLent = false;
  /** The client this read's bytes were forwarded to (it may be unlinked by then). */
  private lastClient: LinkedClient | null = null;
  /** @internal The SCRAM exchange during login (server-login.ts). */
  scram: ScramClient | null = null;
  /** @internal Its keys when they come from the password: filled once the server's salt is known. */
  lazyKeys: { clientKey: Buffer; serverKey: Buffer } | null = null;
  private loginTimer: NodeJS.Timeout | null = null;
  private closeError: ProxyError | null = null;

  constructor(
    readonly node: NodeAddr,
    /** The pool's identity, for SHOW SERVERS and logs. */
    readonly poolKey: { readonly role: 'rw' | 'ro'; readonly database: string; readonly user: string },
    /** @internal How to log in (user, secret, TLS); cancel() reuses its TLS settings. */
    readonly login: ServerLogin,
    private readonly events: ServerEvents,
    private readonly log: Logger,
    stats: PoolStats,
    /** Statements some server accepted (shared by the proxy): see answerUnlinked in prepared.ts. */
    private readonly knownGood: Set<string>,
    clock: ProxyClock,
  ) {
    super(clock, stats);
    this.createdAt = clock.now();
    this.connectTime = new Date(clock.wallNow());
    this.requestTime = clock.wallNow();
    this.socket = connect({
      host: node.host,
      port: node.port,
      noDelay: true,
      onread: { buffer: () => this.nextReadBuffer(), callback: (n, buf) => this.onRead(n, buf as Buffer) },
    });
    this.socket.on('connect', () => onConnect(this));
    this.watchSocket(this.socket);
    if (login.connectTimeoutMs > 0) {
      this.loginTimer = setTimeout(
        () => this.fail(loginError(this.node, `no login within ${login.connectTimeoutMs} ms`), false),
        login.connectTimeoutMs,
      );
    }
  }

  /**
   * Backpressure from the linked client (its socket is full): stop reading. The socket calls happen only when the
   * state changes — resuming a stream that was never paused still costs a tick.
   */
  pauseReads(): void {
    if (this.readsPaused) return;
    this.readsPaused = true;
    this.socket.pause();
  }

  resumeReads(): void {
    if (!this.readsPaused) return;
    this.readsPaused = false;
    this.socket.resume();
  }

  /** Set by the linked client while it waits for this socket to drain. */
  onDrain: (() => void) | null = null;

  /**
   * Serves `client` from now on: `releaseOnIdle` (transaction mode, or a client closing after this transaction)
   * gives the server back at the next ReadyForQuery 'I' with nothing outstanding (`client.serverIdle`).
   */
  link(client: LinkedClient, releaseOnIdle: boolean): void {
    this.client = client;
    this.state = ServerState.Active;
    this.requestTime = this.clock.wallNow();
    this.linked(releaseOnIdle);
    this.resumeReads();
  }

  /**
   * The client let go: released to the pool, or the client left. `busy`: the connection still runs something (a
   * reset query) or is being closed, so its state stays 'active' (SHOW SERVERS: 'used') until it is released.
   */
  unlink(busy = false): void {
    this.client = null;
    if (!busy) this.state = ServerState.Idle;
  }

  get remoteAddr(): string {
    return `${this.node.host}:${this.node.port}`;
  }

  /** Sends a query whose responses are swallowed (it is answered before anything written after it). */
  sendInternal(sql: string, out?: OutBuffer): void {
    this.internalPending++;
    const q = buildQuery(sql);
    if (out) out.addBuffer(q);
    else this.socket.write(q);
  }

  /** Closes the connection (Terminate first when it is healthy). `closed` is reported once. */
  close(reason: string): void {
    if (this.state === ServerState.Closed) return;
    this.closeError ??= new ProxyError(
      ProxyErrorCode.ServerLost,
      `server connection to node "${this.node.name}" (${this.remoteAddr}) closed: ${reason}`,
      { node: this.node.name },
    );
    if (this.socket.writable) this.socket.end(TERMINATE);
    this.socket.destroy();
  }

  /**
   * Forwards a client's CancelRequest to this server with the server's own key (a new connection, as libpq),
   * encrypted as server_tls_sslmode says (libpq 17 cancels with the connection's sslmode).
   */
  cancel(): void {
    if (!this.backendSecret) return;
    sendCancelRequest(
      this.node,
      buildCancelRequest(this.backendPid, this.backendSecret),
      this.login.tls ?? SERVER_TLS_DISABLED,
    );
  }

  /** @internal The handlers every socket gets, the TLS socket that replaces the TCP one included. */
  watchSocket(socket: Socket): void {
    socket.on(
      'error',
      (err) =>
        (this.closeError ??=
          this.state === ServerState.Login ? loginError(this.node, err.message) : this.lostError(err.message)),
    );
    socket.on('close', () => this.onClose());
    socket.on('drain', () => this.onDrain?.());
  }

  /** @internal The TLS read path: every 'data' chunk is a fresh buffer, so nothing of `readBufLent` applies. */
  onTlsData(chunk: Buffer): void {
    this.onData(chunk);
    this.lastClient = null;
  }

  /**
   * Reads land in one buffer per connection (`onread`: no stream machinery, no allocation per read). Frames are
   * views into it, so it is reused only when nothing of the last read can still be referenced: every frame is
   * handled within `onData`, forwarded bytes are written before it returns, and a write the kernel did not take
   * at once (the client socket still holds bytes) keeps the buffer — the next read gets a fresh one. During login a
   * fresh buffer per read keeps parsed values (SCRAM data, keys) safe without auditing every parser.
   */
  private nextReadBuffer(): Buffer {
    if (this.readBuf === null || this.state === ServerState.Login || this.readBufLent) {
      this.readBuf = Buffer.allocUnsafe(READ_BUFFER_BYTES);
      this.readBufLent = false;
    }
    return this.readBuf;
  }

  private onRead(n: number, buf: Buffer): boolean {
    this.onData(buf.subarray(0, n));
    // The client the bytes went to — not this.client, which may already be the next one (serverIdle hands over).
    const c = this.lastClient;
    this.lastClient = null;
    if (c !== null && c.socket.writableLength > 0) this.readBufLent = true;
    return true;
  }

  private onData(chunk: Buffer): void {
    if (this.state === ServerState.Login) return loginData(this, chunk);
    this.framer.push(chunk);
    const c = this.client;
    this.lastClient = c;
    let idle = false;
    try {
      for (let f = this.framer.read(); f !== undefined; f = this.framer.read()) {
        if (f instanceof FramePiece) {
          if (c && this.internalPending === 0) c.out.addBuffer(f.bytes);
          continue;
        }
        if (this.internalPending > 0) {
          this.internalFrame(f);
          continue;
        }
        switch (f.type) {
          case BackendCode.ReadyForQuery:
            this.readyForQuery(readyStatus(f));
            if (this.pendingSet !== null) onSetReady(this, c);
            if (this.requestAnswered()) idle = true;
            break;
          case BackendCode.ParseComplete: {
            const skip = this.parseQueue.shift() === Expect.Skip;
            if (this.parseQueue.lastAdded !== null) this.knownGood.add(this.parseQueue.lastAdded);
            if (skip) continue;
            break;
          }
          case BackendCode.CloseComplete: {
            const k = this.closeQueue.shift();
            if (k === Expect.AsParseComplete) c?.out.addBuffer(PARSE_COMPLETE);
            else if (k === Expect.Skip && this.closeQueue.lastAdded !== null)
              this.prepared.closed(this.closeQueue.lastAdded);
            if (k !== Expect.Forward) continue;
            break;
          }
          case BackendCode.ErrorResponse:
            // Parse queue first: a statement both re-prepared and evicted in the dropped segment ends up known again.
            this.parseQueue.dropSegment(this.zReceived, (name) => this.prepared.delete(name));
            this.closeQueue.dropSegment(this.zReceived, (name) => this.prepared.closeSkipped(name));
            if (!c)
              this.log.warn('error from an idle server connection', {
                node: this.node.name,
                error: parseNoticeFields(f.payload).message,
              });
            break;
          case BackendCode.ParameterStatus:
            this.onParameterStatus(f, c);
            break;
          case BackendCode.CommandComplete:
            if (!this.onResetTag(f, c) && this.pendingSet !== null) onSetCommandComplete(this, f.payload);
            break;
        }
        if (c) c.out.addFrame(f);
      }
    } catch (err) {
      c?.flushToClient(this);
      this.fail(
        err instanceof ProxyError ? err : this.lostError(`protocol error from server: ${(err as Error).message}`),
        false,
      );
      return;
    }
    if (c) {
      if (idle && this.client === c) {
        this.transactionDone();
        c.serverIdle(this);
      } else c.flushToClient(this);
    }
  }

  private internalFrame(f: Frame): void {
    switch (f.type) {
      case BackendCode.ReadyForQuery:
        if (this.internalAnswered(readyStatus(f)) && this.afterInternal) {
          const then = this.afterInternal;
          this.afterInternal = null;
          then();
        }
        return;
      case BackendCode.ParameterStatus:
        return this.onParameterStatus(f, null);
      case BackendCode.CommandComplete:
        this.onResetTag(f, null);
        return;
      case BackendCode.ErrorResponse:
        this.log.warn('internal query failed on a server connection', {
          node: this.node.name,
          error: parseNoticeFields(f.payload).message,
        });
        return;
    }
  }

  /** @internal Also during login: what the server reports then is what a pool's clients are told at theirs. */
  onParameterStatus(f: Frame, c: LinkedClient | null): void {
    const { name, value } = parseParameterStatus(f.payload);
    this.reported.set(name, value);
    const tracked = trackedName(name);
    if (!tracked) return;
    this.params.set(tracked, value);
    c?.params.set(tracked, value);
  }

  /**
   * DISCARD ALL and DEALLOCATE ALL drop every prepared statement (and DISCARD ALL resets parameters); true when the
   * tag was one of them. Other tags cost one length comparison each (commandTagIs).
   */
  private onResetTag(f: Frame, c: LinkedClient | null): boolean {
    const discard = commandTagIs(f, 'DISCARD ALL');
    if (!discard && !commandTagIs(f, 'DEALLOCATE ALL')) return false;
    this.prepared.clear();
    c?.statements.clear();
    if (discard) {
      this.params.delete('search_path');
      c?.params.delete('search_path');
    }
    return true;
  }

  /** @internal ReadyForQuery ended the login. */
  loggedIn(): void {
    if (this.loginTimer) clearTimeout(this.loginTimer);
    this.loginTimer = null;
    this.state = ServerState.Idle;
    this.framer.streamAbove = STREAM_ABOVE_BYTES;
    this.framer.streamTypes = STREAMED_BACKEND;
    this.events.ready(this);
  }

  /** @internal Reported once: during login as loginFailed (`fatal`: not worth retrying), later as closed. */
  fail(err: ProxyError, fatal: boolean): void {
    if (this.state === ServerState.Closed) return;
    this.closeError = err;
    if (this.state === ServerState.Login) {
      this.state = ServerState.Closed;
      if (this.loginTimer) clearTimeout(this.loginTimer);
      this.socket.destroy();
      this.events.loginFailed(this, err, fatal);
      return;
    }
    this.socket.destroy();
  }

  private onClose(): void {
    if (this.loginTimer) clearTimeout(this.loginTimer);
    if (this.state === ServerState.Closed) return;
    const wasLogin = this.state === ServerState.Login;
    this.state = ServerState.Closed;
    const err = this.closeError ?? this.lostError('the server closed the connection');
    if (wasLogin)
      this.events.loginFailed(this, this.closeError ?? loginError(this.node, 'connection closed during login'), false);
    else this.events.closed(this, err);
  }

  private lostError(why: string): ProxyError {
    return new ProxyError(
      ProxyErrorCode.ServerLost,
      `server connection to node "${this.node.name}" (${this.remoteAddr}) lost: ${why}`,
      { node: this.node.name },
    );
  }
}

/** Built once: every healthy connection ends with it. */
const TERMINATE = buildTerminate();
