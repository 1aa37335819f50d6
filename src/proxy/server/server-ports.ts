/**
 * A server connection's two ports: what it needs from the client it serves (LinkedClient: the session, client.ts)
 * and what it tells its owner (ServerEvents: the pools, pools.ts, or auth_query's connection).
 */
import type { Socket } from 'node:net';
import type { ProxyError } from '../errors.js';
import type { OutBuffer } from '../out-buffer.js';
import type { ParamSet } from '../session/params.js';
import type { ClientStatements } from '../session/prepared.js';
import type { ServerConn } from './server-conn.js';

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
