/**
 * A small PostgreSQL client connection for the backup component: connect (TCP or a Unix-socket directory), TLS as
 * libpq's sslmode says, log in (trust, cleartext, md5, SCRAM-SHA-256), then simple queries returning text rows.
 * Started with `replication: 'database'` or `'true'` it is a walsender connection (IDENTIFY_SYSTEM,
 * TIMELINE_HISTORY, BASE_BACKUP — base-backup-stream.ts); with `replication: false` an ordinary one.
 *
 * Protocol: https://www.postgresql.org/docs/15/protocol-flow.html, .../protocol-replication.html.
 * Reading is pull-based (`readMessages`): the server's messages are handed to a handler as views into the socket's
 * chunks; while a promise the handler returned is pending no message is handed on and, once one more chunk has
 * arrived, the socket is paused (TCP flow control reaches the server): the caller's backpressure.
 * Every failure is a ReplicationError with a stable code; an ErrorResponse keeps its SQLSTATE.
 */
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import {
  BackendCode,
  buildPasswordMessage,
  buildQuery,
  buildSASLInitialResponse,
  buildSASLResponse,
  buildStartupMessage,
  buildTerminate,
  type Frame,
  FramePiece,
  Framer,
  md5Response,
  type NoticeFields,
  ProtocolError,
  parseAuthentication,
  parseBackendKeyData,
  parseCommandComplete,
  parseDataRow,
  parseNoticeFields,
  parseParameterStatus,
  parseRowDescription,
  SCRAM_SHA_256,
  ScramClient,
  streamTable,
} from '../protocol/index.js';
import {
  type ServerTls,
  serverModeRules,
  sslAnswer,
  sslRequestBytes,
  type TlsMode,
  upgradeServerSocket,
} from '../proxy/tls.js';

export const replicationErrorCatalogue = {
  REPL_CONNECT: { summary: 'The TCP or Unix-socket connection to PostgreSQL could not be made (refused, timed out).' },
  REPL_TLS: {
    summary: 'TLS was required by sslmode and refused by the server, or the handshake/certificate check failed.',
  },
  REPL_AUTH: {
    summary:
      'Logging in failed on our side: no password for a method that needs one, an unsupported method, a bad SCRAM exchange.',
  },
  REPL_SERVER_ERROR: {
    summary: 'PostgreSQL answered with an ErrorResponse; `sqlstate` carries its SQLSTATE (28P01: wrong password).',
  },
  REPL_CONNECTION_LOST: {
    summary: 'The connection closed before the exchange was complete (e.g. a truncated BASE_BACKUP stream).',
  },
  REPL_PROTOCOL: { summary: 'The server sent something the protocol does not allow at that point.' },
  REPL_ABORTED: { summary: "The caller's AbortSignal fired; the connection was closed." },
} as const;
export type ReplicationErrorCode = keyof typeof replicationErrorCatalogue;

/** Every failure of a connection or of a command on it. */
export class ReplicationError extends Error {
  constructor(
    readonly code: ReplicationErrorCode,
    message: string,
    /** Where: "host:port" or the socket path; the user. */
    readonly context: { readonly server?: string; readonly user?: string } = {},
    /** The server's SQLSTATE for REPL_SERVER_ERROR (and our own auth failures' '28P01', '28000'…); '' otherwise. */
    readonly sqlstate = '',
    /** The whole ErrorResponse, when there was one. */
    readonly notice?: NoticeFields,
  ) {
    super(message);
    this.name = 'ReplicationError';
  }
}

export type SslMode = TlsMode;

export interface ConnectOptions {
  /** Host name, IP address, or a directory holding the server's Unix socket (a path starting with '/'). */
  readonly host: string;
  /** Default 5432. */
  readonly port?: number;
  readonly user: string;
  /** Needed when the server asks for cleartext, md5 or SCRAM. */
  readonly password?: string;
  /** Default: the user name. With `replication: 'true'` the server ignores it. */
  readonly database?: string;
  /** 'database': a walsender that also runs SQL; 'true': physical replication only; false (default): an ordinary backend. */
  readonly replication?: 'database' | 'true' | false;
  readonly applicationName?: string;
  /** libpq's sslmode; default 'prefer' over TCP. Unix sockets never use TLS (as libpq). */
  readonly sslmode?: SslMode;
  /** PEM files as libpq's sslrootcert / sslcert / sslkey; verify-* without sslrootcert use Node's CA store. */
  readonly sslrootcert?: string;
  readonly sslcert?: string;
  readonly sslkey?: string;
  /** Until the server's first ReadyForQuery; default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Aborting closes the connection (also after login: a running command fails with REPL_ABORTED). */
  readonly signal?: AbortSignal;
}

/** One result set of a simple query, values as text (NULL: null). */
export interface QueryResult {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly (string | null)[])[];
  /** CommandComplete's tag ("SELECT 1", "IDENTIFY_SYSTEM"); '' for result sets a walsender sends without one. */
  readonly tag: string;
}

/**
 * A handler for `readMessages`: undefined to go on, a promise to pause reading until it settles (a rejection ends
 * the read with that error), true when the exchange is complete (bytes after it stay buffered for the next read).
 * Messages are views into buffers the connection never reuses (fresh socket chunks, or the framer's fresh copy of a
 * message that spanned chunks): a handler may keep them without copying, at the cost of keeping their chunk alive.
 */
export type MessageHandler = (m: Frame | FramePiece) => boolean | undefined | Promise<unknown>;

export interface ReadOptions {
  /** Stream CopyData messages longer than this as FramePieces instead of assembling them (default: never). */
  readonly streamCopyAbove?: number;
}

const COPY_DATA_ONLY = streamTable([BackendCode.CopyData]);

/** A logged-in connection. Not safe for concurrent commands: one query or stream at a time. */
export class PgConnection implements AsyncDisposable {
  /** ParameterStatus values (server_version, …), kept up to date. */
  readonly parameters = new Map<string, string>();
  backendPid = 0;
  private readonly framer = new Framer({ streamTypes: COPY_DATA_ONLY });
  private pending: Buffer[] = [];
  private reader: { handler: MessageHandler; resolve: () => void; reject: (e: Error) => void } | null = null;
  private draining = false;
  private waiting = false;
  private failure: ReplicationError | null = null;
  private closed = false;

  constructor(
    private socket: Socket,
    /** For error messages: "host:port" or the socket path. */
    readonly server: string,
    readonly user: string,
  ) {
    socket.on('data', (b: Buffer) => this.onData(b));
    socket.on('error', (e) =>
      this.fail(this.error('REPL_CONNECTION_LOST', `connection to ${server} failed: ${e.message}`)),
    );
    socket.on('close', () =>
      this.fail(this.error('REPL_CONNECTION_LOST', `connection to ${server} closed by the server`)),
    );
  }

  /** Sends bytes (a built message). */
  write(bytes: Buffer): void {
    if (this.failure) throw this.failure;
    this.socket.write(bytes);
  }

  /**
   * Hands every message the server sends to `handler` until it returns true (resolves) or the connection fails
   * (rejects with a ReplicationError, or with the handler's own error — the connection is then closed, as the
   * stream cannot be resumed mid-message).
   */
  readMessages(handler: MessageHandler, options: ReadOptions = {}): Promise<void> {
    if (this.reader) throw new Error('PgConnection: a read is already in progress');
    this.framer.streamAbove = options.streamCopyAbove ?? Infinity;
    return new Promise<void>((resolve, reject) => {
      this.reader = { handler, resolve, reject };
      this.drain();
    });
  }

  /**
   * Runs `sql` with the simple-query protocol and returns its result sets (several statements: several results).
   * An ErrorResponse rejects with REPL_SERVER_ERROR and its SQLSTATE once the server is ready again; the connection
   * stays usable. COPY is not supported here.
   */
  async query(sql: string): Promise<QueryResult[]> {
    const results: QueryResult[] = [];
    let cur: { columns: string[]; rows: (string | null)[][] } | null = null;
    let error: NoticeFields | null = null;
    this.write(buildQuery(sql));
    await this.readMessages((m) => {
      if (m instanceof FramePiece) throw this.unexpected(m.type, 'a query');
      switch (m.type) {
        case BackendCode.RowDescription:
          if (cur) results.push({ ...cur, tag: '' });
          cur = { columns: parseRowDescription(m.payload).map((f) => f.name), rows: [] };
          return;
        case BackendCode.DataRow:
          if (!cur) throw this.unexpected(m.type, 'a query before RowDescription');
          cur.rows.push(parseDataRow(m.payload).map((v) => (v === null ? null : v.toString('utf8'))));
          return;
        case BackendCode.CommandComplete:
          results.push({ columns: cur?.columns ?? [], rows: cur?.rows ?? [], tag: parseCommandComplete(m.payload) });
          cur = null;
          return;
        case BackendCode.ErrorResponse:
          error = parseNoticeFields(m.payload);
          return;
        case BackendCode.ReadyForQuery:
          return true;
        case BackendCode.CopyOutResponse:
        case BackendCode.CopyInResponse:
        case BackendCode.CopyBothResponse:
          throw this.unexpected(m.type, 'query() (COPY is not supported)');
        default:
          return this.common(m);
      }
    });
    if (cur) results.push({ ...(cur as { columns: string[]; rows: (string | null)[][] }), tag: '' });
    if (error) throw this.serverError(error);
    return results;
  }

  /** Messages any phase may see: ParameterStatus is recorded, notices and EmptyQueryResponse are ignored. */
  common(m: Frame): undefined {
    if (m.type === BackendCode.ParameterStatus) {
      const p = parseParameterStatus(m.payload);
      this.parameters.set(p.name, p.value);
      return;
    }
    if (m.type === BackendCode.NoticeResponse || m.type === BackendCode.EmptyQueryResponse) return;
    if (m.type === BackendCode.NotificationResponse) return;
    throw this.unexpected(m.type, 'this phase');
  }

  /** The catalogue error for an ErrorResponse. */
  serverError(n: NoticeFields): ReplicationError {
    return new ReplicationError(
      'REPL_SERVER_ERROR',
      `${n.severity || 'ERROR'}: ${n.message} (SQLSTATE ${n.sqlstate})`,
      this.where(),
      n.sqlstate,
      n,
    );
  }

  error(code: ReplicationErrorCode, message: string, sqlstate = ''): ReplicationError {
    return new ReplicationError(code, message, this.where(), sqlstate);
  }

  unexpected(type: number, phase: string): ReplicationError {
    return this.error(
      'REPL_PROTOCOL',
      `unexpected message '${String.fromCharCode(type)}' from ${this.server} in ${phase}`,
    );
  }

  /** Closes the connection (Terminate when it is idle); a read in progress fails with `reason` or REPL_ABORTED. */
  close(reason?: ReplicationError): void {
    if (this.closed) return;
    this.closed = true;
    const err = reason ?? this.error('REPL_ABORTED', `connection to ${this.server} closed by the caller`);
    if (!this.reader && !this.failure && this.socket.writable) this.socket.end(buildTerminate());
    else this.socket.destroy();
    this.failure ??= err;
    if (this.reader) this.finish(err);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  private where(): { server: string; user: string } {
    return { server: this.server, user: this.user };
  }

  private fail(err: ReplicationError): void {
    if (this.failure) return;
    this.failure = err;
    this.socket.destroy();
    // Bytes already received are still delivered: the server's last ErrorResponse explains the close.
    this.drain();
  }

  private onData(b: Buffer): void {
    this.pending.push(b);
    // Paused only once a chunk waits: a sink promise that settles before the next read costs no pause/resume.
    if (this.waiting || !this.reader) this.socket.pause();
    this.drain();
  }

  /** Feeds pending chunks through the framer to the reader; pauses the socket while the reader's promise is out. */
  private drain(): void {
    if (this.draining || this.waiting) return;
    this.draining = true;
    try {
      this.drainLoop();
    } finally {
      this.draining = false;
    }
  }

  private drainLoop(): void {
    for (;;) {
      const r = this.reader;
      if (!r) {
        if (this.pending.length > 0) this.socket.pause();
        return;
      }
      let m: Frame | FramePiece | undefined;
      try {
        m = this.framer.read();
      } catch (e) {
        return this.finish(this.error('REPL_PROTOCOL', `bad message from ${this.server}: ${(e as Error).message}`));
      }
      if (m === undefined) {
        const next = this.pending.shift();
        if (next !== undefined) {
          this.framer.push(next);
          continue;
        }
        if (this.failure) return this.finish(this.failure);
        if (this.socket.isPaused()) this.socket.resume(); // may deliver a chunk at once (into pending)
        if (this.pending.length > 0) continue;
        return;
      }
      let out: boolean | undefined | Promise<unknown>;
      try {
        out = r.handler(m);
      } catch (e) {
        return this.finish(e as Error);
      }
      if (out === true) {
        this.reader = null;
        r.resolve();
      } else if (out instanceof Promise) {
        this.waiting = true;
        out.then(
          () => {
            this.waiting = false;
            this.drain();
          },
          (e: Error) => {
            this.waiting = false;
            this.finish(e);
          },
        );
        return;
      }
    }
  }

  /** Ends the current read with an error and closes the connection: a stream cannot be resumed mid-exchange. */
  private finish(err: Error): void {
    const r = this.reader;
    this.reader = null;
    this.closed = true;
    this.socket.destroy();
    this.failure ??= err instanceof ReplicationError ? err : this.error('REPL_CONNECTION_LOST', err.message);
    r?.reject(err);
  }
}

/**
 * Connects and logs in; resolves at the server's first ReadyForQuery. Rejects with a ReplicationError: REPL_CONNECT,
 * REPL_TLS, REPL_AUTH, REPL_SERVER_ERROR (a wrong password is SQLSTATE 28P01; no pg_hba line 28000), REPL_ABORTED,
 * REPL_CONNECTION_LOST. Never leaves a socket open on failure.
 */
export async function connectPostgres(opts: ConnectOptions): Promise<PgConnection> {
  const port = opts.port ?? 5432;
  const unix = opts.host.startsWith('/');
  const server = unix ? join(opts.host, `.s.PGSQL.${port}`) : `${opts.host}:${port}`;
  const ctx = { server, user: opts.user };
  const fail = (code: ReplicationErrorCode, msg: string): ReplicationError => new ReplicationError(code, msg, ctx);
  const mode: SslMode = unix ? 'disable' : (opts.sslmode ?? 'prefer');
  const timeoutMs = opts.connectTimeoutMs ?? 10_000;
  let socket: Socket = unix ? netConnect({ path: server }) : netConnect({ host: opts.host, port });
  let conn: PgConnection | null = null;
  const timer = setTimeout(() => {
    const e = fail('REPL_CONNECT', `connecting to ${server} timed out after ${timeoutMs} ms`);
    conn ? conn.close(e) : socket.destroy(e);
  }, timeoutMs);
  const onAbort = (): void => {
    const e = fail('REPL_ABORTED', `connecting to ${server} aborted`);
    conn ? conn.close(e) : socket.destroy(e);
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (opts.signal?.aborted) throw fail('REPL_ABORTED', `connecting to ${server} aborted`);
    await settle(socket, 'connect', (e) =>
      fail(codeOf(e, 'REPL_CONNECT'), `cannot connect to ${server}: ${e.message}`),
    );
    const rules = serverModeRules(mode);
    if (rules.request) socket = await negotiateTls(socket, opts, mode, fail);
    conn = new PgConnection(socket, server, opts.user);
    const params: Record<string, string> = { user: opts.user, database: opts.database ?? opts.user };
    if (opts.replication) params['replication'] = opts.replication;
    if (opts.applicationName) params['application_name'] = opts.applicationName;
    conn.write(buildStartupMessage(params));
    await logIn(conn, opts);
    if (opts.signal) {
      const c = conn;
      opts.signal.addEventListener('abort', () => c.close(), { once: true });
    }
    return conn;
  } catch (e) {
    conn ? conn.close() : socket.destroy();
    throw e instanceof ReplicationError
      ? e
      : fail('REPL_CONNECT', `cannot connect to ${server}: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** A destroy(err) we made ourselves keeps its code. */
function codeOf(e: Error, fallback: ReplicationErrorCode): ReplicationErrorCode {
  return e instanceof ReplicationError ? e.code : fallback;
}

/** Resolves on `event`, rejects on 'error' or an early 'close'. */
function settle(socket: Socket, event: string, wrap: (e: Error) => Error): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const cleanup = (): void => {
      socket.off(event, ok);
      socket.off('error', bad);
      socket.off('close', closed);
    };
    const ok = (): void => {
      cleanup();
      resolve();
    };
    const bad = (e: Error): void => {
      cleanup();
      reject(e instanceof ReplicationError ? e : wrap(e));
    };
    const closed = (): void => bad(new Error('connection closed'));
    socket.once(event, ok);
    socket.once('error', bad);
    socket.once('close', closed);
  });
}

/** SSLRequest, the one-byte answer, then the handshake as sslmode says (shared rules with the proxy, ../proxy/tls.ts). */
async function negotiateTls(
  socket: Socket,
  opts: ConnectOptions,
  mode: SslMode,
  fail: (code: ReplicationErrorCode, msg: string) => ReplicationError,
): Promise<Socket> {
  socket.write(sslRequestBytes());
  // The server sends nothing after its one-byte answer until we speak again (StartupMessage or ClientHello).
  const chunk = await new Promise<Buffer>((resolve, reject) => {
    const answer = (b: Buffer): void => {
      socket.off('error', bad).off('close', bad);
      resolve(b);
    };
    const bad = (e?: Error | boolean): void => {
      socket.off('data', answer);
      const why = e instanceof Error ? e.message : 'connection closed';
      reject(e instanceof ReplicationError ? e : fail('REPL_TLS', `SSL negotiation with ${opts.host} failed: ${why}`));
    };
    socket.once('data', answer).once('error', bad).once('close', bad);
  });
  const a = sslAnswer(mode, chunk);
  if (a.kind === 'plain') return socket;
  if (a.kind === 'error') throw fail('REPL_TLS', `${a.message} (sslmode ${mode})`);
  const read = (f: string | undefined): Buffer | undefined => (f ? readFileSync(f) : undefined);
  let tls: ServerTls;
  try {
    const ca = read(opts.sslrootcert);
    const cert = read(opts.sslcert);
    const key = read(opts.sslkey);
    tls = {
      mode,
      rules: serverModeRules(mode),
      context: createSecureContext({ ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) }),
    };
  } catch (e) {
    throw fail('REPL_TLS', `cannot load TLS files: ${(e as Error).message}`);
  }
  // Errors surface on the TLS socket; without a listener here a late one on the raw socket would be uncaught.
  socket.on('error', () => undefined);
  const t = upgradeServerSocket(socket, tls, opts.host);
  await settle(t, 'secureConnect', (e) =>
    fail('REPL_TLS', `TLS with ${opts.host} failed (sslmode ${mode}): ${e.message}`),
  );
  return t;
}

/** The authentication exchange, up to ReadyForQuery. */
async function logIn(conn: PgConnection, opts: ConnectOptions): Promise<void> {
  let scram: ScramClient | null = null;
  const password = (): string => {
    if (opts.password === undefined)
      throw conn.error(
        'REPL_AUTH',
        `the server asks for a password for user "${opts.user}" and none was given`,
        '28P01',
      );
    return opts.password;
  };
  await conn.readMessages((m) => {
    if (m instanceof FramePiece) throw conn.unexpected(m.type, 'login');
    switch (m.type) {
      case BackendCode.Authentication: {
        const a = parseAuthentication(m.payload);
        try {
          switch (a.kind) {
            case 'ok':
              return;
            case 'cleartext':
              return void conn.write(buildPasswordMessage(password()));
            case 'md5':
              return void conn.write(buildPasswordMessage(md5Response(opts.user, password(), a.salt)));
            case 'sasl':
              if (!a.mechanisms.includes(SCRAM_SHA_256))
                throw conn.error('REPL_AUTH', `no supported SASL mechanism offered (${a.mechanisms.join(', ')})`);
              scram = new ScramClient(password());
              return void conn.write(buildSASLInitialResponse(SCRAM_SHA_256, scram.clientFirst()));
            case 'sasl-continue':
              if (!scram) throw conn.unexpected(m.type, 'login (SASLContinue without SASL)');
              return void conn.write(buildSASLResponse(scram.onServerFirst(a.data)));
            case 'sasl-final':
              if (!scram) throw conn.unexpected(m.type, 'login (SASLFinal without SASL)');
              return void scram.verifyServerFinal(a.data);
            default:
              throw conn.error('REPL_AUTH', `unsupported authentication method (code ${a.code})`);
          }
        } catch (e) {
          if (e instanceof ProtocolError) throw conn.error('REPL_AUTH', e.message, e.sqlstate);
          throw e;
        }
      }
      case BackendCode.BackendKeyData:
        conn.backendPid = parseBackendKeyData(m.payload).pid;
        return;
      case BackendCode.ErrorResponse:
        throw conn.serverError(parseNoticeFields(m.payload));
      case BackendCode.ReadyForQuery:
        return true;
      case BackendCode.NegotiateProtocolVersion:
        return;
      default:
        return conn.common(m);
    }
  });
}
