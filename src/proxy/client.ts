/**
 * One client connection: start-up (SSLRequest answered as client_tls_sslmode says — tls.ts —, GSSENCRequest refused
 * with 'N', CancelRequest routed, StartupMessage),
 * authentication, then the request pump.
 *
 * The pump reads frames and, for each, links a server connection when the client has none (waiting in the pool's
 * queue with the socket paused and the frame kept when none is free), then forwards it: whole slices, except in
 * transaction mode for Parse/Bind/Describe/Close of named statements (prepared.ts). Everything a read produced for
 * the server goes out in one write.
 *
 * Release: in transaction mode the server connection tells us at ReadyForQuery 'I' with nothing outstanding
 * (`serverIdle`); in session mode when the client leaves (after server_reset_query).
 */
import type { Socket } from 'node:net';
import {
  buildBackendKeyData, buildNegotiateProtocolVersion, buildReadyForQuery, EncryptionResponse, type Frame,
  Framer, FramerMode, FRONTEND_CODES, FrontendCode, parseQuery, parseStartup, PRE_AUTH_MAX_MESSAGE_BYTES, ProtocolError,
  ProtocolErrorCode, type StartupPacket, TxStatus,
} from '../protocol/index.js';
import type { Logger } from '../lib/log.js';
import type { UserSecret } from './auth-file.js';
import { ClientAuth } from './client-auth.js';
import { nextCancelSecret, parameterStatusBlock } from './login-reply.js';
import { errorResponseForAny, ProxyError, ProxyErrorCode } from './errors.js';
import { OutBuffer } from './out-buffer.js';
import { applySync, ParamSet, parseOptions, shareParams, syncSql, trackedName } from './params.js';
import type { PoolEntry } from './pools.js';
import { answerUnlinked, ClientStatements, onBind, onClose, onDescribe, onParse } from './prepared.js';
import { watchQuery } from './set-tracking.js';
import type { LinkedClient, ServerConn } from './server-conn.js';
import type { ProxyHost } from './host.js';
import { checkClientTls, startClientTls } from './tls.js';

export const ClientPhase = { Startup: 'startup', Auth: 'auth', Params: 'params', Ready: 'ready', Closed: 'closed' } as const;
export type ClientPhase = (typeof ClientPhase)[keyof typeof ClientPhase];

export const ADMIN_DATABASES: ReadonlySet<string> = new Set(['pgbouncer', 'pgkeel']);
const CLIENT = Symbol('pgkeel.client');
type ClientSocket = Socket & { [CLIENT]: ClientConn };

// Shared socket handlers: they find their client through the socket, so a connection costs no closures.
function onSocketData(this: ClientSocket, chunk: Buffer): void {
  this[CLIENT].onData(chunk);
}

function onSocketClose(this: ClientSocket): void {
  this[CLIENT].onClose();
}

function onSocketDrain(this: ClientSocket): void {
  this[CLIENT].onDrain();
}

function ignoreError(): void {}

/** The shared handlers, on the accepted socket and again on the TLS socket that replaces it after SSLRequest. */
function attach(socket: Socket, c: ClientConn): void {
  (socket as ClientSocket)[CLIENT] = c;
  socket.on('data', onSocketData);
  socket.on('error', ignoreError);
  socket.on('close', onSocketClose);
  socket.on('drain', onSocketDrain);
}

const WAIT = 1;
const DRAIN = 2;
let nextId = 1;

export class ClientConn implements LinkedClient {
  readonly id = nextId++;
  /** The cancel key the proxy issued to this client. */
  readonly pid: number;
  /** The cancel key's secret, kept as a (small) integer: a Buffer per client costs an object and pins pool memory. */
  private readonly secretKey = nextCancelSecret();
  phase: ClientPhase = ClientPhase.Startup;
  user = '';
  database = '';
  admin = false;
  /** May only SHOW (stats_users). */
  adminReadOnly = false;
  applicationName = '';
  entry: PoolEntry | null = null;
  server: ServerConn | null = null;
  waiting = false;
  waitSince = 0;
  readonly connectTime = Date.now();
  requestTime = Date.now();
  lastActive = Date.now();
  readonly out = new OutBuffer();
  readonly statements = new ClientStatements();
  params = new ParamSet();
  /** Close after the current transaction (shutdown, KILL of a linked client). */
  closeAfterTx: ProxyError | null = null;
  private readonly toServer = new OutBuffer();
  private readonly framer = new Framer({ mode: FramerMode.Startup, maxMessageBytes: PRE_AUTH_MAX_MESSAGE_BYTES, allowedTypes: FRONTEND_CODES });
  /** Start-up parameters until login completes (then dropped: an idle client keeps only what it needs). */
  private startupParams: Map<string, string> | null = null;
  private pending: Frame | null = null;
  private pauses = 0;
  private auth: ClientAuth | null = null;
  private drainWaitServer: ServerConn | null = null;
  private xactStart = 0;
  /** An admin command is waiting for the other workers' answers. */
  private adminBusy = false;
  /** Login replies not written yet (sendEarly). */
  private early: Buffer[] | null = null;

  constructor(
    /** Replaced once, by the TLS socket, when the client's SSLRequest is accepted (useTls). */
    public socket: Socket,
    /** 'rw' or 'ro': which listener accepted the client. */
    readonly role: 'rw' | 'ro',
    private readonly host: ProxyHost,
    private readonly log: Logger,
  ) {
    this.pid = host.issuePid();
    socket.setNoDelay(true);
    attach(socket, this);
  }

  /** The cancel key's secret as sent in BackendKeyData. */
  get secret(): Buffer {
    const b = Buffer.alloc(4);
    b.writeInt32BE(this.secretKey, 0);
    return b;
  }

  // ---- LinkedClient (called by the server connection) ----

  flushToClient(server: ServerConn): void {
    const n = this.out.bytes;
    if (this.entry) this.entry.stats.sent += n;
    // Backpressure pauses only a server still linked to this client (after serverIdle it serves someone else).
    if (this.out.flushTo(this.socket) || this.drainWaitServer || server.client !== this) return;
    this.drainWaitServer = server;
    server.pauseReads();
  }

  serverIdle(server: ServerConn): void {
    const e = this.entry as PoolEntry;
    e.stats.xact_count++;
    e.stats.xact_time += Math.round((performance.now() - this.xactStart) * 1000);
    this.unlink(server);
    e.pool.release(server, this.host.now());
    this.flushToClient(server);
    if (this.closeAfterTx) this.fatal(this.closeAfterTx);
  }

  /** The linked server connection closed under the client: tell it which node and why, then close. */
  serverLost(err: ProxyError): void {
    this.server = null;
    this.fatal(err);
  }

  // ---- Waiter (called by the pool) ----

  assign(server: ServerConn): void {
    this.waiting = false;
    const e = this.entry as PoolEntry;
    e.stats.wait_time += Math.round((this.host.now() - this.waitSince) * 1000);
    this.link(server);
    this.unpause(WAIT);
    this.pump();
  }

  fail(err: ProxyError): void {
    this.waiting = false;
    this.fatal(err);
  }

  // ---- lifecycle ----

  /** Sends a FATAL ErrorResponse (the one catch site for errors to this client) and closes. */
  fatal(err: unknown): void {
    if (this.phase === ClientPhase.Closed) return;
    if (!(err instanceof ProxyError) || err.code !== ProxyErrorCode.Shutdown) {
      this.log.debug('closing client', { client: this.id, user: this.user, err: err instanceof Error ? err.message : String(err) });
    }
    this.out.reset();
    this.flushEarly();
    if (this.socket.writable) this.socket.end(errorResponseForAny(err, 'FATAL'));
    this.onClose();
    this.socket.destroySoon();
  }

  /** Shutdown or KILL: now when between transactions, else after the current one. */
  closeSoon(err: ProxyError): void {
    if (this.server && this.phase === ClientPhase.Ready) {
      this.closeAfterTx = err;
      this.server.releaseOnIdle = true;
      return;
    }
    this.fatal(err);
  }

  /** The CancelRequest for this client's key arrived: pass it to the server running its query, if any. */
  cancelQuery(): void {
    this.server?.cancel();
  }

  get state(): string {
    if (this.phase !== ClientPhase.Ready) return this.phase === ClientPhase.Closed ? 'closed' : 'login';
    if (this.waiting) return 'waiting';
    return this.server ? 'active' : 'idle';
  }

  /** @internal socket 'data' */
  onData(chunk: Buffer): void {
    this.lastActive = this.host.coarseNow();
    if (this.entry) this.entry.stats.received += chunk.length;
    try {
      this.framer.push(chunk);
    } catch (err) {
      return this.fatal(err);
    }
    // Still waiting with a frame kept (see pump): keep this chunk in the framer and stop reading until served.
    if (this.pending !== null) return this.pause(WAIT);
    this.pump();
  }

  private pump(): void {
    try {
      while (this.phase !== ClientPhase.Closed) {
        const f = this.pending ?? this.framer.next();
        this.pending = null;
        if (f === undefined) break;
        if (!this.handle(f)) {
          this.pending = f;
          // The socket is paused only when more input is already here (or arrives, onData): a client that sent one
          // request and waits for its answer costs no pause/resume round trip.
          if (this.framer.bufferedBytes > 0) this.pause(WAIT);
          break;
        }
      }
    } catch (err) {
      this.fatal(err);
      return;
    }
    if (this.pending === null) this.unpause(WAIT);
    if (!this.out.empty) this.out.flushTo(this.socket);
    this.flushToServer();
  }

  /** false: the frame must wait (no server yet). */
  private handle(f: Frame): boolean {
    switch (this.phase) {
      case ClientPhase.Ready:
        return this.admin ? this.adminFrame(f) : this.request(f);
      case ClientPhase.Startup:
        this.onStartup(parseStartup(f.payload));
        return true;
      case ClientPhase.Auth:
        if (this.auth === null) return false; // the secret is still being looked up (auth_query)
        if (f.type !== FrontendCode.PasswordMessage) throw new ProtocolError(ProtocolErrorCode.UnknownMessage, 'expected a password response during authentication', { type: f.type });
        this.onAuthStep(f.payload);
        return true;
      case ClientPhase.Params:
        return false;
      default:
        return true;
    }
  }

  private request(f: Frame): boolean {
    const t = f.type;
    if (t === FrontendCode.Terminate) {
      this.onClose();
      this.socket.end();
      return true;
    }
    const e0 = this.entry as PoolEntry;
    if (!this.server && e0.mode === 'transaction' && answerUnlinked(f, this.statements, this.host.knownStatements, this.out)) return true;
    const s = this.server ?? this.acquire();
    if (!s) return false;
    const tx = s.releaseOnIdle && !this.closeAfterTx;
    const e = this.entry as PoolEntry;
    switch (t) {
      case FrontendCode.Query:
      case FrontendCode.Sync:
      case FrontendCode.FunctionCall:
        if (s.zReceived >= s.syncsSent) s.queryStart = performance.now();
        if (t === FrontendCode.Query) watchQuery(f, s); // SET search_path (set-tracking.ts)
        s.syncsSent++;
        s.unsynced = false;
        e.stats.query_count++;
        this.toServer.addFrame(f);
        return true;
      case FrontendCode.Parse:
        s.unsynced = true;
        e.stats.client_parse_count++;
        if (tx) onParse(f, this.statements, s, this.toServer);
        else this.toServer.addFrame(f);
        return true;
      case FrontendCode.Bind:
        s.unsynced = true;
        e.stats.bind_count++;
        if (tx) onBind(f, this.statements, s, this.toServer);
        else this.toServer.addFrame(f);
        return true;
      case FrontendCode.Describe:
        s.unsynced = true;
        if (tx) onDescribe(f, this.statements, s, this.toServer);
        else this.toServer.addFrame(f);
        return true;
      case FrontendCode.Close:
        s.unsynced = true;
        if (tx) onClose(f, this.statements, s, this.toServer);
        else this.toServer.addFrame(f);
        return true;
      case FrontendCode.Execute:
      case FrontendCode.Flush:
        s.unsynced = true;
        this.toServer.addFrame(f);
        return true;
      case FrontendCode.PasswordMessage:
        throw new ProtocolError(ProtocolErrorCode.UnknownMessage, 'unexpected password message after authentication', { type: t });
      default: // CopyData, CopyDone, CopyFail
        this.toServer.addFrame(f);
        return true;
    }
  }

  private acquire(): ServerConn | null {
    if (this.closeAfterTx) throw this.closeAfterTx;
    const e = this.entry as PoolEntry;
    const now = this.host.now();
    this.requestTime = Date.now();
    const s = e.pool.request(this, now);
    if (s) {
      this.link(s);
      return s;
    }
    this.waiting = true;
    this.waitSince = now;
    return null;
  }

  private link(s: ServerConn): void {
    const e = this.entry as PoolEntry;
    this.server = s;
    s.client = this;
    s.state = 'active';
    s.requestTime = Date.now();
    s.releaseOnIdle = e.mode === 'transaction' || this.closeAfterTx !== null;
    s.resumeReads();
    this.xactStart = performance.now();
    e.stats.server_assignment_count++;
    const sql = syncSql(this.params, s.params);
    if (sql) {
      s.sendInternal(sql, this.toServer);
      applySync(this.params, s.params);
    }
  }

  private unlink(s: ServerConn): void {
    s.client = null;
    s.state = 'idle';
    this.server = null;
  }

  private flushToServer(): void {
    const s = this.server;
    if (!s) return this.toServer.reset();
    if (this.toServer.empty || this.toServer.flushTo(s.socket)) return;
    this.pause(DRAIN);
    s.onDrain = () => {
      s.onDrain = null;
      this.unpause(DRAIN);
    };
  }

  /** @internal socket 'drain' */
  onDrain(): void {
    const s = this.drainWaitServer;
    this.drainWaitServer = null;
    if (s && (s.client === this || s.client === null)) s.resumeReads();
  }

  private pause(bit: number): void {
    this.pauses |= bit;
    this.socket.pause();
  }

  private unpause(bit: number): void {
    if ((this.pauses & bit) === 0) return;
    this.pauses &= ~bit;
    if (this.pauses === 0 && this.phase !== ClientPhase.Closed) this.socket.resume();
  }

  /** @internal socket 'close' */
  onClose(): void {
    if (this.phase === ClientPhase.Closed) return;
    const wasReady = this.phase === ClientPhase.Ready || this.phase === ClientPhase.Params;
    this.phase = ClientPhase.Closed;
    const e = this.entry;
    if (e && this.waiting) e.pool.cancel(this);
    this.waiting = false;
    const s = this.server;
    this.server = null;
    if (s && e) this.giveBack(s, e);
    if (e && wasReady) e.pool.clients--;
    this.host.forget(this);
  }

  /** The client left while linked: a clean server goes back (after server_reset_query in session mode). */
  private giveBack(s: ServerConn, e: PoolEntry): void {
    s.client = null;
    const clean = s.txStatus === TxStatus.Idle && s.zReceived >= s.syncsSent && !s.unsynced && s.internalPending === 0;
    if (!clean) {
      s.close('client disconnected in the middle of a transaction');
      return;
    }
    const reset = this.host.config.server_reset_query;
    if (e.mode === 'session' && reset) {
      s.afterInternal = () => e.pool.release(s, this.host.now());
      s.sendInternal(reset);
      return;
    }
    s.state = 'idle';
    e.pool.release(s, this.host.now());
  }

  // ---- start-up and authentication ----

  private onStartup(p: StartupPacket): void {
    switch (p.kind) {
      case 'ssl':
      case 'gssenc':
        if (this.framer.bufferedBytes > 0) throw new ProtocolError(ProtocolErrorCode.BadStartup, 'received unencrypted data after an encryption request');
        if (p.kind === 'ssl' && this.host.clientTls.context) return this.useTls();
        this.socket.write(Buffer.from([EncryptionResponse.Refuse]));
        return;
      case 'cancel':
        this.host.cancel(p.pid, p.secret);
        this.phase = ClientPhase.Closed;
        this.host.forget(this);
        this.socket.destroy();
        return;
      case 'startup':
        checkClientTls(this.socket, this.host.clientTls);
        return this.onStartupMessage(p.params, p.minor);
    }
  }

  /** Answers 'S' and continues on the TLS socket: the raw socket's reads now feed the TLS session. */
  private useTls(): void {
    const raw = this.socket;
    raw.removeListener('data', onSocketData);
    raw.removeListener('drain', onSocketDrain);
    this.socket = startClientTls(raw, this.host.clientTls);
    attach(this.socket, this);
  }

  private onStartupMessage(params: ReadonlyMap<string, string>, minor: number): void {
    const cfg = this.host.config;
    const unsupported = [...params.keys()].filter((k) => k.startsWith('_pq_.'));
    if (minor > 0 || unsupported.length) this.sendEarly(buildNegotiateProtocolVersion(0, unsupported));
    const user = params.get('user');
    if (!user) throw new ProxyError(ProxyErrorCode.StartupParameter, 'no PostgreSQL user name specified in startup packet');
    this.user = user;
    this.database = params.get('database') || user;
    this.admin = ADMIN_DATABASES.has(this.database);
    const startupParams = (this.startupParams = new Map<string, string>());
    for (const [name, value] of params) {
      if (name === 'user' || name === 'database' || name.startsWith('_pq_.')) continue;
      const tracked = trackedName(name);
      if (tracked) startupParams.set(tracked, value);
      else if (name === 'options') for (const [k, v] of parseOptions(value)) startupParams.set(k, v);
      else if (!cfg.ignore_startup_parameters.includes(name)) throw new ProxyError(ProxyErrorCode.StartupParameter, `unsupported startup parameter: ${name}`, { parameter: name });
    }
    this.applicationName = startupParams.get('application_name') ?? '';
    this.host.admit(this);
    this.phase = ClientPhase.Auth;
    const secret = this.host.userSecret(user, this.database, this.admin);
    if (!(secret instanceof Promise)) return this.startAuth(secret);
    // auth_query: until the secret arrives `auth` is null, so handle() leaves the client's frames in the framer.
    this.flushEarly();
    secret.then((s) => this.secretArrived(s), (err: unknown) => this.fatal(err));
  }

  private secretArrived(secret: UserSecret | undefined): void {
    if (this.phase !== ClientPhase.Auth || this.auth) return; // the client left (or timed out) meanwhile
    try {
      this.startAuth(secret);
    } catch (err) {
      return this.fatal(err);
    }
    this.pump();
  }

  private startAuth(secret: UserSecret | undefined): void {
    const { config: cfg, authRandom, scramCache } = this.host;
    // With a user list (auth file or auth_query) even trust needs the user to exist.
    this.auth = new ClientAuth(cfg.auth_type, this.user, secret, this.host.hasAuthFile || cfg.auth_user !== undefined, authRandom, scramCache);
    const step = this.auth.start();
    this.sendEarly(step.send);
    if (step.kind === 'done') this.afterAuth();
    else this.flushEarly();
  }

  private onAuthStep(payload: Buffer): void {
    const step = (this.auth as ClientAuth).step(payload);
    this.sendEarly(step.send);
    if (step.kind === 'done') this.afterAuth();
    else this.flushEarly();
  }

  /**
   * Login replies are collected and written at once (AuthenticationOk, ParameterStatus…, ReadyForQuery in one
   * write: each write wakes the client). Flushed before waiting for the client or a server, and before an error.
   */
  private sendEarly(b: Buffer): void {
    (this.early ??= []).push(b);
  }

  private flushEarly(): void {
    const early = this.early;
    this.early = null;
    if (early !== null && this.socket.writable) this.socket.write(early.length === 1 ? (early[0] as Buffer) : Buffer.concat(early));
  }

  private afterAuth(): void {
    this.framer.maxMessageBytes = this.host.config.max_packet_size;
    if (this.auth?.passThroughKeys) this.host.rememberScramKeys(this.user, this.auth.passThroughKeys);
    this.auth = null;
    if (this.admin) {
      this.host.checkAdmin(this);
      return this.finishLogin(this.host.adminParams());
    }
    const e = this.host.poolFor(this.role, this.database, this.user);
    this.entry = e;
    this.user = e.user; // the pool's copies: one string per pool instead of one per client
    this.database = e.database;
    e.pool.clients++;
    e.stats.client_login_count++;
    this.phase = ClientPhase.Params;
    if (e.serverParams) return this.finishLogin(e.serverParams);
    this.flushEarly();
    this.host.serverParams(e).then(
      (p) => {
        if (this.phase !== ClientPhase.Params) return;
        this.finishLogin(p);
        this.pump();
      },
      (err: unknown) => this.fatal(err),
    );
  }

  private finishLogin(serverParams: ReadonlyMap<string, string>): void {
    const startupParams = this.startupParams ?? new Map<string, string>();
    this.startupParams = null;
    for (const [name, value] of serverParams) {
      const tracked = trackedName(name);
      if (tracked) this.params.set(tracked, startupParams.get(tracked) ?? value);
    }
    for (const [name, value] of startupParams) this.params.set(name, value);
    this.params = shareParams(this.params);
    const out = [parameterStatusBlock(serverParams, this.params), buildBackendKeyData(this.pid, this.secret), buildReadyForQuery(TxStatus.Idle)];
    const early = this.early;
    this.early = null;
    this.socket.write(Buffer.concat(early === null ? out : [...early, ...out]));
    this.phase = ClientPhase.Ready;
  }

  // ---- admin console ----

  private adminFrame(f: Frame): boolean {
    if (f.type === FrontendCode.Terminate) {
      this.onClose();
      this.socket.end();
      return true;
    }
    if (f.type !== FrontendCode.Query) {
      throw new ProxyError(ProxyErrorCode.AdminExtended, 'extended query protocol not supported by admin console');
    }
    if (this.adminBusy) return false;
    const reply = this.host.admin(this, parseQuery(f.payload));
    if (Array.isArray(reply)) {
      this.socket.write(Buffer.concat([...reply, buildReadyForQuery(TxStatus.Idle)]));
      return true;
    }
    // Several workers: the answer needs theirs. Later queries wait in the framer (pipelined in order).
    this.adminBusy = true;
    reply.then((r) => {
      this.adminBusy = false;
      if (this.phase === ClientPhase.Closed) return;
      this.socket.write(Buffer.concat([...r, buildReadyForQuery(TxStatus.Idle)]));
      this.pump();
    }, (err: unknown) => this.fatal(err));
    return true;
  }
}

