/**
 * One client connection: its state, the socket, the request pump, the link to a server connection, and the end of
 * the session. Start-up and login are in client-login.ts, the forwarding of one request frame in client-request.ts,
 * the admin console's frames in client-admin.ts, the link to a server connection and its release in client-link.ts,
 * the socket's handlers and TLS in client-socket.ts: functions of this ClientConn, so a client costs no closures.
 *
 * The pump reads frames and, for each, links a server connection when the client has none (waiting in the pool's
 * queue with the socket paused and the frame kept when none is free), then forwards it: whole slices, except in
 * transaction mode for Parse/Bind/Describe/Close of named statements (prepared.ts). Everything a read produced for
 * the server goes out in one write.
 *
 * Release: in transaction mode the server connection tells us at ReadyForQuery 'I' with nothing outstanding
 * (`serverIdle`); in session mode when the client leaves (after server_reset_query).
 *
 * Members marked @internal are for those modules only.
 */
import type { Socket } from 'node:net';
import {
  type Frame,
  FramePiece,
  Framer,
  FramerMode,
  FRONTEND_CODES,
  parseStartup,
  PRE_AUTH_MAX_MESSAGE_BYTES,
} from '../../protocol/index.js';
import type { Logger } from '../../lib/log.js';
import { formatHostPort } from '../../lib/net.js';
import type { ClientAuth } from '../auth/client-auth.js';
import { adminFrame } from './client-admin.js';
import { authFrame, flushEarly, onStartup } from './client-login.js';
import { ClientPhase } from './client-phase.js';
import { request, requestPiece } from './client-request.js';
import { nextCancelSecret } from './login-reply.js';
import { errorResponseForAny, ProxyError, ProxyErrorCode } from '../errors.js';
import { OutBuffer } from '../out-buffer.js';
import { classifyClientError, type SecurityEventKind } from '../security-log.js';
import { ParamSet } from './params.js';
import type { PoolEntry } from '../pool/pools.js';
import { ClientStatements } from './prepared.js';
import type { LinkedClient, ServerConn } from '../server/server-conn.js';
import type { ProxyHost } from '../host.js';
import { giveBack, link, releaseAtIdle } from './client-link.js';
import { attach } from './client-socket.js';

export { ClientPhase } from './client-phase.js';
export { ADMIN_DATABASES } from './client-login.js';

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
  /** Wall-clock milliseconds (host.wallNow): SHOW CLIENTS, client_login_timeout. */
  readonly connectTime: number;
  requestTime: number;
  /** Wall-clock milliseconds of the last read (host.coarseNow): client_idle_timeout. */
  lastActive: number;
  readonly out = new OutBuffer();
  readonly statements = new ClientStatements();
  params = new ParamSet();
  /** Close after the current transaction (shutdown, KILL of a linked client). */
  closeAfterTx: ProxyError | null = null;
  /** @internal What one read produced for the server (client-request.ts), written at once. */
  readonly toServer = new OutBuffer();
  /** @internal Start-up packets first; client-login.ts raises the size limit once the client has authenticated. */
  readonly framer = new Framer({
    mode: FramerMode.Startup,
    maxMessageBytes: PRE_AUTH_MAX_MESSAGE_BYTES,
    allowedTypes: FRONTEND_CODES,
  });
  /** @internal Start-up parameters until login completes (then dropped: an idle client keeps only what it needs). */
  startupParams: Map<string, string> | null = null;
  /** @internal The authentication exchange, during login. */
  auth: ClientAuth | null = null;
  /** @internal Login replies not written yet (client-login.ts sendEarly). */
  early: Buffer[] | null = null;
  /** @internal An admin command is waiting for the other workers' answers. */
  adminBusy = false;
  private pending: Frame | FramePiece | null = null;
  private pauses = 0;
  private drainWaitServer: ServerConn | null = null;

  constructor(
    /** Replaced once, by the TLS socket, when the client's SSLRequest is accepted (client-socket.ts useTls). */
    public socket: Socket,
    /** 'rw' or 'ro': which listener accepted the client. */
    readonly role: 'rw' | 'ro',
    /** @internal What the session needs from its proxy (host.ts). */
    readonly host: ProxyHost,
    private readonly log: Logger,
  ) {
    this.pid = host.issuePid();
    this.connectTime = this.requestTime = host.wallNow();
    this.lastActive = this.connectTime;
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
    releaseAtIdle(this, server);
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
    const waitUs = Math.round((this.host.now() - this.waitSince) * 1000);
    e.stats.wait_time += waitUs;
    link(this, server, waitUs);
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
    const kind = classifyClientError(err);
    if (kind !== null) this.reportSecurityEvent(kind, err as Error);
    else if (!(err instanceof ProxyError) || err.code !== ProxyErrorCode.Shutdown) {
      this.log.debug('closing client', {
        client: this.id,
        user: this.user,
        err: err instanceof Error ? err.message : String(err),
      });
    }
    this.out.reset();
    flushEarly(this);
    if (this.socket.writable) this.socket.end(errorResponseForAny(err, 'FATAL'));
    this.onClose();
    this.socket.destroySoon();
  }

  /** @internal A failed login or a protocol violation, for the security log. */
  reportSecurityEvent(kind: SecurityEventKind, err: Error): void {
    const s = this.socket;
    const client = s.remoteAddress !== undefined ? formatHostPort(s.remoteAddress, s.remotePort ?? 0) : 'unknown';
    const code = (err as { code?: unknown }).code;
    this.host.securityLog.report(
      kind,
      {
        client,
        user: this.user,
        database: this.user ? this.database : '',
        code: typeof code === 'string' ? code : 'unknown',
        message: err.message,
      },
      this.host.now(),
    );
  }

  /** Shutdown or KILL: now when between transactions, else after the current one. */
  closeSoon(err: ProxyError): void {
    if (this.server && this.phase === ClientPhase.Ready) {
      this.closeAfterTx = err;
      this.server.releaseAtIdle();
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

  /** @internal Handles every complete frame, then writes what they produced; after a wait ends, too. */
  pump(): void {
    try {
      while (this.phase !== ClientPhase.Closed) {
        const f = this.pending ?? this.framer.read();
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

  /** false: the frame must wait (no server yet). Pieces of streamed messages come only once logged in (afterAuth). */
  private handle(f: Frame | FramePiece): boolean {
    if (f instanceof FramePiece) return requestPiece(this, f);
    switch (this.phase) {
      case ClientPhase.Ready:
        return this.admin ? adminFrame(this, f) : request(this, f);
      case ClientPhase.Startup:
        onStartup(this, parseStartup(f.payload));
        return true;
      case ClientPhase.Auth:
        return authFrame(this, f);
      case ClientPhase.Params:
        return false;
      default:
        return true;
    }
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
    if (s && e) giveBack(this, s, e);
    if (e && wasReady) e.pool.clients--;
    this.host.forget(this);
  }
}
