/**
 * One connection from the proxy to a PostgreSQL server: login (trust, cleartext, md5, SCRAM-SHA-256 — with the auth
 * file's password, or SCRAM pass-through keys), then the response pump.
 *
 * The pump looks at a message's type byte only, and further only for: ReadyForQuery (transaction status: the
 * release point), ParseComplete/CloseComplete (prepared-statement bookkeeping, prepared.ts), ErrorResponse (drop
 * expectations of the failed segment), ParameterStatus (session parameters) and CommandComplete tags starting with
 * 'D' (DISCARD ALL / DEALLOCATE ALL) — or any tag while a client's SET search_path awaits confirmation
 * (set-tracking.ts). Everything else is forwarded as the slices the framer returns, batched into one write per read.
 *
 * Internal queries (parameter SETs before a client's transaction, server_reset_query) are answered in order before
 * anything the client sent after them, so their responses are simply swallowed until their ReadyForQuery.
 *
 * TLS (server_tls_sslmode, tls.ts): the connection opens with SSLRequest; the one-byte answer arrives through the
 * same read path as everything else; on 'S' `socket` becomes the TLS socket, which is read through 'data' events
 * (fresh buffers: `onread` does not apply to TLS sockets). Plain connections keep the `onread` path unchanged.
 */
import { connect, type Socket } from 'node:net';
import {
  BACKEND_CODES, BackendCode, buildCancelRequest, buildPasswordMessage, buildQuery, buildSASLInitialResponse, buildSASLResponse,
  buildStartupMessage, type Frame, Framer, md5Response, parseAuthentication, parseBackendKeyData, parseCommandComplete,
  parseNoticeFields, parseParameterStatus, SCRAM_SHA_256, ScramClient, type ScramKeys, scramKeysFromPassword, TxStatus,
} from '../protocol/index.js';
import type { Logger } from '../lib/log.js';
import { ProxyError, ProxyErrorCode } from './errors.js';
import type { OutBuffer } from './out-buffer.js';
import { ParamSet, trackedName } from './params.js';
import type { PooledServer } from './pool.js';
import type { PoolStats } from './stats.js';
import { type ClientStatements, Expect, PARSE_COMPLETE, ResponseQueue, type StatementServer } from './prepared.js';
import { ServerStatements } from './server-statements.js';
import { onSetCommandComplete, onSetReady, type PendingSet } from './set-tracking.js';
import type { NodeAddr } from './router.js';
import { SERVER_TLS_DISABLED, sendCancelRequest, serverTlsError, type ServerTls, sslAnswer, sslRequestBytes, upgradeServerSocket } from './tls.js';

/** What a server needs from the client it serves. */
export interface LinkedClient {
  readonly socket: Socket;
  readonly out: OutBuffer;
  readonly statements: ClientStatements;
  readonly params: ParamSet;
  /** Write `out` to the client (with backpressure towards `server`). */
  flushToClient(server: ServerConn): void;
  /**
   * ReadyForQuery with nothing outstanding and `releaseOnIdle` set: give the server back, then write `out` (the
   * reply) to the client — in that order, so a waiting client's query reaches the server without waiting for this
   * write (on a busy host a write can yield the CPU to the process it wakes).
   */
  serverIdle(server: ServerConn): void;
  /** The server connection closed while linked. */
  serverLost(err: ProxyError): void;
}

export interface ServerEvents {
  ready(s: ServerConn): void;
  /** Login failed; `fatal` when the server itself refused (not worth retrying for the waiting clients). */
  loginFailed(s: ServerConn, err: ProxyError, fatal: boolean): void;
  /** The connection is gone after login (peer closed, error, or close()). */
  closed(s: ServerConn, err: ProxyError): void;
}

export interface ServerLogin {
  readonly user: string;
  readonly database: string;
  /** Plaintext or md5 secret from the auth file; undefined for trust. */
  readonly password: string | undefined;
  /** Keys recovered from a client's SCRAM exchange (when the auth file holds a verifier). */
  readonly scramKeys: ScramKeys | null;
  /** PBKDF2 results per salt/iterations for `password`, shared by every connection of the user. */
  readonly keyCache: Map<string, ScramKeys>;
  readonly connectTimeoutMs: number;
  /** server_tls_*; absent: plaintext. */
  readonly tls?: ServerTls;
}

/** Login failures worth retrying: the server is starting, stopping, in recovery, or full. */
const TRANSIENT_SQLSTATES = new Set(['57P03', '53300', '57P01', '57P02']);
/** Per server connection; a larger response takes more reads (pgBouncer's pkt_buf is 4 KiB). */
const READ_BUFFER_BYTES = 16 * 1024;
/** Allowed SCRAM iterations when hashing a plaintext password (event-loop protection, as node-postgres). */
const MAX_ITERATIONS = 100_000;

export const ServerState = { Login: 'login', Idle: 'idle', Active: 'active', Closed: 'closed' } as const;
export type ServerState = (typeof ServerState)[keyof typeof ServerState];

let nextId = 1;

export class ServerConn implements PooledServer, StatementServer {
  readonly id = nextId++;
  state: ServerState = ServerState.Login;
  closeNeeded = false;
  idleSince = 0;
  readonly createdAt: number;
  readonly connectTime = new Date();
  /** Date.now() when the current client linked (SHOW SERVERS request_time). */
  requestTime = Date.now();
  client: LinkedClient | null = null;
  /** Transaction mode: give the server back at ReadyForQuery 'I' with nothing outstanding. */
  releaseOnIdle = false;
  txStatus: number = TxStatus.Idle;
  /** Every ParameterStatus seen (server_version…): what clients of this pool are told at login. */
  readonly reported = new Map<string, string>();
  /** Tracked session parameters as this server has them now. */
  readonly params = new ParamSet();
  readonly prepared = new ServerStatements();
  readonly parseQueue = new ResponseQueue();
  readonly closeQueue = new ResponseQueue();
  syncsSent = 0;
  zReceived = 0;
  /** Extended-protocol messages sent since the last Sync. */
  unsynced = false;
  /** Internal queries whose responses are still to be swallowed. */
  internalPending = 0;
  /** A client's SET search_path waiting for the server to confirm it (set-tracking.ts). */
  pendingSet: PendingSet | null = null;
  /** Called once the last internal query completes (session reset before returning to the pool). */
  afterInternal: (() => void) | null = null;
  backendPid = 0;
  /** performance.now() when the current request started (query_time). */
  queryStart = 0;
  private backendSecret: Buffer | null = null;
  /** The TCP socket, replaced by the TLS socket when the server accepts SSLRequest (then never again). */
  socket: Socket;
  /** SSLRequest sent: the next read is the server's one-byte answer. */
  private sslRequested = false;
  private readonly framer = new Framer({ allowedTypes: BACKEND_CODES });
  private readsPaused = false;
  private readBuf: Buffer | null = null;
  /** The last read's bytes may still be referenced by a pending write: the next read needs a fresh buffer. */
  private readBufLent = false;
  /** The client this read's bytes were forwarded to (it may be unlinked by then). */
  private lastClient: LinkedClient | null = null;
  private scram: ScramClient | null = null;
  private lazyKeys: { clientKey: Buffer; serverKey: Buffer } | null = null;
  private loginTimer: NodeJS.Timeout | null = null;
  private closeError: ProxyError | null = null;

  constructor(
    readonly node: NodeAddr,
    /** The pool's identity, for SHOW SERVERS and logs. */
    readonly poolKey: { readonly role: 'rw' | 'ro'; readonly database: string; readonly user: string },
    private readonly login: ServerLogin,
    private readonly events: ServerEvents,
    private readonly log: Logger,
    private readonly stats: PoolStats,
    /** Statements some server accepted (shared by the proxy): see answerUnlinked in prepared.ts. */
    private readonly knownGood: Set<string>,
    now: number,
  ) {
    this.createdAt = now;
    this.socket = connect({
      host: node.host, port: node.port, noDelay: true,
      onread: { buffer: () => this.nextReadBuffer(), callback: (n, buf) => this.onRead(n, buf as Buffer) },
    });
    this.socket.on('connect', () => this.onConnect());
    this.watchSocket(this.socket);
    if (login.connectTimeoutMs > 0) {
      this.loginTimer = setTimeout(() => this.fail(this.loginError(`no login within ${login.connectTimeoutMs} ms`), false), login.connectTimeoutMs);
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
    this.closeError ??= new ProxyError(ProxyErrorCode.ServerLost, `server connection to node "${this.node.name}" (${this.remoteAddr}) closed: ${reason}`, { node: this.node.name });
    if (this.socket.writable) this.socket.end(TERMINATE);
    this.socket.destroy();
  }

  /**
   * Forwards a client's CancelRequest to this server with the server's own key (a new connection, as libpq),
   * encrypted as server_tls_sslmode says (libpq 17 cancels with the connection's sslmode).
   */
  cancel(): void {
    if (!this.backendSecret) return;
    sendCancelRequest(this.node, buildCancelRequest(this.backendPid, this.backendSecret), this.login.tls ?? SERVER_TLS_DISABLED);
  }

  private watchSocket(socket: Socket): void {
    socket.on('error', (err) => (this.closeError ??= this.state === ServerState.Login ? this.loginError(err.message) : this.lostError(err.message)));
    socket.on('close', () => this.onClose());
    socket.on('drain', () => this.onDrain?.());
  }

  private onConnect(): void {
    if (this.login.tls?.rules.request) {
      this.sslRequested = true;
      this.socket.write(sslRequestBytes());
    } else this.sendStartup();
  }

  private sendStartup(): void {
    this.socket.write(buildStartupMessage({ user: this.login.user, database: this.login.database }));
  }

  /** The server's answer to SSLRequest: plaintext from here, a TLS handshake, or a failed login. */
  private onSslAnswer(chunk: Buffer): void {
    this.sslRequested = false;
    const tls = this.login.tls as ServerTls;
    const a = sslAnswer(tls.mode, chunk);
    if (a.kind === 'plain') return this.sendStartup();
    if (a.kind === 'error') {
      const { err } = serverTlsError(this.node.name, this.remoteAddr, tls.mode, new Error(a.message));
      return this.fail(err, a.fatal);
    }
    const t = upgradeServerSocket(this.socket, tls, this.node.host);
    this.socket = t;
    let secure = false;
    t.on('secureConnect', () => {
      secure = true;
      this.sendStartup();
    });
    // Handshake failures (certificate refused, TLS alert) get the TLS catalogue entry; later errors as any other.
    t.on('error', (err) => {
      if (secure) return;
      const e = serverTlsError(this.node.name, this.remoteAddr, tls.mode, err);
      this.fail(e.err, e.fatal);
    });
    this.watchSocket(t);
    t.on('data', (b: Buffer) => this.onTlsData(b));
  }

  /** The TLS read path: every 'data' chunk is a fresh buffer, so nothing of `readBufLent` applies. */
  private onTlsData(chunk: Buffer): void {
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
    if (this.state === ServerState.Login) return this.loginData(chunk);
    this.framer.push(chunk);
    const c = this.client;
    this.lastClient = c;
    let idle = false;
    try {
      for (let f = this.framer.next(); f !== undefined; f = this.framer.next()) {
        if (this.internalPending > 0) {
          this.internalFrame(f);
          continue;
        }
        switch (f.type) {
          case BackendCode.ReadyForQuery:
            this.zReceived++;
            this.txStatus = f.source[f.offset + 5] as number;
            if (this.pendingSet !== null) onSetReady(this, c);
            if (this.zReceived >= this.syncsSent) {
              this.stats.query_time += Math.round((performance.now() - this.queryStart) * 1000);
              if (!this.unsynced && this.txStatus === TxStatus.Idle && this.releaseOnIdle) idle = true;
            }
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
            else if (k === Expect.Skip && this.closeQueue.lastAdded !== null) this.prepared.closed(this.closeQueue.lastAdded);
            if (k !== Expect.Forward) continue;
            break;
          }
          case BackendCode.ErrorResponse:
            // Parse queue first: a statement both re-prepared and evicted in the dropped segment ends up known again.
            this.parseQueue.dropSegment(this.zReceived, (name) => this.prepared.delete(name));
            this.closeQueue.dropSegment(this.zReceived, (name) => this.prepared.closeSkipped(name));
            if (!c) this.log.warn('error from an idle server connection', { node: this.node.name, error: parseNoticeFields(f.payload).message });
            break;
          case BackendCode.ParameterStatus:
            this.onParameterStatus(f, c);
            break;
          case BackendCode.CommandComplete:
            if (f.source[f.offset + 5] === 0x44) this.onCommandTag(f, c);
            else if (this.pendingSet !== null) onSetCommandComplete(this, f.payload);
            break;
        }
        if (c) c.out.addFrame(f);
      }
    } catch (err) {
      c?.flushToClient(this);
      this.fail(err instanceof ProxyError ? err : this.lostError(`protocol error from server: ${(err as Error).message}`), false);
      return;
    }
    if (c) {
      if (idle && this.client === c) c.serverIdle(this);
      else c.flushToClient(this);
    }
  }

  private internalFrame(f: Frame): void {
    switch (f.type) {
      case BackendCode.ReadyForQuery:
        this.txStatus = f.source[f.offset + 5] as number;
        if (--this.internalPending === 0 && this.afterInternal) {
          const then = this.afterInternal;
          this.afterInternal = null;
          then();
        }
        return;
      case BackendCode.ParameterStatus:
        return this.onParameterStatus(f, null);
      case BackendCode.CommandComplete:
        if (f.source[f.offset + 5] === 0x44) this.onCommandTag(f, null);
        return;
      case BackendCode.ErrorResponse:
        this.log.warn('internal query failed on a server connection', { node: this.node.name, error: parseNoticeFields(f.payload).message });
        return;
    }
  }

  private onParameterStatus(f: Frame, c: LinkedClient | null): void {
    const { name, value } = parseParameterStatus(f.payload);
    this.reported.set(name, value);
    const tracked = trackedName(name);
    if (!tracked) return;
    this.params.set(tracked, value);
    c?.params.set(tracked, value);
  }

  /** DISCARD ALL and DEALLOCATE ALL drop every prepared statement (and DISCARD ALL resets parameters). */
  private onCommandTag(f: Frame, c: LinkedClient | null): void {
    const tag = parseCommandComplete(f.payload);
    if (tag !== 'DISCARD ALL' && tag !== 'DEALLOCATE ALL') return;
    this.prepared.clear();
    c?.statements.clear();
    if (tag === 'DISCARD ALL') {
      this.params.delete('search_path');
      c?.params.delete('search_path');
    }
  }

  private loginData(chunk: Buffer): void {
    if (this.sslRequested) return this.onSslAnswer(chunk);
    this.framer.push(chunk);
    this.loginFrames();
  }

  private loginFrames(): void {
    try {
      for (let f = this.framer.next(); f !== undefined; f = this.framer.next()) {
        if (this.state !== ServerState.Login) throw this.loginError('data after ReadyForQuery in the login phase');
        switch (f.type) {
          case BackendCode.Authentication:
            this.onAuth(f.payload);
            break;
          case BackendCode.ParameterStatus:
            this.onParameterStatus(f, null);
            break;
          case BackendCode.BackendKeyData: {
            const k = parseBackendKeyData(f.payload);
            this.backendPid = k.pid;
            this.backendSecret = k.secret;
            break;
          }
          case BackendCode.ErrorResponse: {
            const n = parseNoticeFields(f.payload);
            const err = new ProxyError(ProxyErrorCode.ServerRefused, n.message, { node: this.node.name, sqlstate: n.sqlstate }, n);
            return this.fail(err, !TRANSIENT_SQLSTATES.has(n.sqlstate));
          }
          case BackendCode.ReadyForQuery:
            if (this.loginTimer) clearTimeout(this.loginTimer);
            this.loginTimer = null;
            this.state = ServerState.Idle;
            this.events.ready(this);
            break;
          default:
            break; // NoticeResponse, NegotiateProtocolVersion
        }
      }
    } catch (err) {
      this.fail(err instanceof ProxyError ? err : this.loginError((err as Error).message), false);
    }
  }

  private onAuth(payload: Buffer): void {
    const a = parseAuthentication(payload);
    const { user, password } = this.login;
    const need = (): string => {
      if (password === undefined) throw new ProxyError(ProxyErrorCode.ServerRefused, `server asks for a password for user "${user}" and the auth file has none`, { user });
      return password;
    };
    switch (a.kind) {
      case 'ok':
        return;
      case 'cleartext':
        if (need().startsWith('md5') && need().length === 35) throw new ProxyError(ProxyErrorCode.ServerRefused, `server asks for a cleartext password for "${user}" and the auth file holds only an md5 hash`, { user });
        this.socket.write(buildPasswordMessage(need()));
        return;
      case 'md5':
        this.socket.write(buildPasswordMessage(md5Response(user, need(), a.salt)));
        return;
      case 'sasl': {
        if (!a.mechanisms.includes(SCRAM_SHA_256)) throw this.loginError(`server offers no supported SASL mechanism (${a.mechanisms.join(', ')})`);
        if (this.login.scramKeys) {
          this.scram = new ScramClient(this.login.scramKeys);
        } else {
          need();
          // Keys are filled from the cache (or one PBKDF2) once the server's salt and iteration count are known.
          this.lazyKeys = { clientKey: Buffer.alloc(0), serverKey: Buffer.alloc(0) };
          this.scram = new ScramClient(this.lazyKeys);
        }
        this.socket.write(buildSASLInitialResponse(SCRAM_SHA_256, this.scram.clientFirst()));
        return;
      }
      case 'sasl-continue': {
        if (!this.scram) throw this.loginError('SASLContinue without SASL');
        if (this.lazyKeys) Object.assign(this.lazyKeys, this.keysFor(a.data.toString('utf8')));
        this.socket.write(buildSASLResponse(this.scram.onServerFirst(a.data)));
        return;
      }
      case 'sasl-final':
        if (!this.scram) throw this.loginError('SASLFinal without SASL');
        this.scram.verifyServerFinal(a.data);
        return;
      default:
        throw this.loginError(`server asks for an unsupported authentication method (code ${a.code})`);
    }
  }

  private keysFor(serverFirst: string): ScramKeys {
    const salt = /(?:^|,)s=([^,]*)/.exec(serverFirst)?.[1] ?? '';
    const iter = Number(/(?:^|,)i=(\d+)/.exec(serverFirst)?.[1] ?? 0);
    if (!(iter > 0 && iter <= MAX_ITERATIONS)) throw this.loginError(`server asks for ${iter} SCRAM iterations`);
    const k = `${salt}:${iter}`;
    let keys = this.login.keyCache.get(k);
    if (!keys) {
      keys = scramKeysFromPassword(this.login.password as string, Buffer.from(salt, 'base64'), iter);
      this.login.keyCache.set(k, keys);
    }
    return keys;
  }

  private fail(err: ProxyError, fatal: boolean): void {
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
    if (wasLogin) this.events.loginFailed(this, this.closeError ?? this.loginError('connection closed during login'), false);
    else this.events.closed(this, err);
  }

  private lostError(why: string): ProxyError {
    return new ProxyError(ProxyErrorCode.ServerLost, `server connection to node "${this.node.name}" (${this.remoteAddr}) lost: ${why}`, { node: this.node.name });
  }

  private loginError(why: string): ProxyError {
    return new ProxyError(ProxyErrorCode.ServerLogin, `cannot log in to node "${this.node.name}" (${this.remoteAddr}): ${why}`, { node: this.node.name });
  }
}

const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);
